"""JAX-style function transforms over the autograd engine: ``ember.grad``, ``value_and_grad``."""
from __future__ import annotations

import functools

from .. import _state
from .engine_api import grad as _autograd_grad


def _prepare(args, argnums):
    from ..tensor import Tensor
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    args = list(args)
    nested = False
    for i in nums:
        if i >= len(args):
            raise TypeError(f"grad: argnums {i} is out of range for {len(args)} positional "
                            f"arguments")
        a = args[i]
        if not isinstance(a, Tensor):
            from ..ops.creation import tensor
            a = tensor(a)
        if a.requires_grad and _state.grad_enabled:
            nested = True  # an outer transform differentiates through us: keep the graph
        else:
            a = a.detach().requires_grad_(True)
        args[i] = a
    return args, nums, nested


def value_and_grad(fn, argnums=0, has_aux: bool = False):
    """Return ``f(*args) -> (value, grads)`` where grads are d value / d args[argnums]."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..autograd.grad_mode import enable_grad
        args, nums, nested = _prepare(args, argnums)
        with enable_grad():
            out = fn(*args, **kwargs)
        aux = None
        if has_aux:
            out, aux = out
        if out.numel() != 1:
            raise RuntimeError(f"grad: the function must return a scalar tensor, got shape "
                               f"{tuple(out.shape)}")
        gs = _autograd_grad(out, [args[i] for i in nums], create_graph=nested,
                            allow_unused=True, materialize_grads=True)
        gs = gs[0] if isinstance(argnums, int) else tuple(gs)
        value = out if nested else out.detach()
        return ((value, aux), gs) if has_aux else (value, gs)
    return wrapper


def grad(fn, argnums=0, has_aux: bool = False):
    """``ember.grad(f)(x)`` is df/dx for a scalar-valued ``f``; nests for higher derivatives."""
    vg = value_and_grad(fn, argnums, has_aux)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        res, gs = vg(*args, **kwargs)
        return (gs, res[1]) if has_aux else gs
    return wrapper
