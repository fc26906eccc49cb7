"""``Trainer``: Keras's ``compile``/``fit``/``evaluate``/``predict`` for any ember Module.

``keras.Model`` inherits it; so can any ``nn.Module``::

    class Net(Trainer, nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return F.softmax(self.fc(x), dim=-1)

    net = Net()
    net.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = net.fit(x, y, epochs=5, validation_split=0.2)

``fit`` runs on :class:`ember.train.Engine` (progress bar, metrics, compiled train step); the
Keras callbacks are driven through one engine callback that calls every hook where Keras
does, with Keras's ``logs``.

Data: NumPy arrays (or Tensors, nested lists/dicts of them, for multi-input/-output models),
Python generators and other iterables yielding ``(x, y)`` or ``(x, y, sample_weight)``
batches (``steps_per_epoch`` bounds a generator's epoch), or ember DataLoaders.

Reproducible shuffling and resuming (the contract BackupAndRestore relies on): each epoch
arrays are shuffled with ``np.random.default_rng([model._fit_seed, epoch])``, where
``_fit_seed`` is drawn from ember's global generator at the start of ``fit`` unless a callback
set it in ``on_train_begin``; a callback may also set ``model._initial_epoch`` and
``model._initial_step`` there, and ``fit`` then starts at that epoch and skips (untrained) the
first ``_initial_step`` batches of it. The optimiser's state is
``model.optimizer.state_dict()`` / ``load_state_dict()`` (``ember.optim``'s format, plus
``"iterations"``).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _state
from ..ops.random import randint
from ..tensor import Tensor
from ..train import Engine, ProgressBar
from ..train.events import Callback as _EngineCallback
from ..train.events import CancelFitException, CancelTrainException, CancelValidException
from ..train.loop import map_structure, to_tensors
from ..train.metrics import Mean, Metric, to_numpy
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module

__all__ = ["Trainer"]


# ----- data ------------------------------------------------------------------------------------

def _leaves(obj) -> list:
    if isinstance(obj, (tuple, list)):
        return [x for o in obj for x in _leaves(o)]
    if isinstance(obj, dict):
        return [x for o in obj.values() for x in _leaves(o)]
    return [] if obj is None else [obj]


def _can_slice(obj) -> bool:
    """Whether ``obj`` is array data (arrays, Tensors, nested lists/tuples/dicts of them)."""
    if obj is None:
        return True
    if isinstance(obj, dict):
        return all(_can_slice(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        if obj and all(isinstance(v, (int, float, bool, np.number)) for v in obj):
            return True  # a list of numbers: one array
        return all(_can_slice(v) for v in obj)
    return isinstance(obj, (np.ndarray, Tensor))


def _as_array(x) -> np.ndarray | Tensor:
    """Array data as NumPy (Tensors stay), float64 as float32 (Keras's floatx)."""
    if isinstance(x, Tensor):
        return x
    a = np.asarray(x)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    elif a.dtype.kind == "b":
        a = a.astype(np.float32)
    return a


def _standardize(obj):
    """Array data with each leaf a NumPy array (a list of numbers is one array)."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return {k: _standardize(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)) and not (
            obj and all(isinstance(v, (int, float, bool, np.number)) for v in obj)):
        return type(obj)(_standardize(v) for v in obj)
    return _as_array(obj)


def _slice(obj, idx):
    if obj is None:
        return None
    if isinstance(obj, dict):
        return {k: _slice(v, idx) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_slice(v, idx) for v in obj)
    if isinstance(obj, Tensor):
        if isinstance(idx, slice):
            return obj[idx]
        return Tensor._wrap(obj._data[idx], obj._dev)
    return obj[idx]


def _num_samples(what: str, arrays: dict) -> int:
    sizes = {}
    for name, obj in arrays.items():
        for leaf in _leaves(obj):
            n = leaf.shape[0] if getattr(leaf, "ndim", 0) else None
            if n is None:
                raise ValueError(f"{what}: `{name}` holds a scalar; expected arrays with a "
                                 f"leading batch dimension")
            sizes.setdefault(name, set()).add(int(n))
    flat = {n for s in sizes.values() for n in s}
    if len(flat) > 1:
        detail = ", ".join(f"{k}: {sorted(v)}" for k, v in sizes.items())
        raise ValueError(f"{what}: all arrays must have the same number of samples (first "
                         f"dimension); got {detail}")
    if not flat:
        raise ValueError(f"{what}: no input data (x is None or empty)")
    return flat.pop()


def _class_weights(y, class_weight: dict) -> np.ndarray:
    """Keras's ``class_weight_to_sample_weights``: each sample weighs its class's weight."""
    yn = np.asarray(to_numpy(y))
    if yn.ndim > 1:
        yn = np.argmax(yn, axis=-1) if yn.shape[-1] != 1 else yn[..., 0]
    yn = np.round(yn).astype(np.int64)
    sw = np.ones(yn.shape[0], np.float32)
    for i, c in enumerate(yn.reshape(yn.shape[0], -1)[:, 0]):
        sw[i] = class_weight.get(int(c), 1.0)
    return sw


def _unpack(batch) -> tuple:
    """Keras's ``unpack_x_y_sample_weight``: ``(x,)``, ``(x, y)``, ``(x, y, sw)`` or ``x``."""
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return batch[0], None, None
        if len(batch) == 2:
            return batch[0], batch[1], None
        if len(batch) == 3:
            return batch[0], batch[1], batch[2]
        raise ValueError(f"Data is expected to be in format `x`, `(x,)`, `(x, y)`, or "
                         f"`(x, y, sample_weight)`, found a batch of {len(batch)} items")
    return batch, None, None


def _pack(x, y=None, sw=None) -> tuple:
    if y is None:
        return (x,)
    return (x, y) if sw is None else (x, y, sw)


class _Data:
    """One epoch of batches at a time, as Keras's EpochIterator serves them; subclasses give
    ``_make()``, a fresh iterator of batches.

    With ``steps`` (steps_per_epoch) the underlying iterator persists across epochs; a data
    source that runs out warns, as Keras does, and an epoch that gets no batch at all stops
    training.
    """

    def __init__(self, what: str, steps: int | None, num_batches: int | None) -> None:
        self.what, self.steps, self.num_batches = what, steps, num_batches
        self.epoch = 0
        self._it = None
        self._seen = 0
        self._peeked: list = []
        self.ran_out = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = self.steps or self.num_batches
        if n is None:
            raise TypeError(f"{self.what}: the number of batches is unknown")
        return n

    def first(self):
        """The first batch of the next epoch, without losing it."""
        if not self._peeked:
            if self._it is None or self.steps is None:
                self._it, self._seen = self._make(), 0
            b = next(self._it, None)
            if b is None:
                raise ValueError(f"{self.what}: the data yielded no batch")
            self._peeked.append(b)
        return self._peeked[0]

    def __iter__(self):
        limit = self.steps or self.num_batches
        if not self._peeked and (self._it is None or self.steps is None):
            self._it, self._seen = self._make(), 0
        i = 0
        while limit is None or i < limit:
            if self.num_batches is not None and self._seen >= self.num_batches:
                if self.steps:
                    self._warn()
                break
            if self._peeked:
                b = self._peeked.pop()
            else:
                b = next(self._it, _END)
                if b is _END:
                    if self.steps or i == 0:
                        self._warn()
                    if i == 0:
                        self.ran_out = True
                    self._it = None
                    break
            self._seen += 1
            i += 1
            yield b
        if self.num_batches is not None and self._seen >= self.num_batches:
            self._it = None

    def _warn(self) -> None:
        warnings.warn("Your input ran out of data; interrupting training. Make sure that your "
                      "dataset or generator can generate at least `steps_per_epoch * epochs` "
                      "batches.", stacklevel=2)


_END = object()


class _ArrayData(_Data):
    def __init__(self, what: str, x, y, sw, batch_size: int, shuffle, steps: int | None,
                 seed_of=None) -> None:
        self.x, self.y, self.sw = x, y, sw
        self.n = _num_samples(what, {"x": x, "y": y, "sample_weight": sw})
        self.batch_size, self.shuffle, self.seed_of = batch_size, shuffle, seed_of
        super().__init__(what, steps, math.ceil(self.n / batch_size))

    def first(self):
        # arrays need not be peeked: the first slice, unshuffled (the seed is not drawn yet)
        idx = slice(0, min(self.batch_size, self.n))
        return _pack(_slice(self.x, idx), _slice(self.y, idx), _slice(self.sw, idx))

    def _make(self):
        n, bs = self.n, self.batch_size
        perm = None
        if self.shuffle:
            seed = self.seed_of() if self.seed_of is not None else None
            rng = np.random.default_rng([seed, self.epoch] if seed is not None else None)
            if self.shuffle != "batch":
                perm = rng.permutation(n)
        for i in range(self.num_batches):
            start, stop = i * bs, min((i + 1) * bs, n)
            if self.shuffle == "batch":
                idx = rng.permutation(stop - start) + start
            elif perm is not None:
                idx = perm[start:stop]
            else:
                idx = slice(start, stop)
            yield _pack(_slice(self.x, idx), _slice(self.y, idx), _slice(self.sw, idx))


class _IterData(_Data):
    def __init__(self, what: str, source, steps: int | None, class_weight: dict | None):
        try:
            n = len(source)
        except TypeError:
            n = None
        # a one-shot iterator (a generator) is continued across epochs, as Keras does
        self.source, self.class_weight = source, class_weight
        self.one_shot = hasattr(source, "__next__")
        super().__init__(what, steps, None if self.one_shot else n)

    def _make(self):
        for batch in (self.source if self.one_shot else iter(self.source)):
            x, y, sw = _unpack(batch)
            x, y, sw = (_standardize(v) for v in (x, y, sw))
            if self.class_weight is not None and y is not None and sw is None:
                sw = _class_weights(y, self.class_weight)
            yield _pack(x, y, sw)


def _is_iterable_data(x) -> bool:
    """Batches rather than arrays: a generator, DataLoader, any iterable that is not array
    data, or a list of ``(x, y[, sample_weight])`` tuples."""
    if isinstance(x, list) and x and all(isinstance(b, tuple) for b in x):
        return True
    return x is not None and not _can_slice(x) and hasattr(x, "__iter__")


# ----- compile: losses and metrics per output -----------------------------------------------------

def _flat_outputs(y_pred) -> tuple[list, list | None]:
    """The model's outputs as a list, and their dict keys (None for a list or one tensor)."""
    if isinstance(y_pred, dict):
        return list(y_pred.values()), list(y_pred)
    if isinstance(y_pred, (tuple, list)):
        return list(y_pred), None
    return [y_pred], None


def _per_output(what: str, spec, n: int, names: list, default=None) -> list:
    """A compile argument (one value, a list, or a dict by output name) as one per output."""
    if isinstance(spec, dict):
        unknown = [k for k in spec if k not in names]
        if unknown:
            raise ValueError(f"compile: {what} has keys {unknown} that are not output names; "
                             f"the outputs are {names}")
        return [spec.get(k, default) for k in names]
    if isinstance(spec, (list, tuple)) and n > 1:
        if len(spec) != n:
            raise ValueError(f"compile: {what} is a list of {len(spec)} entries but the model "
                             f"has {n} outputs {names}")
        return list(spec)
    if isinstance(spec, (list, tuple)) and n == 1 and len(spec) == 1:
        return list(spec)
    return [spec] * n


def _targets(y, n: int, names: list, keys: list | None) -> list:
    """The targets as one per output (a list in output order, or a dict by output name)."""
    if n == 1:
        if isinstance(y, (list, tuple)) and len(y) == 1:
            return [y[0]]
        if isinstance(y, dict) and len(y) == 1:
            return list(y.values())
        return [y]
    if isinstance(y, dict):
        missing = [k for k in names if k not in y]
        if missing:
            raise ValueError(f"fit: y is missing targets for outputs {missing} (y has keys "
                             f"{list(y)})")
        return [y[k] for k in names]
    if isinstance(y, (list, tuple)):
        if len(y) != n:
            raise ValueError(f"fit: the model has {n} outputs {names} but y holds "
                             f"{len(y)} arrays")
        return list(y)
    raise ValueError(f"fit: the model has {n} outputs {names}; y must be a list or dict of "
                     f"{n} target arrays, got {type(y).__name__}")


def _resolve_loss(identifier, y_true, y_pred):
    """Keras's ``get_loss``: "crossentropy"/"ce" pick their kind from the shapes; functions
    become LossFunctionWrappers named after the identifier."""
    if str(identifier).lower() in ("crossentropy", "ce"):
        kind = metrics_module._m.resolve_accuracy(y_true, y_pred)
        fn = {"binary": losses_module.binary_crossentropy,
              "sparse": losses_module.sparse_categorical_crossentropy,
              "categorical": losses_module.categorical_crossentropy}[kind]
    else:
        fn = losses_module.get(identifier)
    if isinstance(fn, losses_module.Loss):
        return fn
    if not callable(fn):
        raise ValueError(f"compile: could not interpret loss {identifier!r}")
    name = identifier if isinstance(identifier, str) else getattr(fn, "__name__", "loss")
    return losses_module.LossFunctionWrapper(fn, name=name)


class _CompileLoss:
    """The compiled loss: per-output losses, weighted and summed (Keras's CompileLoss)."""

    def __init__(self, loss, loss_weights, output_names) -> None:
        if loss_weights is not None and not isinstance(loss_weights, (list, tuple, dict,
                                                                      float, int)):
            raise ValueError(f"Expected `loss_weights` argument to be a float (single output "
                             f"case) or a list, tuple, or dict (multiple output case). "
                             f"Received instead: loss_weights={loss_weights} of type "
                             f"{type(loss_weights)}")
        self.loss, self.loss_weights, self.output_names = loss, loss_weights, output_names
        self.built = False
        self.entries: list = []  # (output index, Loss, weight, name)

    def build(self, y_true, y_pred) -> None:
        outs, keys = _flat_outputs(y_pred)
        n = len(outs)
        names = keys or (list(self.output_names) if self.output_names and
                         len(self.output_names) == n else None)
        targets = _targets(y_true, n, names or [f"output_{i}" for i in range(n)], keys)
        losses = _per_output("loss", self.loss, n, names or [f"output_{i}" for i in range(n)])
        weights = _per_output("loss_weights", self.loss_weights, n,
                              names or [f"output_{i}" for i in range(n)])
        used: dict = {}
        for i, (ident, w) in enumerate(zip(losses, weights)):
            if ident is None:
                continue
            fn = _resolve_loss(ident, targets[i], outs[i])
            name = names[i] if names else fn.name
            if name in used:
                used[name] += 1
                name = f"{name}_{used[name] - 1}"
            else:
                used[name] = 1
            self.entries.append((i, fn, None if w is None else float(w), name))
        if not self.entries:
            raise ValueError("compile: no loss to compute (every output's loss is None)")
        self.names = names or [f"output_{i}" for i in range(n)]
        self.built = True

    def __call__(self, y_true, y_pred, sample_weight=None):
        """``(total, {"<output>_loss": unweighted loss})``; the dict is empty for one loss."""
        if not self.built:
            self.build(y_true, y_pred)
        outs, keys = _flat_outputs(y_pred)
        targets = _targets(y_true, len(outs), self.names, keys)
        if isinstance(sample_weight, (list, tuple)):
            sws = _targets(sample_weight, len(outs), self.names, keys)
        elif isinstance(sample_weight, dict):
            sws = [sample_weight.get(k) for k in self.names]
        else:
            sws = [sample_weight] * len(outs)
        total, parts = None, {}
        for i, fn, w, name in self.entries:
            v = fn(targets[i], outs[i], sws[i])
            if len(self.entries) > 1:
                parts[f"{name}_loss"] = v
            if w is not None:
                v = v * w
            total = v if total is None else total + v
        return total, parts


class _CompileMetrics(Metric):
    """The compiled metrics of every output, built from the first batch (Keras's
    CompileMetrics): plain metrics ignore sample weights, ``weighted_metrics`` use them."""

    def __init__(self, metrics, weighted_metrics, output_names) -> None:
        super().__init__(name="compile_metrics")
        for what, m in (("metrics", metrics), ("weighted_metrics", weighted_metrics)):
            if m and not isinstance(m, (list, tuple, dict)):
                raise ValueError(f"Expected `{what}` argument to be a list, tuple, or dict. "
                                 f"Received instead: {what}={m} of type {type(m)}")
        self.user, self.user_weighted, self.output_names = metrics, weighted_metrics, \
            output_names
        self.built = False
        self.plain: list = []     # (output index, output name or None, Metric)
        self.weighted: list = []

    def _build_set(self, spec, targets, outs, names) -> list:
        if not spec:
            return []
        n = len(outs)
        if n == 1:
            flat = [m for m in (spec if isinstance(spec, (list, tuple)) else [spec])]
            if flat and isinstance(flat[0], (list, tuple)):
                flat = [m for sub in flat for m in sub]
            per = [flat]
        elif isinstance(spec, dict):
            per = [spec.get(k) for k in names]
        elif isinstance(spec, (list, tuple)) and len(spec) == n:
            per = list(spec)  # one entry (a metric or a list of them) per output
        else:
            per = [spec] * n  # the same metrics for every output (Keras 2's rule)
        out = []
        for i, ms in enumerate(per):
            if ms is None:
                continue
            ms = ms if isinstance(ms, (list, tuple)) else [ms]
            for ident in ms:
                m = metrics_module._resolve(ident, targets[i], outs[i])
                out.append((i, names[i] if n > 1 else None, m))
        return out

    def build(self, y_true, y_pred) -> None:
        outs, keys = _flat_outputs(y_pred)
        n = len(outs)
        names = keys or (list(self.output_names) if self.output_names and
                         len(self.output_names) == n else [f"output_{i}" for i in range(n)])
        targets = _targets(y_true, n, names, keys)
        self.names = names
        self.plain = self._build_set(self.user, targets, outs, names)
        self.weighted = self._build_set(self.user_weighted, targets, outs, names)
        self.built = True

    @property
    def metrics(self) -> list:
        return [m for _, _, m in self.plain + self.weighted]

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        if not self.built:
            self.build(y_true, y_pred)
        outs, keys = _flat_outputs(y_pred)
        targets = _targets(y_true, len(outs), self.names, keys)
        for i, _, m in self.plain:
            m.update_state(targets[i], outs[i])
        if self.weighted:
            if isinstance(sample_weight, (list, tuple)):
                sws = list(sample_weight)
            elif isinstance(sample_weight, dict):
                sws = [sample_weight.get(k) for k in self.names]
            else:
                sws = [sample_weight] * len(outs)
            for i, _, m in self.weighted:
                m.update_state(targets[i], outs[i], sample_weight=sws[i])

    def reset_state(self) -> None:
        for m in self.metrics:
            m.reset_state()

    def result(self) -> dict:
        """Keras's naming: ``<output>_<metric>``, repeats numbered, weighted repeats
        ``weighted_<metric>``."""
        out: dict = {}
        count: dict = {}
        for i, oname, m in self.plain:
            name = f"{oname}_{m.name}" if oname else m.name
            if name in count:
                count[name] += 1
                name = f"{name}_{count[name] - 1}"
            else:
                count[name] = 1
            out[name] = m.result()
        for i, oname, m in self.weighted:
            name = f"{oname}_{m.name}" if oname else m.name
            if name in count:
                name = f"{oname}_weighted_{m.name}" if oname else f"weighted_{m.name}"
                if name in count:
                    count[name] += 1
                    name = f"{name}_{count[name] - 1}"
                else:
                    count[name] = 1
            else:
                count[name] = 1
            out[name] = m.result()
        return out

    def names_in_order(self) -> list:
        return list(self.result()) if self.built else []


# ----- the engine callback that drives the Keras callbacks ---------------------------------------

def _overrides(cbs, *hooks: str) -> bool:
    """Whether any callback of ``cbs`` overrides one of ``hooks`` (else its logs are unused)."""
    from .callbacks.callback import is_default
    for cb in cbs:
        for h in hooks:
            # per instance: a LambdaCallback sets its hooks as instance attributes
            impl = getattr(cb, h, None)
            if impl is not None and not is_default(impl):
                return True
    return False


class _KerasHooks(_EngineCallback):
    """Calls the Keras CallbackList's hooks at the engine's events, with Keras's logs."""

    order = 60  # after the recorder (the logs are ready), before the progress bar

    def __init__(self, cbs, model, steps_per_execution: int = 1) -> None:
        self.cbs, self.model_, self.spe = cbs, model, max(1, int(steps_per_execution))
        # batch hooks nobody overrides are not called at all (per-batch cost matters)
        self._hooked = {h: _overrides(cbs, *hs) for h, hs in (
            ("train_begin", ("on_train_batch_begin", "on_batch_begin")),
            ("train_end", ("on_train_batch_end", "on_batch_end")),
            ("test_begin", ("on_test_batch_begin",)), ("test_end", ("on_test_batch_end",)),
            ("predict_begin", ("on_predict_batch_begin",)),
            ("predict_end", ("on_predict_batch_end",)))}
        self._last_logs: dict = {}
        self._constrained = callable(getattr(model, "apply_constraints", None)) and any(
            getattr(w, "constraint", None) is not None for w in model.parameters())

    # fit
    def before_fit(self) -> None:
        m, e = self.model_, self.engine
        self.cbs.on_train_begin()
        if m._fit_seed is None:
            m._fit_seed = int(randint(0, 2**31 - 1, (1,)).item())
        if m._initial_epoch:
            e.start_epoch = int(m._initial_epoch)
        if m._initial_step:
            e.skip_batches = int(m._initial_step)

    def before_epoch(self) -> None:
        self.cbs.on_epoch_begin(self.engine.epoch)

    def before_validate(self) -> None:
        if self.engine.phase == "predict":
            self.model_.stop_predicting = False
            self.cbs.on_predict_begin()
        else:
            self.model_.stop_evaluating = False
            self.cbs.on_test_begin()

    def before_batch(self) -> None:
        e = self.engine
        if e.iter % self.spe:
            return
        if e.phase == "predict":
            if self._hooked["predict_begin"]:
                self.cbs.on_predict_batch_begin(e.iter)
        elif e.training:
            if self._hooked["train_begin"]:
                self.cbs.on_train_batch_begin(e.iter)
        elif self._hooked["test_begin"]:
            self.cbs.on_test_batch_begin(e.iter)

    def after_batch(self) -> None:
        e, m = self.engine, self.model_
        if self._constrained and e.training and e.phase != "predict":
            m.apply_constraints()  # Keras projects constrained weights after every step
        last = e.n_iter is not None and e.iter + 1 >= e.n_iter
        if (e.iter + 1) % self.spe and not last:
            return
        if e.phase == "predict":
            if self._hooked["predict_end"]:
                self.cbs.on_predict_batch_end(e.iter, {"outputs": map_structure(
                    lambda t: np.array(to_numpy(t)), e.pred)})
            if m.stop_predicting:
                raise CancelValidException()
        elif e.training:
            if self._hooked["train_end"]:
                self.cbs.on_train_batch_end(e.iter, e.recorder.results())
            if m.stop_training:
                raise CancelTrainException()
        else:
            if self._hooked["test_end"]:
                self.cbs.on_test_batch_end(e.iter, e.recorder.results())
            if m.stop_evaluating:
                raise CancelValidException()

    def after_validate(self) -> None:
        if self.engine.phase == "predict":
            self.cbs.on_predict_end()
        else:
            self.cbs.on_test_end(self.engine.recorder.results())

    def after_epoch(self) -> None:
        logs = dict(self.engine.logs)
        self._last_logs = logs
        self.cbs.on_epoch_end(self.engine.epoch, logs)
        if getattr(self.engine.train_data, "ran_out", False):
            self.model_.stop_training = True  # an epoch without data: nothing left to train

    def after_fit(self) -> None:
        self.cbs.on_train_end(self._last_logs)


class _StopTraining(_EngineCallback):
    """Ends ``fit`` after an epoch once ``model.stop_training`` is set — after the progress
    bar (order 80) has printed that epoch, as Keras prints it before stopping."""

    order = 90

    def __init__(self, model) -> None:
        self.model_ = model

    def after_epoch(self) -> None:
        if self.model_.stop_training:
            raise CancelFitException()


# ----- the Trainer mixin -------------------------------------------------------------------------

def _verbose(verbose) -> int:
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2, True, False):
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    return int(verbose)


def _sorted_logs(logs: dict) -> dict:
    out = {}
    for k in sorted(logs):
        v = logs[k]
        a = np.asarray(to_numpy(v)) if not isinstance(v, (int, float)) else v
        out[k] = float(a) if isinstance(a, np.ndarray) and a.size == 1 else (
            a if isinstance(a, np.ndarray) else float(a))
    return out


class Trainer:
    """Keras's training API (``compile``, ``fit``, ``evaluate``, ``predict``, ``*_on_batch``)
    for a Module that inherits it; see the module doc."""

    # defaults live on the class: Module.__getattr__ raises for unset instance attributes
    optimizer = None
    loss = None
    compiled = False
    stop_training = False
    stop_evaluating = False
    stop_predicting = False
    history = None
    steps_per_execution = 1
    jit_compile = "auto"
    run_eagerly = False
    _initial_epoch = None
    _initial_step = None
    _fit_seed = None
    _compile_loss = None
    _compile_metrics = None
    _compile_config = None
    _loss_tracker = None
    _batch_engine = None

    # ----- compile ----------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly: bool = False, steps_per_execution: int = 1,
                jit_compile="auto", auto_scale_loss: bool = True) -> None:
        """Configure training: the optimiser (name or instance), the loss (name, function or
        Loss; a list or dict for several outputs), metrics, ``loss_weights``.

        ``jit_compile`` ("auto", True, False) compiles the train step with ember.jit;
        ``run_eagerly=True`` turns that off. ``auto_scale_loss`` is accepted for Keras
        compatibility (it only matters for mixed float16, which ember does not use).
        """
        if not isinstance(steps_per_execution, int) or steps_per_execution < 1:
            raise ValueError(f"compile: steps_per_execution must be an int >= 1, got "
                             f"{steps_per_execution!r}")
        if jit_compile not in ("auto", True, False):
            raise ValueError(f"compile: jit_compile must be 'auto', True or False, got "
                             f"{jit_compile!r}")
        self.optimizer = optimizers_module.get(optimizer)
        names = getattr(self, "output_names", None)
        self._compile_loss = _CompileLoss(loss, loss_weights, names) if loss is not None \
            else None
        self.loss = loss
        self._compile_metrics = _CompileMetrics(metrics, weighted_metrics, names) \
            if metrics is not None or weighted_metrics is not None else None
        if run_eagerly and jit_compile is True:
            warnings.warn("If `run_eagerly` is True, then `jit_compile` cannot also be True. "
                          "Disabling `jit_compile`.", stacklevel=2)
        self.run_eagerly = bool(run_eagerly)
        self.jit_compile = False if run_eagerly else jit_compile
        self.steps_per_execution = steps_per_execution
        self.stop_training = False
        self._loss_tracker = Mean(name="loss")
        self._batch_engine = None
        self._compile_config = dict(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                                    metrics=metrics, weighted_metrics=weighted_metrics,
                                    run_eagerly=run_eagerly,
                                    steps_per_execution=steps_per_execution,
                                    jit_compile=jit_compile)
        self.compiled = True

    def _assert_compiled(self, what: str) -> None:
        if not self.compiled:
            raise ValueError(f"You must call `compile()` before using the model ({what}).")
        # a custom step would be silently skipped by ember's engine: say so instead
        custom = [h for h in ("train_step", "test_step", "predict_step")
                  if callable(getattr(type(self), h, None))]
        if custom:
            raise NotImplementedError(
                f"{type(self).__name__} overrides {', '.join(custom)}: ember's fit/evaluate/"
                f"predict run the ember.train engine and do not call custom steps. Write the "
                f"loop with ember.train.Engine callbacks, or train the model with an ember.optim "
                f"loop (PyTorch style)")

    @property
    def compiled_loss(self):
        """The compiled loss: ``compiled_loss(y, y_pred, sample_weight=None,
        regularization_losses=None)`` -> the total loss Tensor (Keras 2's ``compiled_loss``)."""
        if self._compile_loss is None:
            return None
        cl = self._compile_loss

        def compiled_loss(y_true, y_pred, sample_weight=None, regularization_losses=None):
            total = cl(y_true, y_pred, sample_weight)[0]
            for r in regularization_losses or []:
                total = total + r
            return total
        return compiled_loss

    @property
    def compiled_metrics(self):
        """The compiled metrics (``update_state(y, y_pred, sample_weight)``, ``result()``)."""
        return self._compile_metrics

    @property
    def metrics(self) -> list:
        """The loss tracker, then the compiled metrics (once built by a first batch)."""
        out = [self._loss_tracker] if self._loss_tracker is not None else []
        if self._compile_metrics is not None and self._compile_metrics.built:
            out.extend(self._compile_metrics.metrics)
        return out

    def _log_keys(self) -> list:
        keys = ["loss"]
        if self._compile_metrics is not None:
            keys += self._compile_metrics.names_in_order()
        if self._compile_loss is not None and self._compile_loss.built and \
                len(self._compile_loss.entries) > 1:
            keys += [f"{n}_loss" for _, _, _, n in self._compile_loss.entries]
        return keys

    def _ordered(self, keys) -> list:
        """Keras's order of evaluate's values: the loss, the compiled metrics (by their own
        names), the per-output losses, then every other key sorted."""
        known = ["loss"]
        if self._compile_metrics is not None:
            known += [m.name for m in self._compile_metrics.metrics]
        if self._compile_loss is not None and self._compile_loss.built and \
                len(self._compile_loss.entries) > 1:
            known += [f"{n}_loss" for _, _, _, n in self._compile_loss.entries]
        keys = list(keys)
        first = [k for k in dict.fromkeys(known) if k in keys]
        return first + sorted(k for k in keys if k not in first)

    @property
    def metrics_names(self) -> list:
        """The names of the values ``evaluate`` returns, in that order."""
        return self._ordered(self._log_keys())

    def get_weights(self) -> list:
        """The weights as NumPy arrays: a Keras layer's own order, else ``state_dict()``'s
        (parameters and persistent buffers) for a plain Module."""
        own = getattr(super(), "get_weights", None)
        if own is not None:
            return own()
        return [v.detach().numpy().copy() for v in self.state_dict().values()]

    def set_weights(self, weights) -> None:
        """Set the weights from arrays in :meth:`get_weights`'s order."""
        own = getattr(super(), "set_weights", None)
        if own is not None:
            return own(weights)
        state = self.state_dict()
        weights = list(weights)
        if len(weights) != len(state):
            raise ValueError(f"{type(self).__name__}.set_weights: expected {len(state)} "
                             f"arrays ({', '.join(state)}), got {len(weights)}")
        for (k, t), w in zip(state.items(), weights):
            if tuple(np.shape(w)) != tuple(t.shape):
                raise ValueError(f"{type(self).__name__}.set_weights: weight '{k}' has shape "
                                 f"{tuple(t.shape)}, the array given has {np.shape(w)}")
        self.load_state_dict({k: Tensor._wrap(np.ascontiguousarray(w, t._data.dtype))
                              for (k, t), w in zip(state.items(), weights)})

    def reset_metrics(self) -> None:
        for m in self.metrics:
            m.reset_state()

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training: bool = True) -> Tensor:
        """The compiled loss plus the model's added losses (``self.losses``)."""
        return self._loss_fn(y_pred, y, sample_weight)[0]

    def compute_metrics(self, x, y, y_pred, sample_weight=None) -> dict:
        """Update the compiled metrics and return every metric's result."""
        if self._compile_metrics is not None:
            self._compile_metrics.update_state(y, y_pred, sample_weight)
        return self.get_metrics_result()

    def get_metrics_result(self) -> dict:
        out = {}
        for m in self.metrics:
            r = m.result()
            out.update(r if isinstance(r, dict) else {m.name: r})
        return out

    def get_compile_config(self) -> dict:
        """The compile arguments as JSON-able values (saved with the model)."""
        if not self.compiled or self._compile_config is None:
            return {}
        c = dict(self._compile_config)

        def ser(obj, kind):
            if obj is None or isinstance(obj, (str, int, float, bool)):
                return obj
            if isinstance(obj, (list, tuple)):
                return [ser(o, kind) for o in obj]
            if isinstance(obj, dict):
                return {k: ser(v, kind) for k, v in obj.items()}
            if kind == "optimizer":
                return optimizers_module.serialize(obj)
            if kind == "loss":
                return losses_module.serialize(obj)
            if isinstance(obj, Metric):
                return metrics_module.serialize(obj)
            name = getattr(obj, "__name__", None)
            if name is not None and name in metrics_module._BY_NAME:
                return name
            raise TypeError(f"get_compile_config: cannot serialize {obj!r}")
        c["optimizer"] = ser(self.optimizer if not isinstance(c["optimizer"], str)
                             else c["optimizer"], "optimizer")
        c["loss"] = ser(c["loss"], "loss")
        c["metrics"] = ser(c["metrics"], "metric")
        c["weighted_metrics"] = ser(c["weighted_metrics"], "metric")
        return c

    def compile_from_config(self, config: dict) -> None:
        """``compile`` with a :meth:`get_compile_config` result."""
        config = dict(config)

        def de(obj, kind):
            if isinstance(obj, list):
                return [de(o, kind) for o in obj]
            if isinstance(obj, dict) and "class_name" in obj:
                return metrics_module.deserialize(obj) if kind == "metric" else \
                    losses_module.deserialize(obj)
            if isinstance(obj, dict):
                return {k: de(v, kind) for k, v in obj.items()}
            return obj
        opt = config.get("optimizer", "rmsprop")
        config["optimizer"] = optimizers_module.deserialize(opt) if isinstance(opt, dict) \
            else opt
        config["loss"] = de(config.get("loss"), "loss")
        config["metrics"] = de(config.get("metrics"), "metric")
        config["weighted_metrics"] = de(config.get("weighted_metrics"), "metric")
        self.compile(**config)

    # ----- the step pieces the engine calls ---------------------------------------------------
    def _loss_fn(self, y_pred, y=None, sample_weight=None):
        """(total loss with the added losses, per-output loss parts) for the engine."""
        if self._compile_loss is None:
            total, parts = None, {}
        else:
            total, parts = self._compile_loss(y, y_pred, sample_weight)
        extra = getattr(type(self), "losses", None)
        if extra is not None:
            for r in self.losses:
                r = r if isinstance(r, Tensor) else Tensor._wrap(np.asarray(r, np.float32))
                r = r.sum() if r.ndim else r
                total = r if total is None else total + r
        if total is None:
            raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`.")
        return total, parts

    def _engine_loss(self, pred, y=None, sample_weight=None):
        total, parts = self._loss_fn(pred, y, sample_weight)
        return (total, parts) if parts else total

    def _engine_metrics(self) -> list:
        return [self._compile_metrics] if self._compile_metrics is not None else []

    def _ensure_built(self, batch) -> None:
        """Run the model once on a batch when it has no weights yet (lazy layers), then give
        the optimiser the parameters to train."""
        if getattr(self, "built", True) is False or not any(True for _ in self.parameters()):
            x = to_tensors(batch[0])
            was = self.training
            prev = _state.grad_enabled
            _state.grad_enabled = False
            self.train(False)
            try:
                self(x)
            finally:
                self.train(was)
                _state.grad_enabled = prev
        opt = self.optimizer
        if isinstance(opt, optimizers_module.Optimizer) and not opt.built:
            # a Keras model's own order (what load_model builds with), else the Module's
            params = getattr(self, "trainable_weights", None)
            if params is None:
                params = [p for p in self.parameters() if p.requires_grad]
            if not params:
                warnings.warn("The model does not have any trainable weights.", stacklevel=3)
            opt.build(list(params))

    # ----- data --------------------------------------------------------------------------------
    def _data(self, what: str, x, y, sample_weight, batch_size, shuffle, steps,
              class_weight=None, seed_of=None) -> _Data:
        if isinstance(x, _Data):
            return x
        if _is_iterable_data(x):
            for name, v in (("y", y), ("sample_weight", sample_weight)):
                if v is not None:
                    raise ValueError(f"{what}: `{name}` must be None when `x` is a generator, "
                                     f"DataLoader or other iterable of batches (the batches "
                                     f"carry {name})")
            return _IterData(what, x, steps, class_weight)
        if x is None:
            raise ValueError(f"{what}: no input data (x is None)")
        if not _can_slice(x) or not _can_slice(y) or not _can_slice(sample_weight):
            bad = next(v for v in (x, y, sample_weight) if not _can_slice(v))
            raise ValueError(f"{what}: unrecognized data type {type(bad).__name__}; expected "
                             f"NumPy arrays, Tensors, lists/dicts of them, a generator or a "
                             f"DataLoader")
        x, y, sample_weight = _standardize(x), _standardize(y), _standardize(sample_weight)
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError("You cannot `class_weight` and `sample_weight` at the same "
                                 "time.")
            if isinstance(y, (list, tuple, dict)):
                raise ValueError("`class_weight` is only supported for Models with a single "
                                 "output.")
            sample_weight = _class_weights(y, class_weight)
        if batch_size is None:
            batch_size = 32
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"{what}: batch_size must be a positive int, got {batch_size!r}")
        return _ArrayData(what, x, y, sample_weight, batch_size, shuffle, steps, seed_of)

    def _callbacks(self, callbacks, verbose: int, **params):
        from .callbacks import CallbackList
        if isinstance(callbacks, CallbackList):
            callbacks.set_model(self)
            return callbacks
        return CallbackList(callbacks, add_history=params.pop("add_history", False),
                            add_progbar=verbose != 0, model=self, verbose=verbose, **params)

    def _engine(self, train=None, valid=None, cbs=(), verbose: int = 0, valid_freq=1):
        jit = False if self.run_eagerly else self.jit_compile
        cbs = list(cbs) + ([ProgressBar(verbose, sort=True)] if verbose else [])
        return Engine(self, self._engine_loss, self.optimizer, train, valid,
                      metrics=self._engine_metrics(), cbs=cbs, jit_compile=jit,
                      valid_freq=valid_freq)

    # ----- fit / evaluate / predict -----------------------------------------------------------
    def fit(self, x=None, y=None, batch_size: int | None = None, epochs: int = 1,
            verbose="auto", callbacks=None, validation_split: float = 0.0,
            validation_data=None, shuffle=True, class_weight: dict | None = None,
            sample_weight=None, initial_epoch: int = 0, steps_per_epoch: int | None = None,
            validation_steps: int | None = None, validation_batch_size: int | None = None,
            validation_freq=1):
        """Train for ``epochs`` epochs; returns the ``History`` (also ``model.history``)."""
        self._assert_compiled("fit")
        verbose = _verbose(verbose)
        if validation_split and validation_data is None:
            if _is_iterable_data(x):
                raise ValueError("`validation_split` is only supported for Tensors or NumPy "
                                 "arrays (not generators or DataLoaders)")
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"fit: validation_split must be in (0, 1), got "
                                 f"{validation_split}")
            x, y, sample_weight = (_standardize(v) for v in (x, y, sample_weight))
            n = _num_samples("fit", {"x": x, "y": y, "sample_weight": sample_weight})
            split_at = int(math.floor(n * (1.0 - validation_split)))
            if split_at == 0 or split_at == n:
                raise ValueError(f"Training data contains {n} samples, which is not sufficient "
                                 f"to split it into a validation and training set as specified "
                                 f"by `validation_split={validation_split}`. Either provide "
                                 f"more data, or a different value for the `validation_split` "
                                 f"argument.")
            # the last fraction, taken before any shuffling (Keras)
            validation_data = (_slice(x, slice(split_at, n)), _slice(y, slice(split_at, n)),
                               _slice(sample_weight, slice(split_at, n)))
            x, y, sample_weight = (_slice(v, slice(0, split_at)) for v in
                                   (x, y, sample_weight))
        train = self._data("fit", x, y, sample_weight, batch_size, shuffle, steps_per_epoch,
                           class_weight, seed_of=lambda: self._fit_seed)
        valid = None
        if validation_data is not None:
            if _is_iterable_data(validation_data):
                vx, vy, vsw = validation_data, None, None
            else:
                vx, vy, vsw = _unpack(validation_data)
            valid = self._data("fit (validation_data)", vx, vy, vsw,
                               validation_batch_size or batch_size, False, validation_steps)
        self._initial_epoch = self._initial_step = self._fit_seed = None
        self.stop_training = False
        self._ensure_built(train.first())
        try:
            steps = len(train)
        except TypeError:
            steps = None
        cbs = self._callbacks(callbacks, verbose, add_history=True, epochs=epochs, steps=steps)
        hooks = _KerasHooks(cbs, self, self.steps_per_execution)
        engine = self._engine(train, valid, [hooks, _StopTraining(self)], verbose,
                              validation_freq)
        try:
            engine.fit(epochs, start_epoch=initial_epoch)
        finally:
            self.eval()  # as Keras leaves it: inference mode after training
        # the loss tracker ends as Keras's does: on the last pass (validation, if any)
        last = engine.logs
        self._track({"loss": last["val_loss"]} if "val_loss" in last else last)
        return self.history

    def evaluate(self, x=None, y=None, batch_size: int | None = None, verbose="auto",
                 sample_weight=None, steps: int | None = None, callbacks=None,
                 return_dict: bool = False, **kwargs):
        """The loss and metrics on the data: a scalar (loss only), ``[loss, *metrics]``
        in ``metrics_names`` order, or with ``return_dict`` a dict."""
        self._assert_compiled("evaluate")
        if kwargs:
            raise ValueError(f"evaluate: arguments not recognized: {kwargs}")
        verbose = _verbose(verbose)
        data = self._data("evaluate", x, y, sample_weight, batch_size, False, steps)
        self._ensure_built(data.first())
        try:
            n = len(data)
        except TypeError:
            n = None
        cbs = self._callbacks(callbacks, verbose, epochs=1, steps=n)
        engine = self._engine(valid=data, cbs=[_KerasHooks(cbs, self, self.steps_per_execution)],
                              verbose=verbose)
        try:
            logs = engine.validate()
        finally:
            self.eval()
        self._track(logs)
        return self._returned(logs, return_dict)

    def _track(self, logs: dict) -> None:
        if self._loss_tracker is not None and "loss" in logs:
            self._loss_tracker.reset_state()
            self._loss_tracker._add(float(logs["loss"]), 1.0)

    def _returned(self, logs: dict, return_dict: bool):
        logs = _sorted_logs(logs)
        if return_dict:
            return logs
        values = [logs[k] for k in self._ordered(logs)]
        return values[0] if len(values) == 1 else values

    def predict(self, x, batch_size: int | None = None, verbose="auto",
                steps: int | None = None, callbacks=None):
        """The model's outputs for ``x`` as NumPy arrays (the output structure kept)."""
        verbose = _verbose(verbose)
        data = self._data("predict", x, None, None, batch_size, False, steps)
        try:
            n = len(data)
        except TypeError:
            n = None
        cbs = self._callbacks(callbacks, verbose, epochs=1, steps=n)
        engine = Engine(self, None, None, metrics=[],
                        cbs=[_KerasHooks(cbs, self, self.steps_per_execution)] +
                        ([ProgressBar(verbose)] if verbose else []))
        return engine.predict(_XOnly(data))

    def _one_batch_engine(self) -> Engine:
        if self._batch_engine is None or self._batch_engine.opt is not self.optimizer:
            self._batch_engine = self._engine()
            # one compiled step for all calls (the Keras optimiser loads state in place)
            self._batch_engine.keep_compiled = True
        return self._batch_engine

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight: dict | None = None,
                       return_dict: bool = False):
        """One training step on one batch; returns its loss and metrics (as ``evaluate``)."""
        self._assert_compiled("train_on_batch")
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError(f"Arguments `sample_weight` and `class_weight` cannot be "
                                 f"specified at the same time. Received: "
                                 f"sample_weight={sample_weight}, class_weight={class_weight}")
            sample_weight = _class_weights(y, class_weight)
        x, y, sample_weight = (_standardize(v) for v in (x, y, sample_weight))
        batch = _pack(x, y, sample_weight)
        self._ensure_built(batch)
        engine = self._one_batch_engine()
        engine.train_data = [batch]
        engine.valid_data = None
        self.stop_training = False
        engine.fit(1)
        logs = dict(engine.logs)
        self._track(logs)
        return self._returned(logs, return_dict)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict: bool = False):
        """The loss and metrics on one batch."""
        self._assert_compiled("test_on_batch")
        x, y, sample_weight = (_standardize(v) for v in (x, y, sample_weight))
        batch = _pack(x, y, sample_weight)
        self._ensure_built(batch)
        logs = self._one_batch_engine().validate([batch])
        self._track(logs)
        return self._returned(logs, return_dict)

    def predict_on_batch(self, x):
        """The model's outputs for one batch, as NumPy."""
        engine = Engine(self, None, None, metrics=[])
        return engine.predict([(_standardize(x),)])


class _XOnly:
    """A data source's batches with only their inputs (what ``predict`` feeds the model)."""

    def __init__(self, data: _Data) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self):
        for batch in self.data:
            yield (batch[0],)
