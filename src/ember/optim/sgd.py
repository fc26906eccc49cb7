"""Stochastic gradient descent, optionally with (Nesterov) momentum: PyTorch's ``optim.SGD``."""
from __future__ import annotations

import numpy as np

from ..ops.registry import register
from ..tensor import Tensor
from .optimizer import Optimizer, _bump, _check_lr, _check_nonneg, _dynamic, _scalar, _tracing
from .optimizer import _own, _traced_update


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


@register("sgd_update", saves=())
def _sgd_update(xp, p, g, lr, *, weight_decay, maximize, inplace=False):
    """One parameter's SGD step without momentum, out of place (a traced ``step``)."""
    p = _own(p, inplace)
    sgd([p], [g], [None], lr=float(lr), momentum=0, dampening=0, weight_decay=weight_decay,
        nesterov=False, maximize=maximize)
    return p


@register("sgd_momentum_update", saves=(), extra=True)
def _sgd_momentum_update(xp, p, g, buf, started, lr, momentum, *, dampening, weight_decay,
                         nesterov, maximize, inplace=False):
    """One parameter's SGD step with momentum, out of place: returns ``(p, (buf, started))``.
    ``started`` (0 or 1) says whether ``buf`` holds a momentum yet (the first step sets it to
    the gradient, as PyTorch does)."""
    p = _own(p, inplace)
    bufs = [_own(buf, inplace) if started else None]
    sgd([p], [g], bufs, lr=float(lr), momentum=float(momentum), dampening=dampening,
        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
    return p, (bufs[0], xp.ones_like(started))


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
        if _tracing():
            self._traced_step()
            return loss
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

    def _traced_step(self) -> None:
        """``step`` while ember.jit traces: one "sgd_update" op per parameter."""
        for i, group in enumerate(self.param_groups):
            params = self._with_grad(group)
            attrs = dict(weight_decay=group["weight_decay"], maximize=group["maximize"])
            lr = _dynamic(group, i, "lr")
            if group["momentum"] == 0:
                _traced_update(_sgd_update, params, [()] * len(params), (lr,), attrs)
                continue
            # whether each buffer holds a momentum yet lives beside the state (PyTorch's SGD
            # state has only the buffer): zeros until the first step, which sets it to g
            started = self.__dict__.setdefault("_momentum_started", {})
            states = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
                    started[p] = Tensor._wrap(np.zeros((), np.float32), p._dev)
                elif p not in started:
                    started[p] = Tensor._wrap(np.ones((), np.float32), p._dev)
                states.append((state["momentum_buffer"], started[p]))
            attrs.update(dampening=group["dampening"], nesterov=group["nesterov"])
            _traced_update(_sgd_momentum_update, params, states,
                           (lr, _dynamic(group, i, "momentum")), attrs)

_sgd_update.updates_state = True  # output 0 is input 0's new value, extra k input 2+k's

_sgd_momentum_update.updates_state = True  # output 0 is input 0's new value, extra k input 2+k's
