"""RMSprop (Hinton), optionally centered and with momentum: ``optim.RMSprop``."""
from __future__ import annotations

import numpy as np

from ..ops.registry import register
from ..tensor import Tensor
from .optimizer import Optimizer, _advance, _bump, _check_lr, _check_nonneg, _dynamic, _lerp_
from .optimizer import _own, _scalar, _step_tensor, _traced_update, _tracing


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


@register("rmsprop_update", saves=(), extra=True)
def _rmsprop_update(xp, p, g, step, square_avg, *rest, alpha, eps, weight_decay, centered,
                    has_momentum, maximize, inplace=False):
    """One parameter's RMSprop step, out of place (a traced ``step``). After ``square_avg``
    come ``grad_avg`` (centered), ``momentum_buffer`` (has_momentum), lr and, with
    has_momentum, momentum; returns ``(p, (step, square_avg[, grad_avg][, buffer]))``."""
    if has_momentum:
        *state, lr, momentum = rest
    else:
        *state, lr = rest
        momentum = 0.0
    p, step, v = (_own(a, inplace) for a in (p, step, square_avg))
    state = [_own(a, inplace) for a in state]
    step += 1
    grad_avgs = state[:1] if centered else []
    bufs = state[-1:] if has_momentum else []
    rmsprop([p], [g], [v], grad_avgs, bufs, lr=float(lr), alpha=alpha, eps=eps,
            weight_decay=weight_decay, momentum=float(momentum), centered=centered,
            maximize=maximize)
    return p, (step, v, *state)


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
        if _tracing():
            self._traced_step()
            return loss
        for group in self.param_groups:
            params = self._with_grad(group)
            momentum, centered = group["momentum"], group["centered"]
            states = [self._state_of(p, momentum, centered) for p in params]
            for state in states:
                _advance(state["step"])
            rmsprop([p._data for p in params], [p.grad._data for p in params],
                    [s["square_avg"]._data for s in states],
                    [s["grad_avg"]._data for s in states] if centered else [],
                    [s["momentum_buffer"]._data for s in states] if momentum > 0 else [],
                    lr=_scalar(group["lr"]), alpha=group["alpha"], eps=group["eps"],
                    weight_decay=group["weight_decay"], momentum=momentum, centered=centered,
                    maximize=group["maximize"])
            _bump(params)
        return loss

    def _state_of(self, p: Tensor, momentum: float, centered: bool) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = _step_tensor()
            state["square_avg"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
            if momentum > 0:
                state["momentum_buffer"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
            if centered:
                state["grad_avg"] = Tensor._wrap(np.zeros_like(p._data), p._dev)
        return state

    def _traced_step(self) -> None:
        """``step`` while ember.jit traces: one "rmsprop_update" op per parameter."""
        for i, group in enumerate(self.param_groups):
            params = self._with_grad(group)
            momentum, centered = group["momentum"], group["centered"]
            names = ("step", "square_avg") + (("grad_avg",) if centered else ()) + \
                (("momentum_buffer",) if momentum > 0 else ())
            states = [tuple(self._state_of(p, momentum, centered)[k] for k in names)
                      for p in params]
            scalars = (_dynamic(group, i, "lr"),) + \
                ((_dynamic(group, i, "momentum"),) if momentum > 0 else ())
            attrs = dict(alpha=group["alpha"], eps=group["eps"],
                         weight_decay=group["weight_decay"], centered=centered,
                         has_momentum=momentum > 0, maximize=group["maximize"])
            _traced_update(_rmsprop_update, params, states, scalars, attrs)

_rmsprop_update.updates_state = True  # output 0 is input 0's new value, extra k input 2+k's
