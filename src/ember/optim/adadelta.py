"""Adadelta (Zeiler): step sizes from running averages of squared gradients and updates."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, _advance, _bump, _check_lr, _check_nonneg, _scalar
from .optimizer import _step_tensor


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
        for group in self.param_groups:
            params = self._with_grad(group)
            states = []
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = _step_tensor()
                    state["square_avg"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
                    state["acc_delta"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
                _advance(state["step"])
                states.append(state)
            adadelta([p._data for p in params], [p.grad._data for p in params],
                     [s["square_avg"]._data for s in states],
                     [s["acc_delta"]._data for s in states], lr=_scalar(group["lr"]),
                     rho=group["rho"], eps=group["eps"], weight_decay=group["weight_decay"],
                     maximize=group["maximize"])
            _bump(params)
        return loss
