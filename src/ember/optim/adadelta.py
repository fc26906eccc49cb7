"""Adadelta (Zeiler): step sizes from running averages of squared gradients and updates."""
from __future__ import annotations

import numpy as np

from ..ops.registry import register
from ..tensor import Tensor
from .optimizer import Optimizer, _advance, _bump, _check_lr, _check_nonneg, _dynamic, _scalar
from .optimizer import _own, _step_tensor, _traced_update, _tracing


def adadelta(params: list, grads: list, square_avgs: list, acc_deltas: list, *, lr: float,
             rho: float, eps: float, weight_decay: float, maximize: bool) -> None:
    """The Adadelta update on arrays, in place::

        g = -grad if maximize else grad;  g += wd * p
        v = rho * v + (1 - rho) * g**2
        delta = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho * u + (1 - rho) * delta**2
        p -= lr * delta
    """
    for i, p in enumerate(params):
        g = -grads[i] if maximize else grads[i]
        if weight_decay != 0:
            g = g + weight_decay * p
        v, u = square_avgs[i], acc_deltas[i]
        v *= rho
        sq = g * g
        sq *= 1 - rho
        v += sq
        std = np.add(v, eps, out=sq)
        np.sqrt(std, out=std)
        delta = u + eps
        np.sqrt(delta, out=delta)
        delta /= std
        delta *= g
        u *= rho
        np.multiply(delta, delta, out=std)
        std *= 1 - rho
        u += std
        delta *= -lr
        p += delta


@register("adadelta_update", saves=(), extra=True)
def _adadelta_update(xp, p, g, step, square_avg, acc_delta, lr, *, rho, eps, weight_decay,
                     maximize, inplace=False):
    """One parameter's Adadelta step, out of place (a traced ``step``): returns ``(p, (step,
    square_avg, acc_delta))``."""
    p, step, v, u = (_own(a, inplace) for a in (p, step, square_avg, acc_delta))
    step += 1
    adadelta([p], [g], [v], [u], lr=float(lr), rho=rho, eps=eps, weight_decay=weight_decay,
             maximize=maximize)
    return p, (step, v, u)


class Adadelta(Optimizer):
    """Adadelta, as ``torch.optim.Adadelta``."""

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_lr(lr)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        _check_nonneg("epsilon value", eps)
        _check_nonneg("weight_decay value", weight_decay)
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One Adadelta update of every parameter that has a gradient; returns ``closure()``."""
        loss = self._eval_closure(closure)
        if _tracing():
            for i, group in enumerate(self.param_groups):
                params = self._with_grad(group)
                states = [(s["step"], s["square_avg"], s["acc_delta"])
                          for s in (self._state_of(p) for p in params)]
                attrs = dict(rho=group["rho"], eps=group["eps"],
                             weight_decay=group["weight_decay"], maximize=group["maximize"])
                _traced_update(_adadelta_update, params, states, (_dynamic(group, i, "lr"),),
                               attrs)
            return loss
        for group in self.param_groups:
            params = self._with_grad(group)
            states = [self._state_of(p) for p in params]
            for state in states:
                _advance(state["step"])
            adadelta([p._data for p in params], [p.grad._data for p in params],
                     [s["square_avg"]._data for s in states],
                     [s["acc_delta"]._data for s in states], lr=_scalar(group["lr"]),
                     rho=group["rho"], eps=group["eps"], weight_decay=group["weight_decay"],
                     maximize=group["maximize"])
            _bump(params)
        return loss

    def _state_of(self, p: Tensor) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = _step_tensor()
            state["square_avg"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
            state["acc_delta"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
        return state

_adadelta_update.updates_state = True  # output 0 is input 0's new value, extra k input 2+k's
