"""``Optimizer``: parameter groups, per-parameter state and PyTorch's state_dict format.

The bookkeeping lives here; each optimiser file adds a plain update-rule function working on
backend arrays in place (``sgd``, ``adam``, ...) and a class whose ``step`` gathers the arrays
of one group and calls it. Updates write straight into ``param._data`` (no graph is recorded,
as under ``torch.no_grad``) and bump the parameter's version counter, so a graph that saved
the old values still notices the change.

``state_dict()`` is PyTorch's: ``{"state": {index: {name: Tensor | number}}, "param_groups":
[{..hyper-parameters.., "params": [indices]}]}``: tensors and plain Python values only, so it
stores as safetensors + JSON.
"""
from __future__ import annotations

import copy
import functools
import itertools
from collections import OrderedDict, defaultdict
from typing import Any, Callable

import numpy as np

from .. import _state
from ..autograd.grad_mode import enable_grad
from ..ops.registry import apply
from ..tensor import RemovableHandle, Tensor

_hook_ids = itertools.count()


class _RequiredParameter:
    """Marks a hyper-parameter that has no default and must be given."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _scalar(x) -> float:
    """A hyper-parameter as a Python number (``lr`` may be a 1-element Tensor, as in PyTorch)."""
    return float(x.item() if isinstance(x, Tensor) else x)


def _check_lr(lr) -> None:
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= _scalar(lr):
        raise ValueError(f"Invalid learning rate: {lr}")


def _check_nonneg(what: str, value) -> None:
    if not 0.0 <= value:
        raise ValueError(f"Invalid {what}: {value}")


def _step_tensor(value: float = 0.0) -> Tensor:
    """PyTorch keeps the step count as a float32 scalar tensor; so does ember."""
    return Tensor._wrap(np.array(value, dtype=np.float32))


def _advance(step: Tensor) -> float:
    """``step += 1`` in place; returns the new count as a Python float."""
    step._data += 1
    return float(step._data)


def _bump(params) -> None:
    for p in params:
        p._version[0] += 1


# ----- traced steps (a training step compiled by ember.jit) --------------------------------------
# While ember.jit traces, ``step`` must not write raw NumPy (the graph would not see it): each
# parameter's update is one registry op ("sgd_update", "adam_update", ...) whose forward copies
# the parameter and state arrays and runs the same update function on the copies; its results
# are written back into the live tensors (this trace's own call is a real step) and reported to
# the tracer as in-place writes, which the compiled graph repeats after every call. Learning
# rates and momenta are op inputs read from the param group at every call, so a scheduler's
# changes take effect without a retrace.

def _tracing() -> bool:
    return _state.tracer is not None


def _dynamic(group: dict, index: int, key: str, item: int | None = None) -> Tensor:
    """A 0-d float64 tensor holding ``group[key]`` (or ``group[key][item]``) now and at every
    later call of the compiled graph."""
    if item is None:
        def fn():
            return _scalar(group[key])
        fn.__qualname__ = f"param_groups[{index}][{key!r}]"
    else:
        def fn():
            return _scalar(group[key][item])
        fn.__qualname__ = f"param_groups[{index}][{key!r}][{item}]"
    return _state.tracer.dynamic_scalar(fn, np.float64)


def _own(a, inplace: bool):
    """The update ops' inputs: copied (functional semantics), or updated in place when the
    jit's code generator found the inputs are live state about to be overwritten anyway."""
    return a if inplace else a.copy()


def _traced_update(op, params: list, states: list, scalars: tuple, attrs: dict) -> None:
    """Apply ``op`` to each parameter: ``op(p, p.grad, *states[i], *scalars)`` returns the new
    parameter and a tuple of new state arrays (one per entry of ``states[i]``)."""
    tracer = _state.tracer
    for p, st in zip(params, states):
        # state made in this call (the first step) outlives it: a live capture, not a constant
        for s in st:
            tracer.capture(s)
        out = apply(op, (p, p.grad, *st, *scalars), attrs)
        out, extras = out if op.extra else (out, ())
        np.copyto(p._data, out._data)
        tracer.inplace(p, out)
        for s, e in zip(st, extras):
            np.copyto(s._data, e)
            tracer.inplace(s, Tensor._wrap(e, s._dev))
    _bump(params)


class Optimizer:
    """Base class of all optimisers (PyTorch's ``torch.optim.Optimizer``).

    ``params`` is an iterable of Tensors, of ``(name, Tensor)`` pairs (``named_parameters()``),
    or of dicts ``{"params": [...], "lr": ...}`` giving per-group options; ``defaults`` holds
    the options a group does not specify.
    """

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        self._patch_step_function()
        if isinstance(params, Tensor):
            raise TypeError(f"params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__} of shape "
                            f"{tuple(params.shape)}; wrap it in a list: [tensor]")
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ----- step and its hooks -----------------------------------------------------------------
    @classmethod
    def _patch_step_function(cls) -> None:
        """Wrap the most derived ``step`` once so that hooks run and schedulers can tell that
        ``optimizer.step()`` was called (PyTorch patches the class the same way)."""
        step = cls.step
        if getattr(step, "_hooked", False):
            return

        @functools.wraps(step)
        def wrapper(self, *args, **kwargs):
            self._opt_called = True
            if not self._optimizer_step_pre_hooks and not self._optimizer_step_post_hooks:
                return step(self, *args, **kwargs)
            for hook in list(self._optimizer_step_pre_hooks.values()):
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(f"optimizer step pre-hook must return None or a "
                                           f"tuple of (new_args, new_kwargs), but got {result}")
                    args, kwargs = result
            out = step(self, *args, **kwargs)
            for hook in list(self._optimizer_step_post_hooks.values()):
                hook(self, args, kwargs)
            return out

        wrapper._hooked = True
        wrapper._wrapped_by_lr_sched = True
        cls.step = wrapper

    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs)`` runs before each ``step``; it may return new
        ``(args, kwargs)``."""
        hid = next(_hook_ids)
        self._optimizer_step_pre_hooks[hid] = hook
        return RemovableHandle(self._optimizer_step_pre_hooks, hid)

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs)`` runs after each ``step``."""
        hid = next(_hook_ids)
        self._optimizer_step_post_hooks[hid] = hook
        return RemovableHandle(self._optimizer_step_post_hooks, hid)

    def step(self, closure: Callable[[], Any] | None = None):
        """Update the parameters once; ``closure`` re-evaluates the model and returns the loss."""
        raise NotImplementedError(f"{type(self).__name__}.step is not implemented")

    @staticmethod
    def _eval_closure(closure):
        if closure is None:
            return None
        with enable_grad():
            return closure()

    def _with_grad(self, group) -> list:
        """The group's parameters that have a gradient (the others are skipped, as in PyTorch)."""
        return [p for p in group["params"] if p.grad is not None]

    # ----- groups ----------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (with its own options) to ``param_groups``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        param_group["params"] = params
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. Some param "
                                 "names are missing")
            param_group["param_names"] = names
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not self.defaults.get("differentiable", None) and not (p.is_leaf
                                                                      or p.retains_grad):
                raise ValueError(f"can't optimize a non-leaf Tensor (shape {tuple(p.shape)})")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        if len(params) != len({id(p) for p in params}):
            import warnings
            warnings.warn("optimizer contains a parameter group with duplicate parameters; "
                          "in future, this will cause an error", stacklevel=3)
        seen = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError(f"all optimizer param groups should be with/without names. "
                                 f"cannot add param group {which} to the optimizer")
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to ``None`` (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if set_to_none and _state.tracer is not None:
                    _state.tracer.note_grad_reset(p)
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    if g._node is not None:
                        g.detach_()
                    else:
                        g.requires_grad = False
                    if _state.tracer is not None:  # a traced step: the graph zeroes it
                        from ..ops.creation import zeros_like
                        g.copy_(zeros_like(g))
                        continue
                    g._data[...] = 0
                    g._version[0] += 1

    # ----- state_dict ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state in PyTorch's layout: parameters are replaced by their index
        (counting through the groups in order); the tensors are the live state, not copies."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v
                 for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a ``state_dict()`` (from ember, or PyTorch's converted to ember tensors).

        The tensors are copied (and cast to their parameter's floating dtype), so the loaded
        optimiser shares no memory with the dict. Integer keys that came back from JSON as
        strings are accepted.
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError(f"loaded state dict has a different number of parameter groups "
                             f"({len(saved_groups)}) than the optimizer ({len(groups)})")
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"loaded state dict contains a parameter group that doesn't "
                                 f"match the size of optimizer's group: group {i} has "
                                 f"{len(s['params'])} parameters in the state dict and "
                                 f"{len(g['params'])} in the optimizer")
        id_map = {}
        for g, s in zip(groups, saved_groups):
            for k, p in zip(s["params"], g["params"]):
                id_map[_int_key(k)] = p
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            k = _int_key(k)
            if k in id_map:
                p = id_map[k]
                state[p] = {name: _cast(p, val, name) for name, val in v.items()}
            else:
                state[k] = v
        for g, s in zip(groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
        self.state = state
        self.param_groups = saved_groups
        self._after_load()

    def _after_load(self) -> None:
        """Fill in options that older state dicts lack (a subclass's ``__setstate__``)."""
        for group in self.param_groups:
            for name, default in self.defaults.items():
                if default is not required:
                    group.setdefault(name, default)
            for p in group["params"]:
                st = self.state.get(p)
                if st and "step" in st and not isinstance(st["step"], Tensor):
                    st["step"] = _step_tensor(float(st["step"]))

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("_optimizer_step_pre_hooks", OrderedDict())
        self.__dict__.setdefault("_optimizer_step_post_hooks", OrderedDict())


def _int_key(k):
    return int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k


def _cast(param: Tensor, value, key=None):
    """A deep copy of a state value; floating tensors take the parameter's dtype, except
    ``step`` which stays float32 (as in PyTorch)."""
    if isinstance(value, Tensor):
        a = value._data
        if key != "step" and param.is_floating_point() and a.dtype.kind == "f":
            a = a.astype(param._data.dtype, copy=True)
        elif key == "step":
            a = np.array(a, dtype=np.float32)
        else:
            a = a.copy()
        return Tensor._wrap(a, param._dev)
    if isinstance(value, dict):
        return {k: _cast(param, v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast(param, v) for v in value)
    if isinstance(value, np.ndarray):  # from a loader that hands back arrays
        return _cast(param, Tensor._wrap(value), key)
    return value



def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start.lerp_(end, weight)`` with PyTorch's formula (exact at both ends)."""
    diff = end - start
    if weight < 0.5:
        diff *= weight
        start += diff
    else:
        diff *= 1 - weight
        np.subtract(end, diff, out=start)
