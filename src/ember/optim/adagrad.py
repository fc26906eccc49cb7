"""Adagrad (Duchi et al.): per-coordinate step sizes from the sum of squared gradients."""
from __future__ import annotations

import numpy as np

from ..ops.registry import register
from ..tensor import Tensor
from .optimizer import Optimizer, _advance, _bump, _check_lr, _check_nonneg, _dynamic, _scalar
from .optimizer import _own, _step_tensor, _traced_update, _tracing


def adagrad(params: list, grads: list, state_sums: list, steps: list, *, lr: float,
            weight_decay: float, lr_decay: float, eps: float, maximize: bool) -> None:
    """The Adagrad update on arrays, in place; ``steps[i]`` is the step number t (from 1)::

        g = -grad if maximize else grad;  g += wd * p
        clr = lr / (1 + (t - 1) * lr_decay)
        s += g**2;  p -= clr * g / (sqrt(s) + eps)
    """
    for i, p in enumerate(params):
        g = -grads[i] if maximize else grads[i]
        if weight_decay != 0:
            g = g + weight_decay * p
        clr = lr / (1 + (steps[i] - 1) * lr_decay)
        s = state_sums[i]
        std = g * g
        s += std
        np.sqrt(s, out=std)
        std += eps
        np.divide(g, std, out=std)
        std *= -clr
        p += std


@register("adagrad_update", saves=(), extra=True)
def _adagrad_update(xp, p, g, step, state_sum, lr, *, weight_decay, lr_decay, eps, maximize,
                    inplace=False):
    """One parameter's Adagrad step, out of place (a traced ``step``): returns ``(p, (step,
    sum))``."""
    p, step, s = (_own(a, inplace) for a in (p, step, state_sum))
    step += 1
    adagrad([p], [g], [s], [float(step)], lr=float(lr), weight_decay=weight_decay,
            lr_decay=lr_decay, eps=eps, maximize=maximize)
    return p, (step, s)


class Adagrad(Optimizer):
    """Adagrad, as ``torch.optim.Adagrad`` (state is created at construction, as there)."""

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0, weight_decay: float = 0,
                 initial_accumulator_value: float = 0, eps: float = 1e-10,
                 foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        _check_lr(lr)
        _check_nonneg("lr_decay value", lr_decay)
        _check_nonneg("weight_decay value", weight_decay)
        _check_nonneg("initial_accumulator_value value", initial_accumulator_value)
        _check_nonneg("epsilon value", eps)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, initial_accumulator_value)

    def _init_state(self, p: Tensor, value: float) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = _step_tensor()
            state["sum"] = Tensor._wrap(np.full_like(p._data, value), p._dev)
        return state

    def step(self, closure=None):
        """One Adagrad update of every parameter that has a gradient; returns ``closure()``."""
        loss = self._eval_closure(closure)
        init = self.defaults["initial_accumulator_value"]  # PyTorch: groups added later use it
        if _tracing():
            for i, group in enumerate(self.param_groups):
                params = self._with_grad(group)
                states = [(s["step"], s["sum"]) for s in (self._init_state(p, init)
                                                          for p in params)]
                attrs = dict(weight_decay=group["weight_decay"], lr_decay=group["lr_decay"],
                             eps=group["eps"], maximize=group["maximize"])
                _traced_update(_adagrad_update, params, states, (_dynamic(group, i, "lr"),),
                               attrs)
            return loss
        for group in self.param_groups:
            params = self._with_grad(group)
            states = [self._init_state(p, init) for p in params]
            adagrad([p._data for p in params], [p.grad._data for p in params],
                    [s["sum"]._data for s in states], [_advance(s["step"]) for s in states],
                    lr=_scalar(group["lr"]), weight_decay=group["weight_decay"],
                    lr_decay=group["lr_decay"], eps=group["eps"], maximize=group["maximize"])
            _bump(params)
        return loss

_adagrad_update.updates_state = True  # output 0 is input 0's new value, extra k input 2+k's
