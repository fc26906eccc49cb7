"""Adam (Kingma & Ba), with AMSGrad and optional decoupled weight decay: ``optim.Adam``."""
from __future__ import annotations

import numpy as np

from ..ops.registry import register
from ..tensor import Tensor
from .optimizer import Optimizer, _advance, _bump, _check_lr, _check_nonneg, _dynamic, _lerp_
from .optimizer import _own, _scalar, _step_tensor, _traced_update, _tracing


def adam(params: list, grads: list, exp_avgs: list, exp_avg_sqs: list, max_exp_avg_sqs: list,
         steps: list, *, amsgrad: bool, beta1: float, beta2: float, lr: float,
         weight_decay: float, eps: float, maximize: bool,
         decoupled_weight_decay: bool = False) -> None:
    """The Adam update on arrays, in place; ``steps[i]`` is the step number t (from 1)::

        g = -grad if maximize else grad
        p *= 1 - lr * wd  (decoupled, AdamW)   or   g += wd * p
        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g**2
        v_max = max(v_max, v)  (amsgrad, used in place of v below)
        p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)
    """
    for i, p in enumerate(params):
        g = -grads[i] if maximize else grads[i]
        if weight_decay != 0:
            if decoupled_weight_decay:
                p *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p
        m, v = exp_avgs[i], exp_avg_sqs[i]
        _lerp_(m, g, 1 - beta1)
        v *= beta2
        sq = g * g
        sq *= 1 - beta2
        v += sq
        step = steps[i]
        step_size = lr / (1 - beta1 ** step)
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        if amsgrad:
            np.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
            v = max_exp_avg_sqs[i]
        denom = np.sqrt(v, out=sq)
        denom /= bias_correction2_sqrt
        denom += eps
        np.divide(m, denom, out=denom)
        denom *= -step_size
        p += denom


@register("adam_update", saves=(), extra=True)
def _adam_update(xp, p, g, step, exp_avg, exp_avg_sq, *rest, amsgrad, weight_decay, eps,
                 maximize, decoupled_weight_decay, inplace=False):
    """One parameter's Adam step, out of place (a traced ``step``). Inputs after the state
    (``max_exp_avg_sq`` only with amsgrad) are lr, beta1, beta2; returns ``(p, (step,
    exp_avg, exp_avg_sq[, max_exp_avg_sq]))``."""
    *maxs, lr, beta1, beta2 = rest
    p, step, m, v = (_own(a, inplace) for a in (p, step, exp_avg, exp_avg_sq))
    maxs = [_own(a, inplace) for a in maxs]
    step += 1
    adam([p], [g], [m], [v], maxs, [float(step)], amsgrad=amsgrad, beta1=float(beta1),
         beta2=float(beta2), lr=float(lr), weight_decay=weight_decay, eps=eps,
         maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
    return p, (step, m, v, *maxs)


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (``decoupled_weight_decay=True`` makes it AdamW)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False) -> None:
        _check_lr(lr)
        _check_nonneg("epsilon value", eps)
        betas = tuple(_scalar(b) for b in betas)
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {b}")
        _check_nonneg("weight_decay value", weight_decay)
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def step(self, closure=None):
        """One Adam update of every parameter that has a gradient; returns ``closure()``."""
        loss = self._eval_closure(closure)
        if _tracing():
            self._traced_step()
            return loss
        for group in self.param_groups:
            params = self._with_grad(group)
            amsgrad = group["amsgrad"]
            states = [self._state_of(p, amsgrad) for p in params]
            beta1, beta2 = group["betas"]
            adam([p._data for p in params], [p.grad._data for p in params],
                 [s["exp_avg"]._data for s in states], [s["exp_avg_sq"]._data for s in states],
                 [s["max_exp_avg_sq"]._data for s in states] if amsgrad else [],
                 [_advance(s["step"]) for s in states], amsgrad=amsgrad,
                 beta1=_scalar(beta1), beta2=_scalar(beta2), lr=_scalar(group["lr"]),
                 weight_decay=group["weight_decay"], eps=group["eps"],
                 maximize=group["maximize"],
                 decoupled_weight_decay=group["decoupled_weight_decay"])
            _bump(params)
        return loss

    def _traced_step(self) -> None:
        """``step`` while ember.jit traces: one "adam_update" op per parameter."""
        for i, group in enumerate(self.param_groups):
            params = self._with_grad(group)
            amsgrad = group["amsgrad"]
            names = ("step", "exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ())
            states = [tuple(self._state_of(p, amsgrad)[k] for k in names) for p in params]
            scalars = (_dynamic(group, i, "lr"), _dynamic(group, i, "betas", 0),
                       _dynamic(group, i, "betas", 1))
            attrs = dict(amsgrad=amsgrad, weight_decay=group["weight_decay"], eps=group["eps"],
                         maximize=group["maximize"],
                         decoupled_weight_decay=group["decoupled_weight_decay"])
            _traced_update(_adam_update, params, states, scalars, attrs)

    def _state_of(self, p: Tensor, amsgrad: bool) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = _step_tensor()
            state["exp_avg"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
            state["exp_avg_sq"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
            if amsgrad:
                state["max_exp_avg_sq"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
        return state

_adam_update.updates_state = True  # output 0 is input 0's new value, extra k input 2+k's
