"""RMSprop (Hinton), optionally centered and with momentum: ``optim.RMSprop``."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, _advance, _bump, _check_lr, _check_nonneg, _lerp_, _scalar
from .optimizer import _step_tensor


def rmsprop(params: list, grads: list, square_avgs: list, grad_avgs: list,
            momentum_buffers: list, *, lr: float, alpha: float, eps: float,
            weight_decay: float, momentum: float, centered: bool, maximize: bool) -> None:
    """The RMSprop update on arrays, in place::

        g = -grad if maximize else grad;  g += wd * p
        v = alpha * v + (1 - alpha) * g**2
        avg = sqrt(v - g_avg**2) with g_avg = alpha * g_avg + (1 - alpha) * g  (centered)
              or sqrt(v);  avg += eps
        b = momentum * b + g / avg;  p -= lr * b      (momentum > 0)
        p -= lr * g / avg                              (otherwise)
    """
    for i, p in enumerate(params):
        g = -grads[i] if maximize else grads[i]
        if weight_decay != 0:
            g = g + weight_decay * p
        v = square_avgs[i]
        v *= alpha
        sq = g * g
        sq *= 1 - alpha
        v += sq
        if centered:
            g_avg = grad_avgs[i]
            _lerp_(g_avg, g, 1 - alpha)
            avg = np.multiply(g_avg, g_avg, out=sq)
            np.subtract(v, avg, out=avg)
            np.sqrt(avg, out=avg)
        else:
            avg = np.sqrt(v, out=sq)
        avg += eps
        if momentum > 0:
            buf = momentum_buffers[i]
            buf *= momentum
            np.divide(g, avg, out=avg)
            buf += avg
            p -= lr * buf
        else:
            np.divide(g, avg, out=avg)
            avg *= -lr
            p += avg


class RMSprop(Optimizer):
    """RMSprop, as ``torch.optim.RMSprop``."""

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_lr(lr)
        _check_nonneg("epsilon value", eps)
        _check_nonneg("momentum value", momentum)
        _check_nonneg("weight_decay value", weight_decay)
        _check_nonneg("alpha value", alpha)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One RMSprop update of every parameter that has a gradient; returns ``closure()``."""
        loss = self._eval_closure(closure)
        for group in self.param_groups:
            params = self._with_grad(group)
            momentum, centered = group["momentum"], group["centered"]
            states = []
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = _step_tensor()
                    state["square_avg"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
                    if momentum > 0:
                        state["momentum_buffer"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
                    if centered:
                        state["grad_avg"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
                _advance(state["step"])
                states.append(state)
            rmsprop([p._data for p in params], [p.grad._data for p in params],
                    [s["square_avg"]._data for s in states],
                    [s["grad_avg"]._data for s in states] if centered else [],
                    [s["momentum_buffer"]._data for s in states] if momentum > 0 else [],
                    lr=_scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"],
                    weight_decay=group["weight_decay"], momentum=momentum, centered=centered,
                    maximize=group["maximize"])
            _bump(params)
        return loss
