"""ember's Tensor: a backend array, its device, and its place in the autograd graph.

The class is deliberately thin: math lives in ``ember.ops`` (one op declared in one place)
and is bound here as methods by name, so ``t.exp()`` and ``ember.exp(t)`` are one function.
"""
from __future__ import annotations

import itertools
import weakref

import numpy as np

from . import _state
from . import dtypes as _dt
from .backend import get_device

_new = object.__new__
_CPU = get_device("cpu")
_handle_ids = itertools.count()


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    __slots__ = ("_table", "_id")

    def __init__(self, table: dict, id_: int):
        self._table = table
        self._id = id_

    def remove(self) -> None:
        self._table.pop(self._id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


_PRINT_DEFAULTS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 75}
_PRINT_OPTIONS = dict(_PRINT_DEFAULTS)


def set_printoptions(precision=None, threshold=None, edgeitems=None, linewidth=None,
                     profile=None, sci_mode=None) -> None:
    """How tensors print (PyTorch's ``set_printoptions``): digits after the point, the
    element count above which the middle is summarised, and the items kept at each edge.
    ``profile`` is "default", "short" or "full"; ``sci_mode`` is accepted and ignored."""
    if profile is not None:
        presets = {"default": _PRINT_DEFAULTS,
                   "short": dict(_PRINT_DEFAULTS, precision=2, edgeitems=2),
                   "full": dict(_PRINT_DEFAULTS, threshold=2 ** 62)}
        if profile not in presets:
            raise ValueError(f"set_printoptions: profile must be 'default', 'short' or "
                             f"'full', got {profile!r}")
        _PRINT_OPTIONS.update(presets[profile])
    for k, v in (("precision", precision), ("threshold", threshold),
                 ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if v is not None:
            _PRINT_OPTIONS[k] = int(v)


class Size(tuple):
    """A tensor's shape (PyTorch's ``torch.Size``): a tuple of ints that also knows its
    ``numel()``; ``t.shape`` and ``t.size()`` return one."""

    __slots__ = ()

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self) -> str:
        return f"ember.Size({list(self)})"

    __str__ = __repr__


_new_size = tuple.__new__


class Tensor:
    """A multi-dimensional array with automatic differentiation (PyTorch's ``torch.Tensor``).

    ``Tensor(data)`` makes a float tensor from data; ``Tensor(2, 3)`` an uninitialised 2x3 one.
    Prefer ``ember.tensor(...)`` which infers the dtype.
    """

    __slots__ = ("_data", "_dev", "_node", "requires_grad", "grad", "_version", "_base",
                 "_hooks", "__weakref__")
    __array_priority__ = 1000  # so ndarray + Tensor defers to Tensor.__radd__

    def __init__(self, *args, dtype=None, device=None, requires_grad=False):
        if len(args) == 1 and not isinstance(args[0], int):
            src = args[0]
            data = src._data if isinstance(src, Tensor) else np.asarray(src)
            if dtype is None and data.dtype.kind in "biuf" and not isinstance(src, Tensor):
                dtype = _dt.get_default_dtype()
        else:
            shape = args[0] if len(args) == 1 and not isinstance(args[0], int) else args
            data = np.empty(tuple(shape), dtype=np.float32)
        if dtype is not None:
            data = data.astype(_dt.as_dtype(dtype).np, copy=False)
        self._data = get_device(device).backend.from_numpy(data)
        self._dev = get_device(device)
        self._node = None
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._version = [0]
        self._base = None
        self._hooks = None

    @classmethod
    def _wrap(cls, data, dev=_CPU):
        """Wrap an array without copying (internal fast constructor)."""
        t = _new(cls)
        t._data = data
        t._dev = dev
        t._node = None
        t.requires_grad = False
        t.grad = None
        t._version = [0]
        t._base = None
        t._hooks = None
        return t

    # ----- metadata -------------------------------------------------------------------------
    @property
    def shape(self) -> Size:
        return _new_size(Size, self._data.shape)

    def size(self, dim=None):
        if dim is None:
            return _new_size(Size, self._data.shape)
        from .errors import check_dim
        return self._data.shape[check_dim("size", dim, self._data.ndim)]

    @property
    def dtype(self) -> _dt.dtype:
        return _dt._FROM_NP[self._data.dtype]

    @property
    def device(self):
        return self._dev

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    ndimension = dim

    def numel(self) -> int:
        return int(self._data.size)

    nelement = numel

    def element_size(self) -> int:
        return self._data.itemsize

    @property
    def itemsize(self) -> int:
        return self._data.itemsize

    @property
    def nbytes(self) -> int:
        return self._data.nbytes

    def stride(self, dim=None):
        st = tuple(s // self._data.itemsize for s in self._data.strides)
        return st if dim is None else st[dim]

    def is_contiguous(self) -> bool:
        return bool(self._data.flags.c_contiguous)

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f" or self._data.dtype == _dt._BF16

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self):
        return self._node

    @property
    def is_cuda(self) -> bool:
        return self._dev.type == "cuda"

    @property
    def data(self) -> "Tensor":
        """The same values, detached from the graph (sharing memory)."""
        return self.detach()

    @data.setter
    def data(self, value: "Tensor") -> None:
        self._data = value._data if isinstance(value, Tensor) else np.asarray(value)

    @property
    def _version_count(self) -> int:
        return self._version[0]

    # ----- conversion -----------------------------------------------------------------------
    def numpy(self, *, force: bool = False) -> np.ndarray:
        """The values as a NumPy array sharing memory (PyTorch's ``Tensor.numpy``)."""
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use "
                               "tensor.detach().numpy() instead.")
        if _state.tracer is not None:
            _state.tracer.leak(self, "numpy()")
        return self._dev.backend.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        a = self._dev.backend.to_numpy(self._data)
        if _state.tracer is not None:
            _state.tracer.leak(self, "__array__")
        return a if dtype is None else a.astype(dtype, copy=False)

    def item(self):
        if self._data.size != 1:
            raise RuntimeError(f"item: a Tensor with {self._data.size} elements cannot be "
                               f"converted to a Python scalar (shape {tuple(self.shape)})")
        if _state.tracer is not None:
            _state.tracer.leak(self, "item()")
        return self._data.reshape(()).item() if self._data.dtype != _dt._BF16 \
            else float(self._data.reshape(()))

    def tolist(self):
        if _state.tracer is not None:
            _state.tracer.leak(self, "tolist()")
        a = self._data
        if a.dtype == _dt._BF16:
            a = a.astype(np.float32)
        return a.tolist()

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with {self._data.size} elements is "
                               f"ambiguous (shape {tuple(self.shape)}); use .any() or .all()")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError(f"only integer tensors of a single element can be converted to an "
                            f"index (got shape {tuple(self.shape)}, {self.dtype})")
        return int(self.item())

    def __complex__(self) -> complex:
        return complex(self.item())

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        a = self._data
        if a.dtype == _dt._BF16:
            a = a.astype(np.float32)
        fixed = a.dtype.kind == "f" and a.size and not np.all(np.isfinite(a) & (a == np.round(a)))
        # PyTorch prints 4 fixed decimals unless every value is integral ("1., 2.")
        opt = _PRINT_OPTIONS
        body = np.array2string(a, separator=", ", prefix="tensor(", precision=opt["precision"],
                               floatmode="fixed" if fixed else "maxprec",
                               threshold=opt["threshold"], edgeitems=opt["edgeitems"],
                               max_line_width=opt["linewidth"])
        extras = []
        if self._data.dtype not in (_dt.get_default_dtype().np, np.int64, np.bool_) \
                or (self._data.size == 0 and self._data.dtype != np.float32):
            extras.append(f"dtype={self.dtype!r}")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        if self._data.size == 0 and self._data.ndim != 1:
            extras.insert(0, f"size={tuple(self.shape)}")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return repr(self)

    # ----- copying and inter-process transfer -----------------------------------------------
    def __deepcopy__(self, memo):
        if self._node is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol; detach() it first")
        t = Tensor._wrap(self._data.copy(), self._dev)
        t.requires_grad = self.requires_grad
        if self.grad is not None:
            t.grad = self.grad.__deepcopy__(memo)
        memo[id(self)] = t
        return t

    def __reduce__(self):
        # For multiprocessing (DataLoader workers) only; ember's files never use pickle.
        return (_rebuild_tensor, (type(self), self._dev.backend.to_numpy(self._data),
                                  self.requires_grad and self._node is None))

    # ----- DLPack ---------------------------------------------------------------------------
    def __dlpack__(self, *args, **kwargs):
        return self._data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._data.__dlpack_device__()

    # ----- device and dtype moves -----------------------------------------------------------
    def to(self, *args, dtype=None, device=None, copy: bool = False, non_blocking=False):
        """``t.to(ember.float64)``, ``t.to("cpu")``, ``t.to(other)``, ``t.to("cpu", float16)``."""
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, str) or hasattr(a, "backend"):
                try:
                    device = get_device(a)
                except RuntimeError:
                    if isinstance(a, str) and a in _dt._BY_NAME:
                        dtype = a
                    else:
                        raise
            else:
                dtype = a
        out = self
        if device is not None and get_device(device) is not self._dev:
            from .ops.creation import _to_device
            out = _to_device(out, get_device(device))
        if dtype is not None:
            out = out.type(dtype)
        if copy and out is self:
            out = self.clone()
        return out

    def type(self, dtype=None):
        if dtype is None:
            return f"ember.{_LEGACY_NAMES[self.dtype]}"
        if isinstance(dtype, str) and dtype.startswith("ember.") and dtype.endswith("Tensor"):
            dtype = _LEGACY_DTYPES.get(dtype[6:], dtype)
        elif isinstance(dtype, _LegacyTensorType):
            dtype = dtype.dtype
        d = _dt.as_dtype(dtype)
        if d.np == self._data.dtype:
            return self
        from .ops.arithmetic import cast
        return cast(self, d)

    def type_as(self, other: "Tensor") -> "Tensor":
        return self.type(other.dtype)

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def cuda(self, device=None, non_blocking: bool = False) -> "Tensor":
        """Move to a CUDA device; ember's NumPy backend has none, so this says so."""
        return self.to("cuda" if device is None else
                       f"cuda:{device}" if isinstance(device, int) else device)

    def data_ptr(self) -> int:
        """The address of the first element (equal for tensors sharing storage there)."""
        return int(self._data.__array_interface__["data"][0])

    def float(self):
        return self.type(_dt.float32)

    def double(self):
        return self.type(_dt.float64)

    def half(self):
        return self.type(_dt.float16)

    def bfloat16(self):
        return self.type(_dt.bfloat16)

    def long(self):
        return self.type(_dt.int64)

    def int(self):
        return self.type(_dt.int32)

    def short(self):
        return self.type(_dt.int16)

    def char(self):
        return self.type(_dt.int8)

    def byte(self):
        return self.type(_dt.uint8)

    def bool(self):
        return self.type(_dt.bool_)

    # ----- autograd -------------------------------------------------------------------------
    def detach(self) -> "Tensor":
        t = Tensor._wrap(self._data, self._dev)
        t._version = self._version  # shares memory, so shares the version counter
        return t

    def detach_(self) -> "Tensor":
        self._node = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if not requires_grad and self._node is not None:
            raise RuntimeError("requires_grad_: you can only change requires_grad flags of "
                               "leaf variables; use detach() for a non-leaf tensor")
        if requires_grad and not self.is_floating_point():
            raise RuntimeError(f"requires_grad_: only Tensors of floating point dtype can "
                               f"require gradients (got {self.dtype})")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        if self._node is not None:
            self._node.retained = weakref.ref(self)
        elif not self.requires_grad:
            raise RuntimeError("retain_grad: can't retain_grad on Tensor that has "
                               "requires_grad=False")

    @property
    def retains_grad(self) -> bool:
        return self._node is not None and self._node.retained is not None

    def register_hook(self, hook) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that "
                               "doesn't require gradient")
        if self._node is not None:
            if self._node.hooks is None:
                self._node.hooks = {}
            table = self._node.hooks
        else:
            if self._hooks is None:
                self._hooks = {}
            table = self._hooks
        hid = next(_handle_ids)
        table[hid] = hook
        return RemovableHandle(table, hid)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``."""
        _backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph,
                 inputs=inputs)


class _LegacyTensorType(type):
    """Metaclass of PyTorch's typed constructors (``ember.FloatTensor([1, 2])``,
    ``ember.LongTensor(3)``), which old scripts still use; ``isinstance`` checks the dtype."""

    def __instancecheck__(cls, obj) -> bool:
        return isinstance(obj, Tensor) and obj._data.dtype == cls.dtype.np

    def __call__(cls, *args, device=None):
        if len(args) == 1 and not isinstance(args[0], (int, Size)):
            if isinstance(args[0], Tensor):
                return args[0].type(cls.dtype)
            from .ops.creation import tensor
            return tensor(args[0], dtype=cls.dtype, device=device)
        shape = args[0] if len(args) == 1 and isinstance(args[0], Size) else args
        return Tensor._wrap(np.empty(tuple(shape), cls.dtype.np), get_device(device))

    def __repr__(cls) -> str:
        return f"<class 'ember.{cls.__name__}'>"


def _legacy(name: str, dtype) -> _LegacyTensorType:
    return _LegacyTensorType(name, (), {"dtype": dtype})


FloatTensor = _legacy("FloatTensor", _dt.float32)
DoubleTensor = _legacy("DoubleTensor", _dt.float64)
HalfTensor = _legacy("HalfTensor", _dt.float16)
BFloat16Tensor = _legacy("BFloat16Tensor", _dt.bfloat16)
ByteTensor = _legacy("ByteTensor", _dt.uint8)
CharTensor = _legacy("CharTensor", _dt.int8)
ShortTensor = _legacy("ShortTensor", _dt.int16)
IntTensor = _legacy("IntTensor", _dt.int32)
LongTensor = _legacy("LongTensor", _dt.int64)
BoolTensor = _legacy("BoolTensor", _dt.bool_)
_LEGACY_NAMES = {t.dtype: t.__name__ for t in (
    FloatTensor, DoubleTensor, HalfTensor, BFloat16Tensor, ByteTensor, CharTensor, ShortTensor,
    IntTensor, LongTensor, BoolTensor)}
_LEGACY_DTYPES = {name: d for d, name in _LEGACY_NAMES.items()}


def _rebuild_tensor(cls, array, requires_grad):
    t = Tensor._wrap(array)
    if cls is not Tensor:
        t = cls(t, requires_grad=requires_grad) if requires_grad else cls(t, False)
    elif requires_grad:
        t.requires_grad = True
    return t


# Methods are the ops of ember.ops, bound by name: one op, one definition.
from .ops import _tensor_methods  # noqa: E402
from .autograd.engine_api import backward as _backward  # noqa: E402

_tensor_methods.bind(Tensor)
