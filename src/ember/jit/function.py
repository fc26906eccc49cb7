"""``ember.jit``: trace a function or Module on its first call, replay compiled code after.

Each call is keyed by a *signature*: tensor arguments' shapes, dtypes and requires_grad,
the values of non-tensor arguments, grad mode, and (for a Module) the train/eval flag of
every submodule. A new signature traces again; retraces are counted (``f.retraces``) and a
function that keeps retracing gets one warning naming the argument that changed.

What runs eagerly instead of compiled, always with the same results:
- ``disable=True`` or the environment variable ``EMBER_DISABLE_JIT=1`` (step through with pdb);
- a call inside another trace (it is inlined into the outer graph);
- a signature whose trace was aborted: data-dependent Python (``if t.item() > 0``), a random
  op, or NumPy code on a tensor's data — a one-line warning names the user's source line;
- a signature whose outputs carry a live autograd graph *and* that also runs a backward
  pass itself (``.grad`` changes inside the function).

Outputs that carry a live autograd graph (the caller may call ``backward()`` through them)
compile too: the trace also records the backward pass, split into a forward graph that
keeps the values backward needs and a backward graph run by one autograd node (see
:mod:`.backward`). A function that does its own ``loss.backward()`` (a whole training step)
compiles with the traced backward in its graph, and the parameters' ``.grad`` are set after
each call as the eager code would set them.
"""
from __future__ import annotations

import functools
import os
import warnings

import numpy as np

from .. import _state
from ..tensor import Tensor
from . import passes
from .backward import attach, backward_op, split, trace_backward
from .codegen import generate
from .tracer import Tracer, tracing

RETRACE_WARNING_AFTER = 8


def _flatten(obj, leaves):
    """Tensors of a (nested) tuple/list/dict output, and a function rebuilding the structure."""
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return lambda it: next(it)
    if isinstance(obj, (tuple, list)):
        builders = [_flatten(o, leaves) for o in obj]
        kind = type(obj)
        if kind is tuple or kind is list or not hasattr(kind, "_fields"):
            return lambda it: kind([b(it) for b in builders])  # list, tuple, ember.Size
        return lambda it: kind(*[b(it) for b in builders])  # namedtuple
    if isinstance(obj, dict):
        keys = list(obj)
        builders = [_flatten(obj[k], leaves) for k in keys]
        return lambda it: {k: b(it) for k, b in zip(keys, builders)}
    return lambda it: obj


def _arguments(args, kwargs) -> list:
    """Positional arguments, then keyword arguments in name order: the call's inputs."""
    return list(args) + [kwargs[k] for k in sorted(kwargs)]


class _Entry:
    __slots__ = ("graph", "compiled", "rebuild", "aborted", "n_out", "dev", "guards", "modes",
                 "back_graph", "back_compiled", "diff", "sources", "source_has_grad",
                 "backward_op", "requires")


class JitFunction:
    """The callable ``ember.jit`` returns; ``graph``, ``code`` and ``retraces`` inspect it."""

    def __init__(self, fn, *, disable: bool = False, module=None, passes_=passes.DEFAULT):
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._module = module
        self._disable = disable
        self._passes = passes_
        self._cache: dict = {}
        self._last_key = None
        self._last_entry = None
        self.retraces = 0
        self._warned_retrace = False
        self._warned_lines: set = set()

    # ----- inspection -----------------------------------------------------------------------
    @property
    def graph(self):
        """The graph of the most recent compiled signature."""
        e = self._last_entry
        if e is None or e.aborted:
            raise RuntimeError("ember.jit: nothing compiled yet (call the function first)"
                               if e is None else f"ember.jit: the last call ran eagerly: "
                               f"{e.aborted}")
        return e.graph

    @property
    def code(self) -> str:
        self.graph  # raises a clear error when there is nothing compiled
        return self._last_entry.compiled.source

    # ----- calling --------------------------------------------------------------------------
    def _eager(self, args, kwargs):
        return self._fn(*args, **kwargs)

    def _signature(self, args, kwargs):
        parts = []
        for a in _arguments(args, kwargs):
            if isinstance(a, Tensor):
                parts.append(("T", a.shape, a._data.dtype.str, a.requires_grad))
            else:
                try:
                    hash(a)
                    parts.append(("V", a))
                except TypeError:
                    parts.append(("O", id(a)))
        parts.append(("grad", _state.grad_enabled))
        if self._module is not None:
            parts.append(("train", tuple(m.training for m in self._module.modules())))
        return tuple(parts)

    def __call__(self, *args, **kwargs):
        if self._disable or os.environ.get("EMBER_DISABLE_JIT", "0") not in ("", "0") or \
                _state.tracer is not None:
            return self._eager(args, kwargs)
        tensors = [a for a in _arguments(args, kwargs) if isinstance(a, Tensor)]
        key = self._signature(args, kwargs)
        entry = self._cache.get(key)
        # a cached graph is stale when a parameter's .grad is not what it assumed (None, or
        # the tensor it accumulates into) or a module it called switched train/eval
        stale = entry is not None and (
            (entry.guards and not all(t.grad is g for t, g in entry.guards)) or
            (entry.modes and not all(m.training == t for m, t in entry.modes)) or
            (entry.requires and not all(t.requires_grad == r for t, r in entry.requires)))
        if entry is None or stale:
            if self._cache:
                self._note_retrace(key)
            entry, result = self._trace(args, kwargs)
            self._cache[key] = entry
            self._last_key, self._last_entry = key, entry
            return result
        self._last_key, self._last_entry = key, entry
        if entry.aborted:
            return self._eager(args, kwargs)
        return self._run(entry, tensors)

    def _note_retrace(self, key):
        self.retraces += 1
        if self.retraces >= RETRACE_WARNING_AFTER and not self._warned_retrace:
            self._warned_retrace = True
            changed = "?"
            if self._last_key is not None:
                for i, (a, b) in enumerate(zip(self._last_key, key)):
                    if a != b:
                        changed = (f"argument {i}" if a[0] in "TVO" else a[0]) + \
                            f" changed from {a[1:]} to {b[1:]}"
                        break
            warnings.warn(f"ember.jit: {self.__name__} was traced {self.retraces + 1} times; "
                          f"each new signature retraces ({changed}). Keep shapes, dtypes and "
                          f"Python arguments fixed, or pass varying numbers as tensors.",
                          stacklevel=3)

    def _trace(self, args, kwargs):
        tracer = Tracer()
        entry = _Entry()
        entry.aborted = None
        entry.guards = ()
        entry.modes = ()
        entry.requires = ()
        entry.back_graph = None
        for a in _arguments(args, kwargs):
            if isinstance(a, Tensor):
                tracer.add_input(a)
        with tracing(tracer):
            result = self._fn(*args, **kwargs)
        leaves: list = []
        entry.rebuild = _flatten(result, leaves)
        graph = tracer.graph
        n_inputs = len(graph.inputs)
        diff = [i for i, t in enumerate(leaves)
                if t._node is not None and t._node.inputs is not None]
        back = None
        if tracer.aborted is None and diff:
            # outputs with a live autograd graph: the caller may backpropagate through them
            if tracer.grad_seen or tracer.grad_reset:
                entry.aborted = ("its outputs require grad and it also runs a backward pass "
                                 "itself")
                return entry, result
            back = trace_backward(tracer, leaves, diff)
        if tracer.aborted is None:
            _state.tracer = tracer  # outputs made outside ember's ops abort too
            try:
                graph.outputs = [tracer.value_of(t) for t in leaves]
                if back is not None:
                    graph.outputs += [v for v in back[2] if v is not None]
                tracer.finish_grads()
            finally:
                _state.tracer = None
        if tracer.aborted is not None:
            e = tracer.aborted
            entry.aborted = e.reason + (f" at {e.where}" if e.where else "")
            if e.where not in self._warned_lines:
                self._warned_lines.add(e.where)
                warnings.warn(f"ember.jit: running {self.__name__} eagerly: {entry.aborted}",
                              stacklevel=3)
            return entry, result
        if self._module is not None:  # name captures after the module's attribute paths
            names = {id(t): n for n, t in list(self._module.named_parameters()) +
                     list(self._module.named_buffers())}
            for v in graph.captures:
                if id(v.tensor) in names:
                    v.name = names[id(v.tensor)]
        entry.guards = tuple(tracer.guards)
        entry.modes = tuple(tracer.modes)
        entry.n_out = len(leaves)
        entry.dev = leaves[0]._dev if leaves else None
        from ..backend import get_device
        xp = get_device(entry.dev).xp
        if back is None:
            passes.optimize(graph, self._passes)
        else:
            placeholders, sources, grad_values = back
            basic = [p for p in self._passes if p in passes.BASIC]
            passes.optimize(graph, basic)
            graph, back_graph, _ = split(graph, n_inputs, len(leaves), placeholders)
            rest = [p for p in self._passes if p not in passes.BASIC]
            passes.optimize(graph, rest)
            passes.optimize(back_graph, rest)
            entry.back_graph = back_graph
            entry.back_compiled = generate(back_graph, xp)
            entry.diff = diff
            entry.sources = [v for v, _ in sources]
            entry.source_has_grad = [v is not None for v in grad_values]
            entry.backward_op = backward_op(self.__name__)
        if _state.grad_enabled:  # freezing or unfreezing a parameter changes the graph
            entry.requires = tuple((v.tensor, v.tensor.requires_grad) for v in graph.captures)
        entry.graph = graph
        entry.compiled = generate(graph, xp)
        return entry, result

    def _run(self, entry, tensors):
        graph = entry.graph
        inputs = [t._data for t in tensors]
        captures = [v.tensor._data for v in graph.captures]
        dynamics = [np.asarray(v.tensor(), dtype=v.dtype) for v in graph.dynamics]
        try:
            outs, muts, grads = entry.compiled.fn(inputs, captures, dynamics)
        except Exception as e:  # noqa: BLE001 - re-raised with the op and the user's line
            raise _located(e, entry.compiled) from None
        from ..backend import get_device
        dev = entry.dev or get_device("cpu")

        def live(target):
            return tensors[target.index] if target.kind == "input" else target.tensor

        def wrap(a):
            if not isinstance(a, dev.xp.ndarray):  # full reductions give NumPy scalars
                a = dev.xp.asarray(a)
            return Tensor._wrap(a, dev)

        for (target, _), new in zip(graph.mutations, muts):
            t = live(target)
            if new is not t._data:
                t._data[...] = new
            t._version[0] += 1
        new_grads = iter(grads)
        for target, v in graph.grad_writes:
            live(target).grad = None if v is None else wrap(next(new_grads))
        n = entry.n_out
        # an output that is an input or a parameter itself is returned as that tensor
        wrapped = [live(v) if v.kind in ("input", "capture") else wrap(o)
                   for v, o in zip(graph.outputs, outs[:n])]
        if entry.back_graph is not None:
            sources = [tensors[v.index] if v.kind == "input" else v.tensor
                       for v in entry.sources]
            attach(entry, [wrapped[i] for i in entry.diff], sources, list(outs[n:]), tensors)
        return entry.rebuild(iter(wrapped))


def _located(exc, compiled):
    """Name the op and the user's source line of the node that raised."""
    tb = exc.__traceback__
    node = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == compiled.filename:
            node = compiled.line_to_node.get(tb.tb_lineno)
        tb = tb.tb_next
    if node is None:
        return exc
    where = f" (created at {node.where})" if node.where else ""
    shapes = ", ".join(f"{v.shape} {v.dtype}" for v in node.inputs)
    return type(exc)(f"{node.op.name}: failed inside a compiled ember.jit graph for inputs "
                     f"{shapes}{where}: {exc}") if isinstance(
        exc, (ValueError, TypeError, IndexError, RuntimeError, FloatingPointError)) else exc


def jit(fn=None, *, disable: bool = False):
    """Compile a function or a Module: ``fast = ember.jit(f)`` or ``@ember.jit``."""
    if fn is None:
        return lambda f: jit(f, disable=disable)
    from ..nn.modules.module import Module
    if isinstance(fn, Module):
        return JitModule(fn, disable=disable)
    return JitFunction(fn, disable=disable)


class JitModule(JitFunction):
    """A compiled view of a Module; attribute access falls through to the module."""

    def __init__(self, module, *, disable: bool = False):
        super().__init__(module.__call__, disable=disable, module=module)
        self.__name__ = type(module).__name__

    def __getattr__(self, name):
        return getattr(self.__dict__["_module"], name)

    def __repr__(self) -> str:
        return f"jit({self._module!r})"
