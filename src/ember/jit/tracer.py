"""The tracer: run a function once on real tensors and record every registry op into a Graph.

While a trace runs, ``ember._state.tracer`` is set and ``ops.registry.apply`` reports each
op here. Each tensor maps to a graph :class:`~ember.jit.ir.Value`:

- the function's tensor arguments become graph inputs;
- tensors that existed before the trace (parameters, buffers, optimiser state) become
  *captures*: live inputs read at every call, never frozen;
- tensors made during the trace by ember's creation functions (``zeros``, ``arange``, the
  constant of ``x * 2.0``) become constants;
- outputs of recorded ops become node outputs.

A tensor of any other origin (a random mask, an array computed with NumPy from a traced
tensor) would silently freeze a value that should change, so it aborts the trace, as does
reading a traced tensor's value in Python (``.item()``, ``bool(t)``, ``.numpy()``). An
aborted trace simply stops recording — the function keeps running eagerly, so its side
effects happen once — and the caller runs that signature eagerly from then on, warning once
with the user's source line.
"""
from __future__ import annotations

import gc
import os
import sys

from .. import _state
from ..tensor import Tensor
from .ir import Graph

_EMBER_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _library_dirs() -> tuple:
    """ember's own code and the array libraries it calls: never the user's line."""
    import numpy
    dirs = [_EMBER_DIR, os.path.dirname(numpy.__file__)]
    for name in ("scipy", "ml_dtypes"):
        mod = sys.modules.get(name)
        if mod is not None and getattr(mod, "__file__", None):
            dirs.append(os.path.dirname(mod.__file__))
    return tuple(dirs)


class TraceAborted(Exception):
    """The function can't be captured as one graph; ``where`` is the user's source line."""

    def __init__(self, reason: str, where: str):
        super().__init__(f"{reason} at {where}" if where else reason)
        self.reason = reason
        self.where = where


def user_line() -> str:
    """``file.py:12  source`` of the innermost stack frame outside ember's own code."""
    f = sys._getframe(1)
    skip = _library_dirs()
    while f is not None and f.f_code.co_filename.startswith(skip):
        f = f.f_back
    if f is None:
        return ""
    import linecache
    src = linecache.getline(f.f_code.co_filename, f.f_lineno).strip()
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}  {src}"


class Tracer:
    def __init__(self):
        self.graph = Graph()
        self.values: dict = {}       # id(tensor) -> Value
        self.by_array: dict = {}     # id(array) -> Value (aliases such as detach() share it)
        self.seen: dict = {}         # id(tensor) -> its version counter when last bound
        self.origin: dict = {}       # id(tensor) -> Value it had when the trace first saw it
        self.keep: list = []         # keeps traced objects alive so their ids stay unique
        self.constants: set = set()  # ids of tensors made by creation functions in the trace
        # type() rather than isinstance(): some objects (lazy module proxies) run code on
        # attribute access
        self.existing = {id(o) for o in gc.get_objects() if issubclass(type(o), Tensor)}
        self.aborted: TraceAborted | None = None
        self._input_tensors: list = []
        self.grad_reset: set = set()   # ids of leaves whose .grad the traced code set to None
        self.grad_seen: set = set()
        self.guards: list = []         # (leaf, the .grad object it must have at call start)
        self.modes: list = []          # (module, its .training during the trace)

    def abort(self, reason: str) -> None:
        if self.aborted is None:
            self.aborted = TraceAborted(reason, user_line())
        _state.tracer = None  # stop recording; the function goes on eagerly

    # ----- mapping tensors to values --------------------------------------------------------
    def bind(self, t: Tensor, v) -> None:
        self.values[id(t)] = v
        self.by_array[id(t._data)] = v
        self.seen[id(t)] = t._version[0]
        self.keep.append(t)

    def value_of(self, t: Tensor):
        v = self.values.get(id(t))
        if v is not None:
            if t._base is not None and self.seen[id(t)] != t._version[0]:
                return self._rederive(t)
            return v
        v = self.by_array.get(id(t._data))
        if v is None:
            if id(t) in self.constants:
                v = self.graph.add_const(t._data)
            elif id(t) in self.existing:
                v = self.graph.add_capture(t)
            else:
                self.abort("a tensor computed outside ember's ops (a random mask, or NumPy "
                           "code on a tensor's data) is used")
                return None
            self.origin[id(t)] = v
        self.bind(t, v)
        return v

    def add_input(self, t: Tensor, name: str | None = None):
        self._input_tensors.append(t)
        v = self.graph.add_input(t.shape, t._data.dtype, name)
        self.origin[id(t)] = v
        self.bind(t, v)
        return v

    # ----- hooks called by ember while the trace runs ---------------------------------------
    def record(self, op, inputs, attrs, out: Tensor, extra=None) -> None:
        ins = [self.value_of(x) for x in inputs]
        if self.aborted is not None:
            return
        extras = [] if extra is None else list(extra) if isinstance(extra, tuple) else [extra]
        if not all(hasattr(e, "shape") and hasattr(e, "dtype") for e in extras):
            self.abort(f"op '{op.name}' keeps non-array state for its backward, which "
                       f"graphs can't hold yet")
            return
        specs = [(out.shape, out._data.dtype)] + [(e.shape, e.dtype) for e in extras]
        node = self.graph.add_node(op, ins, attrs, specs, user_line())
        node.extra_tuple = isinstance(extra, tuple)
        self.bind(out, node.outputs[0])
        for e, v in zip(extras, node.outputs[1:]):
            self.by_array[id(e)] = v
            self.keep.append(e)

    def dynamic_scalar(self, fn, dtype) -> Tensor:
        """A 0-d tensor holding ``fn()`` now and at every later call of the compiled graph:
        how traced code reads Python numbers that change between calls (learning rates)."""
        import numpy as np
        t = Tensor._wrap(np.asarray(fn(), dtype=dtype))
        v = self.graph.add_dynamic(fn, dtype)
        self.origin[id(t)] = v
        self.bind(t, v)
        return t

    def capture(self, t: Tensor) -> None:
        """``t`` was made during the trace but outlives the call (optimiser state created on
        the first step): treat it as a live capture, not a constant."""
        self.existing.add(id(t))
        self.keep.append(t)

    def constant(self, t: Tensor) -> None:
        """A creation function made ``t`` from Python data: safe to bake in."""
        self.constants.add(id(t))
        self.keep.append(t)

    def inplace(self, target: Tensor, result: Tensor) -> None:
        """``target`` now holds ``result``'s value (an in-place op); inputs and captures
        changed this way are written back after each call."""
        if target._base is not None:
            self._write_through(target, result)
        first = self.origin.get(id(target)) or self.value_of(target)
        new = self.value_of(result)
        if self.aborted is not None:
            return
        self.bind(target, new)
        if first.kind in ("input", "capture"):
            self.graph.mutations = [(t, v) for t, v in self.graph.mutations if t is not first]
            self.graph.mutations.append((first, new))

    def _write_through(self, view: Tensor, result: Tensor) -> None:
        """An in-place change of a view changes the tensor owning its memory: give that
        tensor the value with the view's region replaced (an ``index_put``)."""
        from ..autograd.grad_mode import no_grad
        from ..ops.indexing import _index_put
        from ..ops.inplace import region, root_of
        from ..ops.registry import apply
        root, chain = root_of(view)
        if id(root) not in self.values and id(root._data) not in self.by_array and \
                id(root) not in self.existing:
            return  # memory the graph never saw (not an input, capture or traced value)
        with no_grad():
            flat = apply(_index_put, (root.reshape(-1), result.reshape(-1)),
                         {"key": (region(root, chain),)})
            new = flat.reshape(root.shape)
        self.inplace(root, new)

    def _rederive(self, t: Tensor):
        """A view whose memory changed since the trace last saw it (its base was written in
        place): its value is the view op applied to the base's current value, as eager
        reads it through shared memory."""
        from ..autograd.grad_mode import no_grad
        from ..ops.inplace import root_of
        from ..ops.registry import apply
        root, chain = root_of(t)
        x = root
        with no_grad():
            for op, attrs in reversed(chain):
                x = apply(op, (x,), attrs)
        v = self.values.get(id(x)) or self.by_array.get(id(x._data))
        if v is None:
            return None
        self.bind(t, v)
        return v

    def note_module(self, module) -> None:
        """A Module ran in the trace: the graph holds for its current train/eval mode only."""
        if all(m is not module for m, _ in self.modes):
            self.modes.append((module, module.training))

    def note_grad_reset(self, t: Tensor) -> None:
        """``zero_grad`` set ``t.grad`` to None inside the traced code."""
        self.grad_reset.add(id(t))
        self.keep.append(t)

    def note_grad_use(self, t: Tensor) -> None:
        """The backward is about to accumulate into ``t.grad``. Unless the traced code reset
        it, the graph assumes ``t.grad`` is, at every call, what it is now (None, or this
        very tensor, accumulated in place): a guard checked before each replay."""
        if id(t) in self.grad_seen:
            return
        self.grad_seen.add(id(t))
        if id(t) not in self.grad_reset:
            self.guards.append((t, t.grad))

    def finish_grads(self) -> None:
        """Record what each input's and capture's ``.grad`` is now (a traced backward)."""
        g = self.graph
        for target in g.inputs + g.captures:
            t = target.tensor if target.kind == "capture" else self._input_tensors[target.index]
            if not getattr(t, "requires_grad", False) or \
                    (id(t) not in self.grad_seen and id(t) not in self.grad_reset):
                continue  # the traced code left this .grad alone
            grad = t.grad
            if grad is None:
                g.grad_writes.append((target, None))
                continue
            first = self.origin.get(id(grad))
            if first is not None and first.kind in ("capture", "input"):
                continue  # the same tensor, accumulated in place: a mutation writes it back
            v = self.values.get(id(grad)) or self.by_array.get(id(grad._data))
            if v is not None and v.kind == "node":
                g.grad_writes.append((target, v))

    def leak(self, t: Tensor, what: str) -> None:
        """Python read a traced tensor's value: the result would be baked into the graph."""
        if id(t) in self.values or id(t._data) in self.by_array:
            self.abort(f"data-dependent Python code ({what} on a traced tensor)")


class tracing:
    """Context manager installing a tracer as ``ember._state.tracer``."""

    def __init__(self, tracer: Tracer):
        self.tracer = tracer

    def __enter__(self):
        if _state.tracer is not None:
            raise RuntimeError("ember.jit: nested traces are not supported; call the inner "
                               "jitted function's Python function directly")
        _state.tracer = self.tracer
        return self.tracer

    def __exit__(self, *exc):
        _state.tracer = None
        return False
