"""``Engine``: the one training loop under ``ember.keras``'s ``fit`` and ``ember.learner``.

The loop is fastai's: named events around every stage (see :mod:`ember.train.events`), every
feature a callback, the loop state on the engine where callbacks read and change it::

    engine = Engine(model, F.cross_entropy, opt, train_loader, valid_loader,
                    metrics=[Accuracy()], cbs=[GradientClip(1.0)])
    engine.fit(3)
    engine.recorder.history      # {"loss": [...], "accuracy": [...], "val_loss": [...], ...}

A batch from the data is split into inputs and targets: ``xb = batch[:n_inp]``,
``yb = batch[n_inp:]`` (a batch that is not a tuple or list is all input). The model is called
as ``model(*xb)`` and the loss as ``loss_func(pred, *yb)``; the recorder hands metrics
``yb[0]`` as targets and ``yb[1]`` (when present) as sample weights. NumPy arrays in batches
become Tensors.

Compiled train step: with ``jit_compile`` True or "auto" (the default) the whole step —
``zero_grad``, forward, loss, backward, ``opt.step()`` — is traced once per batch signature by
:func:`ember.jit` and replayed as generated code. It is equivalent to the eager step, so it is
on by default; it turns off when a callback defines step events (``after_pred`` ...
``after_step``) without being ``traceable``, since the compiled step never returns to Python
between those stages, and with "auto" when the trace finds Python code it cannot capture or
when batches keep changing shape (the step then runs eagerly; ``engine.jit_status`` says
why). Callbacks marked ``traceable`` (``GradientClip``) run inside the compiled step.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Iterable

import numpy as np

from .. import _state
from ..tensor import Tensor
from .events import (STEP_EVENTS, Callback, CancelBackwardException, CancelBatchException,
                     CancelEpochException, CancelFitException, CancelStepException,
                     CancelTrainException, CancelValidException)
from .metrics import to_numpy
from .recorder import Recorder

__all__ = ["Engine", "to_tensors", "detach", "map_structure"]

_ndarray = np.ndarray
# the events of one batch: the only ones a callback's run_train / run_valid switch off
_BATCH_EVENTS = frozenset((
    "before_batch", "after_pred", "after_loss", "before_backward", "after_cancel_backward",
    "after_backward", "before_step", "after_step", "after_cancel_batch", "after_batch"))
# with jit_compile="auto", batches of more shapes than this run eagerly (a trace per shape)
_MAX_SIGNATURES = 4


def map_structure(fn: Callable, obj):
    """Apply ``fn`` to every leaf of nested tuples, lists and dicts (None stays None)."""
    if isinstance(obj, tuple):
        return tuple(map_structure(fn, o) for o in obj)
    if isinstance(obj, list):
        return [map_structure(fn, o) for o in obj]
    if isinstance(obj, dict):
        return {k: map_structure(fn, v) for k, v in obj.items()}
    return None if obj is None else fn(obj)


def _to_tensor(x):
    if isinstance(x, np.ndarray):
        return Tensor._wrap(x if x.flags.c_contiguous else np.ascontiguousarray(x))
    return x


def to_tensors(obj):
    """NumPy arrays in a nested batch as ember Tensors (no copy); other leaves unchanged."""
    if isinstance(obj, np.ndarray):
        return _to_tensor(obj)
    return map_structure(_to_tensor, obj)


def detach(obj):
    """Every Tensor of a nested structure detached from the autograd graph."""
    return map_structure(lambda t: t.detach() if isinstance(t, Tensor) else t, obj)


def _flatten(obj, leaves: list):
    """Tensors of a nested structure, and a hashable description of where they sit."""
    if isinstance(obj, Tensor):
        leaves.append(obj)
        return "T"
    if isinstance(obj, (tuple, list)):
        return (type(obj).__name__,) + tuple(_flatten(o, leaves) for o in obj)
    if isinstance(obj, dict):
        return ("dict",) + tuple((k, _flatten(v, leaves)) for k, v in obj.items())
    return ("V", obj) if obj is None or isinstance(obj, (int, float, str, bool)) else \
        ("O", id(obj))


def _unflatten(spec, it):
    if spec == "T":
        return next(it)
    kind = spec[0]
    if kind == "flat":  # (xb, yb) tuples of Tensors, xb of spec[1]
        leaves = tuple(it)
        return leaves[:spec[1]], leaves[spec[1]:]
    if kind == "tuple":
        return tuple(_unflatten(s, it) for s in spec[1:])
    if kind == "list":
        return [_unflatten(s, it) for s in spec[1:]]
    if kind == "dict":
        return {k: _unflatten(s, it) for k, s in spec[1:]}
    if kind == "V":
        return spec[1]
    raise TypeError("ember.train: a batch holds an object that is neither a Tensor, an array "
                    "nor a number; the compiled step cannot pass it")


class Engine:
    """The training loop: ``fit``, ``validate`` and ``predict`` with named events.

    Args:
        model: an ``nn.Module`` (called as ``model(*xb)``, or through ``forward``).
        loss_func: ``loss_func(pred, *yb)`` -> a scalar Tensor, or ``(loss, {name: part})``
            whose parts (detached scalars) are tracked and logged beside the loss.
        opt: an ``ember.optim`` optimiser (``zero_grad``/``step``); None to only evaluate.
        train_data / valid_data: iterables of batches (DataLoaders, lists, generators...),
            iterated afresh each epoch; an object with ``set_epoch(epoch)`` is told the epoch
            first (for reproducible shuffling).
        metrics: stateful metrics (:mod:`ember.train.metrics`).
        cbs: callbacks (:class:`ember.train.Callback`).
        n_inp: how many leading items of a batch are model inputs.
        jit_compile: True, False or "auto": compile the train step (see the module doc).
        valid_freq: validate every ``valid_freq`` epochs (int), or after the listed epochs
            (1-based list), as Keras's ``validation_freq``.
        verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.
        forward: called instead of ``model`` to make predictions (``forward(*xb)``).
    """

    def __init__(self, model, loss_func: Callable | None = None, opt=None,
                 train_data: Iterable | None = None, valid_data: Iterable | None = None,
                 metrics: Iterable | None = None, cbs: Iterable | None = None, *,
                 n_inp: int = 1, jit_compile: bool | str = "auto", valid_freq=1,
                 verbose: int = 0, forward: Callable | None = None) -> None:
        if jit_compile not in (True, False, "auto"):
            raise ValueError(f"Engine: jit_compile must be True, False or 'auto', got "
                             f"{jit_compile!r}")
        self.model = model
        self.forward = forward
        self.loss_func = loss_func
        self.opt = opt
        self.train_data = train_data
        self.valid_data = valid_data
        self.metrics = list(metrics or [])
        self.n_inp = n_inp
        self.jit_compile = jit_compile
        self.jit_status = "not used yet"
        self.valid_freq = valid_freq
        # loop state, read and written by callbacks
        self.phase = None            # "fit", "validate" or "predict" while running
        self.training = False
        self.epoch = 0
        self.n_epoch = 0
        self.start_epoch = 0
        self.skip_batches = 0        # batches of the next training epoch to skip, untrained
        self.iter = 0
        self.n_iter = None
        self.dl = None
        self.xb: tuple = ()
        self.yb: tuple = ()
        self.pred = None
        self.loss = None
        self.loss_grad = None
        self.loss_parts = None
        self.logs: dict = {}
        self.cbs: list[Callback] = []
        self._handlers: dict = {}
        self._compiled = None
        # reuse the compiled steps in the next fit: only safe when the callbacks stay the same
        # and nothing replaces the optimiser's state tensors in between (ember.optim's
        # load_state_dict does), since a graph holds on to the tensors it captured
        self.keep_compiled = False
        self.recorder = Recorder()
        self.add_cb(self.recorder)
        if verbose:
            from .progress import ProgressBar
            self.add_cb(ProgressBar(verbose))
        self.add_cbs(cbs or [])

    # ----- callbacks --------------------------------------------------------------------------
    def add_cb(self, cb: Callback) -> "Engine":
        """Attach a callback (a Callback instance, or a Callback class to instantiate)."""
        if isinstance(cb, type):
            cb = cb()
        if not isinstance(cb, Callback):
            raise TypeError(f"Engine.add_cb: expected an ember.train.Callback, got "
                            f"{type(cb).__name__}")
        cb.engine = self
        self.cbs.append(cb)
        self._index()
        return self

    def add_cbs(self, cbs: Iterable) -> "Engine":
        for cb in cbs:
            self.add_cb(cb)
        return self

    def remove_cb(self, cb: Callback) -> "Engine":
        if cb in self.cbs:
            self.cbs.remove(cb)
            cb.engine = None
            self._index()
        return self

    @contextlib.contextmanager
    def added_cbs(self, cbs: Iterable | None):
        """Attach ``cbs`` for the duration of a ``with`` block."""
        cbs = [c() if isinstance(c, type) else c for c in (cbs or [])]
        self.add_cbs(cbs)
        try:
            yield self
        finally:
            for cb in cbs:
                self.remove_cb(cb)

    def _index(self) -> None:
        """Per event, the bound methods that handle it, in callback order (stable)."""
        self.cbs.sort(key=lambda c: c.order)
        handlers: dict = {}
        for cb in self.cbs:
            for name in dir(type(cb)):
                if name.startswith(("before_", "after_")) and callable(getattr(type(cb), name)):
                    handlers.setdefault(name, []).append((cb, getattr(cb, name)))
        self._handlers = handlers

    def __call__(self, event: str) -> None:
        """Run every callback's handler for ``event``."""
        hs = self._handlers.get(event)
        if not hs:
            return
        if event not in _BATCH_EVENTS:  # as fastai: run_train/run_valid gate batch events only
            for _, f in hs:
                f()
            return
        training = self.training
        for cb, f in hs:
            if cb.run_train if training else cb.run_valid:
                f()

    def _with_events(self, f: Callable, name: str, cancel: type) -> bool:
        """``before_<name>``, ``f()``, ``after_<name>``; a ``cancel`` exception runs
        ``after_cancel_<name>`` instead of the rest. Returns False when cancelled."""
        done = True
        try:
            self("before_" + name)
            f()
        except cancel:
            done = False
            self("after_cancel_" + name)
        self("after_" + name)
        return done

    # ----- fit --------------------------------------------------------------------------------
    def fit(self, n_epoch: int, cbs: Iterable | None = None, start_epoch: int = 0) -> dict:
        """Train for epochs ``start_epoch .. n_epoch-1``; returns ``recorder.history``.

        Callbacks may move ``start_epoch`` (and set ``skip_batches``) in ``before_fit``.
        """
        if self.opt is None:
            raise ValueError("Engine.fit: no optimiser (opt=None); pass one to train")
        if self.loss_func is None:
            raise ValueError("Engine.fit: no loss function (loss_func=None); pass one to train")
        if self.train_data is None:
            raise ValueError("Engine.fit: no training data (train_data=None)")
        with self.added_cbs(cbs):
            self.n_epoch, self.start_epoch, self.epoch = n_epoch, start_epoch, start_epoch
            self.phase = "fit"
            try:
                self._with_events(self._do_fit, "fit", CancelFitException)
            finally:
                self.phase = None
        return self.recorder.history

    def _do_fit(self) -> None:
        self._setup_compiled()
        self.opt.zero_grad()
        for epoch in range(self.start_epoch, self.n_epoch):
            self.epoch = epoch
            self._with_events(self._do_epoch, "epoch", CancelEpochException)

    def _should_validate(self) -> bool:
        if self.valid_data is None:
            return False
        f, e = self.valid_freq, self.epoch + 1
        if isinstance(f, int):
            return e % f == 0
        if isinstance(f, (list, tuple, set)):
            return e in f
        raise ValueError(f"Engine: valid_freq must be an int or a list of epochs, got "
                         f"{type(f).__name__} {f!r}")

    def _do_epoch(self) -> None:
        self.logs = {}
        self._do_epoch_train()
        if self._should_validate():
            self._do_epoch_validate()

    def _do_epoch_train(self) -> None:
        self.training = True
        self.model.train()
        self._set_data(self.train_data)
        self._with_events(self._all_batches, "train", CancelTrainException)

    def _do_epoch_validate(self, data=None) -> None:
        self.training = False
        self.model.eval()
        self._set_data(self.valid_data if data is None else data)
        prev = _state.grad_enabled
        _state.grad_enabled = False
        try:
            self._with_events(self._all_batches, "validate", CancelValidException)
        finally:
            _state.grad_enabled = prev

    def _set_data(self, dl) -> None:
        self.dl = dl
        try:
            self.n_iter = len(dl)
        except TypeError:
            self.n_iter = None

    def _all_batches(self) -> None:
        dl = self.dl
        set_epoch = getattr(dl, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(self.epoch)
        it = iter(dl)
        start = 0
        if self.training and self.skip_batches:
            start, self.skip_batches = self.skip_batches, 0
            skip = getattr(dl, "skip", None)
            if callable(skip):  # data that can skip without making the batches
                it = skip(it, start)
            else:
                for _ in range(start):
                    if next(it, _END) is _END:
                        return
        for i, batch in enumerate(it, start):
            self.iter = i
            self._one_batch(batch)

    def _split(self, batch) -> None:
        if isinstance(batch, (tuple, list)):
            n = self.n_inp
            # arrays and Tensors directly (the common case) without walking a structure
            self.xb = tuple(_to_tensor(b) if type(b) is _ndarray else b if type(b) is Tensor
                            else to_tensors(b) for b in batch[:n])
            self.yb = tuple(_to_tensor(b) if type(b) is _ndarray else b if type(b) is Tensor
                            else to_tensors(b) for b in batch[n:])
        else:
            self.xb, self.yb = (to_tensors(batch),), ()

    def _one_batch(self, batch) -> None:
        self._split(batch)
        self.pred = self.loss = self.loss_grad = self.loss_parts = None
        self._with_events(self._do_one_batch, "batch", CancelBatchException)

    def _predict(self):
        return (self.forward or self.model)(*self.xb)

    def _compute_loss(self) -> None:
        out = self.loss_func(self.pred, *self.yb)
        if isinstance(out, tuple):
            out, parts = out
            self.loss_parts = detach(parts)
        self.loss_grad = out
        self.loss = out.detach()

    def _do_one_batch(self) -> None:
        if self.training and self._compiled is not None:
            self._run_compiled()
            return
        self.pred = self._predict()
        self("after_pred")
        if not self.yb or self.loss_func is None:
            return
        self._compute_loss()
        self("after_loss")
        if not self.training:
            return
        self._with_events(self._backward, "backward", CancelBackwardException)
        if self._with_events(self._step, "step", CancelStepException):
            self.opt.zero_grad()

    def _backward(self) -> None:
        if self.loss_grad.requires_grad:  # False when every parameter is frozen
            self.loss_grad.backward()

    def _step(self) -> None:
        self.opt.step()

    # ----- the compiled train step ------------------------------------------------------------
    def _setup_compiled(self) -> None:
        """Decide whether this fit uses a compiled train step."""
        keep = self._compiled if self.keep_compiled else None
        self._compiled = None
        if self.jit_compile is False:
            self.jit_status = "off (jit_compile=False)"
            return
        blockers = sorted({type(cb).__name__ for cb in self.cbs if not cb.traceable
                           for ev in STEP_EVENTS if ev in self._handlers and
                           any(c is cb for c, _ in self._handlers[ev])})
        if blockers:
            self.jit_status = (f"off: callbacks {', '.join(blockers)} hook the step's inner "
                               f"events and are not traceable")
            if self.jit_compile is True:
                warnings.warn(f"Engine: jit_compile=True but the train step runs eagerly: "
                              f"{self.jit_status}", stacklevel=4)
            return
        self._compiled = keep if keep is not None else {}
        self.jit_status = "on"

    def _traced_step(self, spec):
        """The Python train step that ember.jit traces, for batches laid out as ``spec``."""
        def step(*leaves):
            self.xb, self.yb = _unflatten(spec, iter(leaves))
            self.opt.zero_grad()
            self.pred = self._predict()
            self("after_pred")
            self._compute_loss()
            self("after_loss")
            self("before_backward")
            if self.loss_grad.requires_grad:
                self.loss_grad.backward()
            self("after_backward")
            self("before_step")
            self.opt.step()
            self("after_step")
            return self.loss, detach(self.pred), self.loss_parts
        step.__name__ = step.__qualname__ = "train_step"
        return step

    def _run_compiled(self) -> None:
        from ..jit import jit
        xb, yb = self.xb, self.yb
        if all(type(t) is Tensor for t in xb) and all(type(t) is Tensor for t in yb):
            leaves, spec = [*xb, *yb], ("flat", len(xb))  # tuples of Tensors: no walk
        else:
            leaves = []
            spec = _flatten((xb, yb), leaves)
        fn = self._compiled.get(spec)
        first = fn is None
        if first:
            fn = self._compiled[spec] = jit(self._traced_step(spec))
        traces = len(fn._cache)
        if first and self.jit_compile == "auto":
            with warnings.catch_warnings():  # a trace that fails is reported in jit_status
                warnings.simplefilter("ignore")
                out = fn(*leaves)
        else:
            out = fn(*leaves)
        self.xb, self.yb = xb, yb
        self.loss, self.pred, self.loss_parts = out
        self.loss_grad = self.loss
        if len(fn._cache) == traces:
            return
        if fn._last_entry.aborted:  # this call traced, and the trace failed
            self.jit_status = f"off: {fn._last_entry.aborted}"
        elif self.jit_compile == "auto" and len(fn._cache) > _MAX_SIGNATURES:
            self.jit_status = (f"off: the batches came in {len(fn._cache)} different shapes; "
                               f"tracing each costs more than it saves")
        else:
            return
        if self.jit_compile == "auto":
            self._compiled = None  # the eager loop, with its events, from now on
            self.opt.zero_grad()  # the eager step zeroes after stepping, not before

    # ----- validate / predict -----------------------------------------------------------------
    def validate(self, data: Iterable | None = None, cbs: Iterable | None = None) -> dict:
        """Run the model over ``data`` (default ``valid_data``) without training; returns the
        loss and metric results (unprefixed)."""
        data = self.valid_data if data is None else data
        if data is None:
            raise ValueError("Engine.validate: no data (pass data or set valid_data)")
        epoch = self.epoch  # what a fit left (a validation outside fit counts as epoch 0)
        with self.added_cbs(cbs):
            self.phase, self.logs, self.epoch = "validate", {}, 0
            try:
                self._do_epoch_validate(data)
            finally:
                self.phase, self.epoch = None, epoch
        return dict(self.logs)

    def predict(self, data: Iterable, cbs: Iterable | None = None):
        """The model's outputs over ``data`` (batches of inputs only), as NumPy arrays
        concatenated along the first axis, in the model's output structure."""
        outs: list = []
        collect = _Collect(outs)
        # no targets: neither the loss nor the metrics are computed (or shown)
        (loss_func, metrics), (self.loss_func, self.metrics) = (self.loss_func, self.metrics), \
            (None, [])
        epoch = self.epoch
        with self.added_cbs([collect, *(cbs or [])]):
            self.phase, self.logs, self.epoch = "predict", {}, 0
            try:
                self._do_epoch_validate(data)
            finally:
                self.phase, self.epoch = None, epoch
                self.loss_func, self.metrics = loss_func, metrics
        return concat_outputs(outs)


_END = object()


class _Collect(Callback):
    """Gathers each batch's predictions as NumPy (the engine's ``predict``)."""

    order = 55

    def __init__(self, outs: list) -> None:
        self.outs = outs

    def after_batch(self) -> None:
        self.outs.append(map_structure(lambda t: np.array(to_numpy(t)), self.engine.pred))


def concat_outputs(outs: list) -> Any:
    """Batches of (nested) NumPy outputs joined along axis 0, keeping the structure."""
    if not outs:
        return None
    first = outs[0]
    if isinstance(first, (tuple, list)):
        return type(first)(concat_outputs([o[i] for o in outs]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: concat_outputs([o[k] for o in outs]) for k in first}
    if first is None:
        return None
    return np.concatenate([np.atleast_1d(o) for o in outs], axis=0)
