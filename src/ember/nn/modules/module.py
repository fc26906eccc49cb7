"""``nn.Module``: the base of every layer, with PyTorch's registration and state_dict rules.

Assigning a Parameter, a Module or (through ``register_buffer``) a buffer to an attribute
files it into ``_parameters``, ``_modules`` or ``_buffers``; ``state_dict`` keys follow the
attribute path (``encoder.layers.0.linear1.weight``), exactly as PyTorch names them, so
weights move between the two frameworks by name.
"""
from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple

from ... import _state
from ...tensor import RemovableHandle, Tensor
from ..parameter import Parameter

_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
_hook_ids = itertools.count()


class Module:
    """Base class for all neural-network layers and models."""

    training: bool

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments; "
                            f"Module.__init__ takes none")
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_non_persistent_buffers"] = set()
        d["_modules"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_forward_pre_hooks"] = OrderedDict()

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required "
                                  f"\"forward\" function")

    def __call__(self, *args, **kwargs):
        if _state.tracer is not None:  # ember.jit: the graph depends on train/eval mode
            _state.tracer.note_module(self)
        if not self._forward_hooks and not self._forward_pre_hooks:
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            r = hook(self, args)
            if r is not None:
                args = r if isinstance(r, tuple) else (r,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            r = hook(self, args, out)
            if r is not None:
                out = r
        return out

    # ----- registration ---------------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name)
            params[name] = value
        elif params is not None and name in params:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter "
                                f"'{name}' (torch.nn.Parameter or None expected)")
            if isinstance(value, Tensor) and not isinstance(value, Parameter):
                raise TypeError(f"cannot assign a plain Tensor to parameter '{name}' of "
                                f"{type(self).__name__}; wrap it in nn.Parameter")
            params[name] = value
        elif isinstance(value, Module):
            mods = d.get("_modules")
            if mods is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name)
            mods[name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (nn.Module or None expected)")
            d["_modules"][name] = value
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                f"(Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        for table in ("_parameters", "_buffers", "_modules"):
            self.__dict__[table].pop(name, None)
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            t = d.get(table)
            if t is not None and name in t:
                return t[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for table in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__[table]:
                del self.__dict__[table][name]
                self.__dict__["_non_persistent_buffers"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def register_parameter(self, name: str, param) -> None:
        if "." in name or not name:
            raise KeyError(f"parameter name can't contain '.' or be empty, got '{name}'")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: cannot assign '{type(param).__name__}' as "
                            f"parameter '{name}' (nn.Parameter or None expected)")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor, persistent: bool = True) -> None:
        if "." in name or not name:
            raise KeyError(f"buffer name can't contain '.' or be empty, got '{name}'")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer: cannot assign '{type(tensor).__name__}' as "
                            f"buffer '{name}' (Tensor or None expected)")
        self._forget(name)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module) -> None:
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module subclass")
        if "." in name or not name:
            raise KeyError(f"module name can't contain '.' or be empty, got '{name}'")
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target: str) -> "Module":
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules:
                raise AttributeError(f"{type(mod).__name__} has no submodule '{part}' (looking "
                                     f"up '{target}')")
            mod = mod._modules[part]
        return mod

    def get_parameter(self, target: str) -> Parameter:
        mod, _, name = target.rpartition(".")
        return getattr(self.get_submodule(mod), name)

    # ----- traversal ------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix: str = "", remove_duplicate: bool = True):
        if memo is None:
            memo = set()
        if remove_duplicate and id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is None:
                continue
            yield from m.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                       remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        seen = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self):
        for _, m in self.named_children():
            yield m

    def _named_members(self, table, prefix, recurse, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mp, m in mods:
            for name, v in getattr(m, table).items():
                if v is None or (remove_duplicate and id(v) in seen):
                    continue
                seen.add(id(v))
                yield (f"{mp}.{name}" if mp else name), v

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True):
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ----- modes ----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none and _state.tracer is not None:
                _state.tracer.note_grad_reset(p)
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad = p.grad.detach()
                p.grad.zero_()

    def apply(self, fn) -> "Module":
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def _apply(self, fn) -> "Module":
        """Replace every parameter's and buffer's data by ``fn(data)`` (in place)."""
        for m in self.modules():
            for name, p in m._parameters.items():
                if p is not None:
                    new = fn(p.detach())
                    p._data = new._data
                    p._dev = new._dev
                    p._version[0] += 1
                    if p.grad is not None:
                        g = fn(p.grad)
                        p.grad = g
            for name, b in m._buffers.items():
                if b is not None:
                    m._buffers[name] = fn(b)
        return self

    def to(self, *args, **kwargs) -> "Module":
        """Move/cast parameters and buffers: ``to(ember.float64)``, ``to("cpu")``.

        Like PyTorch, a dtype only applies to floating-point tensors.
        """
        def convert(t):
            if t.is_floating_point():
                return t.to(*args, **kwargs)
            kw = {k: v for k, v in kwargs.items() if k != "dtype"}
            devs = [a for a in args if isinstance(a, str) or hasattr(a, "backend")]
            return t.to(*devs, **kw) if devs or kw else t
        return self._apply(convert)

    def float(self):
        from ... import dtypes
        return self.to(dtypes.float32)

    def double(self):
        from ... import dtypes
        return self.to(dtypes.float64)

    def half(self):
        from ... import dtypes
        return self.to(dtypes.float16)

    def bfloat16(self):
        from ... import dtypes
        return self.to(dtypes.bfloat16)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else
                       f"cuda:{device}" if isinstance(device, int) else device)

    def type(self, dst_type):
        return self.to(dst_type)

    # ----- hooks ----------------------------------------------------------------------------
    def register_forward_hook(self, hook) -> RemovableHandle:
        """``hook(module, args, output)``; a returned value replaces the output."""
        hid = next(_hook_ids)
        self._forward_hooks[hid] = hook
        return RemovableHandle(self._forward_hooks, hid)

    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, args)``; a returned value replaces the positional args."""
        hid = next(_hook_ids)
        self._forward_pre_hooks[hid] = hook
        return RemovableHandle(self._forward_pre_hooks, hid)

    def register_full_backward_hook(self, hook) -> RemovableHandle:
        """``hook(module, grad_input, grad_output)`` once the gradients w.r.t. the module's
        tensor inputs are computed; a returned tuple replaces ``grad_input``."""
        from ._backward_hooks import install
        install(self)
        hid = next(_hook_ids)
        self._backward_hooks[hid] = hook
        return RemovableHandle(self._backward_hooks, hid)

    register_backward_hook = register_full_backward_hook

    def register_full_backward_pre_hook(self, hook) -> RemovableHandle:
        """``hook(module, grad_output)`` once the gradients w.r.t. the module's outputs are
        computed; a returned tuple replaces ``grad_output``."""
        from ._backward_hooks import install
        install(self)
        hid = next(_hook_ids)
        self._backward_pre_hooks[hid] = hook
        return RemovableHandle(self._backward_pre_hooks, hid)

    # ----- state_dict -----------------------------------------------------------------------
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered mapping from PyTorch-style dotted names to parameter/buffer tensors."""
        out = OrderedDict() if destination is None else destination
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy tensors from ``state_dict`` into this module's parameters and buffers.

        Shapes must match exactly; with ``strict`` missing and unexpected keys are errors.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        for k, target in own.items():
            if k not in state_dict:
                continue
            src = state_dict[k]
            src_shape = tuple(getattr(src, "shape", ()))
            if src_shape != tuple(target.shape):
                errors.append(f"size mismatch for {k}: copying a param with shape {src_shape} "
                              f"from checkpoint, the shape in current model is "
                              f"{tuple(target.shape)}.")
        if strict:
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in missing) + ".")
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: " +
                              ", ".join(f'"{k}"' for k in unexpected) + ".")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        from ...ops.creation import as_tensor
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            for k, target in own.items():
                if k not in state_dict:
                    continue
                src = state_dict[k]
                src = src if isinstance(src, Tensor) else as_tensor(src)
                if assign:
                    mod_name, _, leaf = k.rpartition(".")
                    mod = self.get_submodule(mod_name)
                    if leaf in mod._parameters:
                        mod._parameters[leaf] = Parameter(src, target.requires_grad)
                    else:
                        mod._buffers[leaf] = src
                else:
                    target.copy_(src)
        finally:
            _state.grad_enabled = prev
        return _IncompatibleKeys(missing, unexpected)

    # ----- repr -----------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines = extra.split("\n")
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        main = type(self).__name__ + "("
        if lines:
            if len(lines) == 1 and not self._modules:
                main += lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"
