"""Stochastic gradient descent, optionally with (Nesterov) momentum: PyTorch's ``optim.SGD``."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, _bump, _check_lr, _check_nonneg, _scalar


def sgd(params: list, grads: list, momentum_buffers: list, *, lr: float, momentum: float,
        dampening: float, weight_decay: float, nesterov: bool, maximize: bool) -> None:
    """The SGD update on arrays, in place (PyTorch's documented rule)::

        g = -grad if maximize else grad;  g += weight_decay * p
        b = g (first step) or momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b
        p -= lr * g

    ``momentum_buffers[i]`` is None before the first step; it is filled in.
    """
    for i, (p, g) in enumerate(zip(params, grads)):
        if maximize:
            g = -g
        if weight_decay != 0:
            g = g + weight_decay * p
        if momentum != 0:
            buf = momentum_buffers[i]
            if buf is None:
                buf = momentum_buffers[i] = np.array(g, dtype=p.dtype)  # a copy
            else:
                buf *= momentum
                if dampening == 0:
                    buf += g
                else:
                    buf += (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p -= lr * g


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum), as ``torch.optim.SGD``.

    Example::

        opt = ember.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        opt.zero_grad(); loss.backward(); opt.step()
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, differentiable: bool = False,
                 fused: bool | None = None) -> None:
        _check_lr(lr)
        _check_nonneg("momentum value", momentum)
        _check_nonneg("weight_decay value", weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One SGD update of every parameter that has a gradient; returns ``closure()``."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            params = self._with_grad(group)
            momentum = group["momentum"]
            bufs = [self.state[p].get("momentum_buffer") for p in params] if momentum != 0 \
                else [None] * len(params)
            arrays = [None if b is None else b._data for b in bufs]
            sgd([p._data for p in params], [p.grad._data for p in params], arrays,
                lr=_scalar(group["lr"]), momentum=momentum, dampening=group["dampening"],
                weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                maximize=group["maximize"])
            if momentum != 0:
                for p, b, a in zip(params, bufs, arrays):
                    if b is None:
                        self.state[p]["momentum_buffer"] = Tensor._wrap(a, p._dev)
            _bump(params)
        return loss
