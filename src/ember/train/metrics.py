"""Stateful metrics with Keras's interface and formulas, computed in NumPy.

Every metric accumulates over batches: ``update_state(y_true, y_pred, sample_weight=None)``
adds a batch, ``result()`` is the value so far (a Python float, or a NumPy array for per-class
results), ``reset_state()`` starts again; ``name`` is the key it logs under. Inputs may be
ember Tensors, NumPy arrays or nested lists. The formulas are Keras 3's (keras/src/metrics/),
including its shape rules: a ``(N, 1)`` target next to ``(N,)`` predictions is squeezed, sparse
targets next to class scores are compared with their argmax, and ``sample_weight`` weights
whole samples.

    m = Accuracy()
    m.update_state([1, 0, 1], [[.1, .8, .1], [.7, .2, .1], [.2, .2, .6]])
    m.result()  # 0.666...
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

__all__ = ["Metric", "Mean", "Sum", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
           "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "Precision", "Recall", "F1Score", "FBetaScore",
           "AUC", "MeanAbsoluteError", "MeanSquaredError", "RootMeanSquaredError",
           "accuracy", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
           "mean_absolute_error", "mean_squared_error", "resolve_accuracy", "to_numpy"]

EPSILON = 1e-7  # Keras's backend.epsilon()
NEG_INF = -1e10  # Keras's metrics_utils.NEG_INF: what top_k filtering gives the rest


def to_numpy(x) -> np.ndarray:
    """An ember Tensor, NumPy array, number or nested list as a NumPy array (no copy)."""
    data = getattr(x, "_data", None)
    if data is not None and hasattr(x, "_dev"):
        return x._dev.backend.to_numpy(data)
    return np.asarray(x)


def _snake(name: str) -> str:
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and (not name[i - 1].isupper() or
                                  (i + 1 < len(name) and name[i + 1].islower())):
            out.append("_")
        out.append(c.lower())
    return "".join(out)


def _same_rank(x1: np.ndarray, x2: np.ndarray, expand_rank_1: bool = True) -> tuple:
    """Keras's ``squeeze_or_expand_to_same_rank``: fix a rank difference of one trailing 1."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[:, None]
        else:
            x1 = x1[..., 0]
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[:, None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _float(x) -> np.ndarray:
    a = to_numpy(x)
    return a if a.dtype.kind == "f" else a.astype(np.float32)


def _value(x):
    """A result as Keras users read it: a Python float, or an array for vector results."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


class Metric:
    """Base class: subclasses implement ``update_state``, ``result`` and ``reset_state``."""

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        self.name = name or _snake(type(self).__name__)
        self.dtype = dtype or "float32"

    def update_state(self, *args, **kwargs) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement update_state()")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} must implement result()")

    def reset_state(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement reset_state()")

    def __call__(self, *args, **kwargs):
        """Update with one batch and return the result (Keras's ``Metric.__call__``)."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict) -> "Metric":
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}>"


# ----- reductions ------------------------------------------------------------------------------

def _samplewise(values: np.ndarray, sample_weight) -> tuple:
    """Keras's ``reduce_to_samplewise_values``: per-sample means, weighted when asked."""
    if sample_weight is not None:
        sw = np.asarray(to_numpy(sample_weight), dtype=np.float64)
        values, sw = _same_rank(values, sw)
        if values.ndim > sw.ndim:
            values = values.mean(axis=tuple(range(sw.ndim, values.ndim)))
        try:
            sw = np.broadcast_to(sw, values.shape)
        except ValueError:
            raise ValueError(f"metric: sample_weight of shape {sw.shape} does not broadcast to "
                             f"the per-sample values of shape {values.shape}") from None
        values = values * sw
        if sw.ndim > 1:
            sw = sw.mean(axis=tuple(range(1, sw.ndim)))
    if values.ndim > 1:
        values = values.mean(axis=tuple(range(1, values.ndim)))
    return values, sample_weight if sample_weight is None else sw


class Sum(Metric):
    """The (weighted) sum of the values seen."""

    def __init__(self, name: str = "sum", dtype: Any = None) -> None:
        super().__init__(name, dtype)
        self.reset_state()

    def update_state(self, values, sample_weight=None) -> None:
        values, _ = _samplewise(np.asarray(_float(values), dtype=np.float64), sample_weight)
        self.total += float(values.sum())

    def result(self) -> float:
        return float(self.total)

    def reset_state(self) -> None:
        self.total = 0.0


class Mean(Metric):
    """The (weighted) mean of the values seen: ``update_state(values, sample_weight=None)``.

    Values with more than one dimension count once per sample (their mean over the other
    dimensions), as in Keras.
    """

    def __init__(self, name: str = "mean", dtype: Any = None) -> None:
        super().__init__(name, dtype)
        self.reset_state()

    def update_state(self, values, sample_weight=None) -> None:
        values = np.asarray(_float(values), dtype=np.float64)
        values, sw = _samplewise(values, sample_weight)
        self.total += float(values.sum())
        if sw is not None:
            self.count += float(sw.sum())
        else:
            self.count += values.shape[0] if values.ndim >= 1 else 1

    def _add(self, total: float, count: float) -> None:
        """Accumulate a pre-reduced batch (the engine's loss tracker: loss * batch size)."""
        self.total += total
        self.count += count

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def reset_state(self) -> None:
        self.total = 0.0
        self.count = 0.0


class MeanMetricWrapper(Mean):
    """The mean of ``fn(y_true, y_pred, **kwargs)`` over all samples seen."""

    def __init__(self, fn: Callable, name: str | None = None, dtype: Any = None,
                 **kwargs) -> None:
        super().__init__(name or getattr(fn, "__name__", "mean_metric_wrapper"), dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        super().update_state(self._fn(y_true, y_pred, **self._fn_kwargs), sample_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), **self._fn_kwargs}


# ----- accuracy ----------------------------------------------------------------------------------

def accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where ``y_true == y_pred`` exactly (Keras's ``Accuracy``), per element."""
    y_pred = to_numpy(y_pred)
    y_true = to_numpy(y_true)
    y_true, y_pred = _same_rank(y_true, y_pred)
    return (y_true == y_pred).astype(np.float32)


def binary_accuracy(y_true, y_pred, threshold: float = 0.5) -> np.ndarray:
    """1.0 where ``(y_pred > threshold) == y_true``, per element."""
    y_true, y_pred = _same_rank(to_numpy(y_true), to_numpy(y_pred))
    return ((y_pred > threshold).astype(y_true.dtype) == y_true).astype(np.float32)


def _check_classes(fn: str, y_pred: np.ndarray) -> None:
    if y_pred.ndim < 1:
        raise ValueError(f"{fn}: y_pred must hold class scores on its last axis, got a scalar")


def categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where ``argmax(y_true) == argmax(y_pred)`` (one-hot targets), per sample."""
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred)
    _check_classes("categorical_accuracy", y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"categorical_accuracy: y_true {y_true.shape} and y_pred "
                         f"{y_pred.shape} must have the same shape (one-hot targets); use "
                         f"sparse_categorical_accuracy for integer class targets")
    return (np.argmax(y_true, -1) == np.argmax(y_pred, -1)).astype(np.float32)


def sparse_categorical_accuracy(y_true, y_pred) -> np.ndarray:
    """1.0 where the integer target equals ``argmax(y_pred)``, per sample."""
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred)
    _check_classes("sparse_categorical_accuracy", y_pred)
    shape = y_true.shape
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError(f"sparse_categorical_accuracy: y_true {shape} must be y_pred "
                         f"{y_pred.shape} without its last (class) axis")
    m = (y_true == np.argmax(y_pred, -1).astype(y_true.dtype)).astype(np.float32)
    return m[..., 0] if m.ndim > 1 and m.shape[-1] == 1 else m


def _in_top_k(targets: np.ndarray, y_pred: np.ndarray, k: int) -> np.ndarray:
    """Whether each target's score is among the k largest (ties count, as ``in_top_k``)."""
    y_pred = y_pred.reshape(-1, y_pred.shape[-1])
    targets = targets.reshape(-1).astype(np.int64)
    k = min(k, y_pred.shape[-1])
    kth = -np.partition(-y_pred, k - 1, axis=-1)[:, k - 1]
    return np.take_along_axis(y_pred, targets[:, None], -1)[:, 0] >= kth


def top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> np.ndarray:
    """1.0 where the one-hot target's class is among the k highest scores, per sample."""
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred)
    _check_classes("top_k_categorical_accuracy", y_pred)
    shape = y_true.shape[:-1]
    return _in_top_k(np.argmax(y_true, -1), y_pred, k).astype(np.float32).reshape(shape)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k: int = 5) -> np.ndarray:
    """1.0 where the integer target is among the k highest scores, per sample."""
    y_true, y_pred = to_numpy(y_true), to_numpy(y_pred)
    _check_classes("sparse_top_k_categorical_accuracy", y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return _in_top_k(y_true, y_pred, k).astype(np.float32).reshape(y_true.shape)


def resolve_accuracy(y_true, y_pred) -> str:
    """Which accuracy a generic "accuracy" means for these shapes, by Keras's rule:
    "binary" for one output column, "sparse" for integer targets, "categorical" otherwise.

    A 1-D prediction (one score per sample, common in PyTorch-style models) counts as binary.
    """
    yt, yp = to_numpy(y_true), to_numpy(y_pred)
    if yp.ndim <= 1 or yp.shape[-1] == 1:
        return "binary"
    if yt.ndim < yp.ndim or (yt.shape[-1] == 1 and yp.shape[-1] > 1):
        return "sparse"
    return "categorical"


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches the 0/1 target."""

    def __init__(self, name: str = "binary_accuracy", dtype: Any = None,
                 threshold: float = 0.5) -> None:
        super().__init__(binary_accuracy, name, dtype, threshold=threshold)


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the scores matches the argmax of the one-hot target."""

    def __init__(self, name: str = "categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(categorical_accuracy, name, dtype)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of the scores equals the integer target."""

    def __init__(self, name: str = "sparse_categorical_accuracy", dtype: Any = None) -> None:
        super().__init__(sparse_categorical_accuracy, name, dtype)


class TopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the one-hot target is among the ``k`` highest scores."""

    def __init__(self, k: int = 5, name: str = "top_k_categorical_accuracy",
                 dtype: Any = None) -> None:
        super().__init__(top_k_categorical_accuracy, name, dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(MeanMetricWrapper):
    """How often the integer target is among the ``k`` highest scores."""

    def __init__(self, k: int = 5, name: str = "sparse_top_k_categorical_accuracy",
                 dtype: Any = None) -> None:
        super().__init__(sparse_top_k_categorical_accuracy, name, dtype, k=k)
        self.k = k


_ACCURACY_FNS = {"binary": binary_accuracy, "sparse": sparse_categorical_accuracy,
                 "categorical": categorical_accuracy}


class Accuracy(MeanMetricWrapper):
    """Classification accuracy that picks its kind from the first batch's shapes
    (:func:`resolve_accuracy`): binary (``threshold``), sparse categorical or categorical.

    This is the engine's general accuracy; ``ember.keras.metrics.Accuracy`` is Keras's exact
    match ``y_true == y_pred``.
    """

    def __init__(self, name: str = "accuracy", dtype: Any = None, threshold: float = 0.5):
        super().__init__(self._auto, name, dtype)
        self.threshold = threshold
        self.kind: str | None = None

    def _auto(self, y_true, y_pred):
        if self.kind is None:
            self.kind = resolve_accuracy(y_true, y_pred)
        if self.kind == "binary":
            yt, yp = to_numpy(y_true), to_numpy(y_pred)
            if yp.ndim == 2 and yt.ndim == 1:
                yp = yp[:, 0]
            return binary_accuracy(yt, yp, self.threshold)
        return _ACCURACY_FNS[self.kind](y_true, y_pred)

    def get_config(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}


# ----- regression --------------------------------------------------------------------------------

def mean_squared_error(y_true, y_pred) -> np.ndarray:
    """``mean((y_true - y_pred)**2, axis=-1)``."""
    yp = _float(y_pred)
    yt, yp = _same_rank(to_numpy(y_true).astype(yp.dtype, copy=False), yp)
    return np.mean(np.square(yt - yp), axis=-1)


def mean_absolute_error(y_true, y_pred) -> np.ndarray:
    """``mean(|y_true - y_pred|, axis=-1)``."""
    yp = _float(y_pred)
    yt, yp = _same_rank(to_numpy(y_true).astype(yp.dtype, copy=False), yp)
    return np.mean(np.abs(yt - yp), axis=-1)


class MeanSquaredError(MeanMetricWrapper):
    """The mean squared error over all samples seen."""

    def __init__(self, name: str = "mean_squared_error", dtype: Any = None) -> None:
        super().__init__(mean_squared_error, name, dtype)


class MeanAbsoluteError(MeanMetricWrapper):
    """The mean absolute error over all samples seen."""

    def __init__(self, name: str = "mean_absolute_error", dtype: Any = None) -> None:
        super().__init__(mean_absolute_error, name, dtype)


class RootMeanSquaredError(Mean):
    """``sqrt`` of the mean squared error over all samples seen (not the mean of per-batch
    roots)."""

    def __init__(self, name: str = "root_mean_squared_error", dtype: Any = None) -> None:
        super().__init__(name, dtype)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        yp = _float(y_pred)
        yt, yp = _same_rank(to_numpy(y_true).astype(yp.dtype, copy=False), yp)
        super().update_state(np.square(yp - yt), sample_weight)

    def result(self) -> float:
        return math.sqrt(super().result())


# ----- confusion-matrix metrics ------------------------------------------------------------------

def _evenly_spaced(thresholds) -> bool:
    """Keras's ``is_evenly_distributed_thresholds``."""
    n = len(thresholds)
    if n < 3:
        return False
    even = np.arange(n, dtype=np.float32) / (n - 1)
    return bool(np.allclose(thresholds, even, atol=EPSILON))


def _filter_top_k(x: np.ndarray, k: int) -> np.ndarray:
    idx = np.argsort(-x, axis=-1, kind="stable")[..., :k]
    mask = np.zeros(x.shape, dtype=bool)
    np.put_along_axis(mask, idx, True, axis=-1)
    return np.where(mask, x, NEG_INF)


def _confusion(y_true, y_pred, thresholds: np.ndarray, *, evenly: bool = False,
               top_k: int | None = None, class_id: int | None = None, sample_weight=None,
               multi_label: bool = False, label_weights=None) -> dict:
    """Keras's ``update_confusion_matrix_variables``: the (weighted) counts of true/false
    positives/negatives at each threshold, a prediction being positive when ``> threshold``.
    Arrays of shape ``(len(thresholds),)``, or ``(len(thresholds), labels)`` with
    ``multi_label``."""
    y_pred = np.asarray(_float(y_pred), dtype=np.float32)
    y_true = to_numpy(y_true)
    y_pred, y_true = _same_rank(y_pred, y_true)
    sw = None
    if sample_weight is not None:
        sw = np.asarray(to_numpy(sample_weight), dtype=np.float64)[..., None]
        _, sw = _same_rank(y_true, sw, expand_rank_1=False)
    if top_k is not None:
        y_pred = _filter_top_k(y_pred, top_k)
    if class_id is not None:
        if y_pred.ndim == 1:
            raise ValueError(f"confusion metric: with class_id, y_pred must be 2-D (samples, "
                             f"classes), got shape {y_pred.shape}")
        y_true = y_true[..., class_id, None]
        y_pred = y_pred[..., class_id, None]
    if y_true.shape != y_pred.shape:
        try:
            y_true = np.broadcast_to(y_true, y_pred.shape)
        except ValueError:
            raise ValueError(f"confusion metric: y_true {y_true.shape} does not match y_pred "
                             f"{y_pred.shape}") from None
    weights = None
    if sw is not None:
        weights = np.broadcast_to(sw, y_pred.shape).astype(np.float64)
    if label_weights is not None and not multi_label:
        lw = np.broadcast_to(np.asarray(label_weights, np.float64), y_pred.shape)
        weights = lw if weights is None else weights * lw
    labels = y_true.astype(bool)
    n = len(thresholds)
    if evenly:
        # Keras's bucketed version: a prediction p lands in bucket ceil(p * (n-1)) - 1, and
        # counts as positive for every threshold below it
        p = np.clip(y_pred, 0.0, 1.0)
        w = np.ones(p.shape) if weights is None else weights
        pos = labels * w
        neg = (~labels) * w
        buckets = np.ceil(p * np.float32(n - 1)) - 1
        if thresholds[0] < 0.0 or thresholds[-1] > 1.0:
            buckets = np.maximum(buckets, 0)
        buckets = buckets.astype(np.int64)
        if multi_label:
            m = p.reshape(-1, p.shape[-1]) if p.ndim > 1 else p.reshape(-1, 1)
            cols = m.shape[1]
            b = buckets.reshape(m.shape)
            flat = (b + n * np.arange(cols)).ravel()
            tpb = np.bincount(flat, pos.reshape(m.shape).ravel(), n * cols).reshape(cols, n).T
            fpb = np.bincount(flat, neg.reshape(m.shape).ravel(), n * cols).reshape(cols, n).T
            tot_p, tot_n = pos.reshape(m.shape).sum(0), neg.reshape(m.shape).sum(0)
        else:
            tpb = np.bincount(buckets.ravel(), pos.ravel(), n)
            fpb = np.bincount(buckets.ravel(), neg.ravel(), n)
            tot_p, tot_n = pos.sum(), neg.sum()
        tp = np.cumsum(tpb[::-1], axis=0)[::-1]
        fp = np.cumsum(fpb[::-1], axis=0)[::-1]
        return {"tp": tp, "fp": fp, "tn": tot_n - fp, "fn": tot_p - tp}
    t = np.asarray(thresholds, dtype=np.float32)
    if multi_label:
        m = y_pred.reshape(-1, y_pred.shape[-1]) if y_pred.ndim > 1 else y_pred[:, None]
        lab = labels.reshape(m.shape)
        pred_pos = m[None] > t[:, None, None]
        lab = lab[None]
        w = None if weights is None else weights.reshape(m.shape)[None]
        axis = 1
    else:
        pred_pos = y_pred.reshape(1, -1) > t[:, None]
        lab = labels.reshape(1, -1)
        w = None if weights is None else weights.reshape(1, -1)
        axis = 1

    def count(mask):
        return (mask * w).sum(axis) if w is not None else mask.sum(axis).astype(np.float64)
    return {"tp": count(lab & pred_pos), "fp": count(~lab & pred_pos),
            "tn": count(~lab & ~pred_pos), "fn": count(lab & ~pred_pos)}


def _divide_no_nan(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))


def _thresholds(thresholds, default: float) -> list:
    if thresholds is None:
        return [default]
    ts = list(thresholds) if isinstance(thresholds, (list, tuple, np.ndarray)) \
        else [thresholds]
    for t in ts:
        if not 0.0 <= float(t) <= 1.0:
            raise ValueError(f"Threshold values must be in [0, 1]. Received: {ts}")
    return [float(t) for t in ts]


class _PrecisionRecall(Metric):
    _counts = ("tp", "fp")

    def __init__(self, thresholds=None, top_k: int | None = None, class_id: int | None = None,
                 name: str | None = None, dtype: Any = None) -> None:
        super().__init__(name, dtype)
        self.init_thresholds = thresholds
        self.top_k = top_k
        self.class_id = class_id
        self.thresholds = _thresholds(thresholds, 0.5 if top_k is None else NEG_INF)
        self._evenly = _evenly_spaced(self.thresholds)
        self.reset_state()

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        c = _confusion(y_true, y_pred, np.asarray(self.thresholds), evenly=self._evenly,
                       top_k=self.top_k, class_id=self.class_id, sample_weight=sample_weight)
        for k in self._counts:
            setattr(self, self._attr[k], getattr(self, self._attr[k]) + c[k])

    _attr = {"tp": "true_positives", "fp": "false_positives", "fn": "false_negatives"}

    def reset_state(self) -> None:
        for k in self._counts:
            setattr(self, self._attr[k], np.zeros(len(self.thresholds)))

    def get_config(self) -> dict:
        return {**super().get_config(), "thresholds": self.init_thresholds,
                "top_k": self.top_k, "class_id": self.class_id}


class Precision(_PrecisionRecall):
    """``tp / (tp + fp)`` with predictions thresholded at ``thresholds`` (default 0.5), or
    the ``top_k`` scores taken as positive; ``class_id`` picks one class column."""

    _counts = ("tp", "fp")

    def result(self):
        r = _divide_no_nan(self.true_positives, self.true_positives + self.false_positives)
        return float(r[0]) if len(self.thresholds) == 1 else r


class Recall(_PrecisionRecall):
    """``tp / (tp + fn)`` with predictions thresholded at ``thresholds`` (default 0.5)."""

    _counts = ("tp", "fn")

    def result(self):
        r = _divide_no_nan(self.true_positives, self.true_positives + self.false_negatives)
        return float(r[0]) if len(self.thresholds) == 1 else r


class FBetaScore(Metric):
    """F-beta score from ``(samples, classes)`` scores; per class (``average=None``), or
    "micro", "macro", "weighted" averaged. With ``threshold=None`` the top score of each
    sample is the positive prediction."""

    def __init__(self, average: str | None = None, beta: float = 1.0,
                 threshold: float | None = None, name: str = "fbeta_score",
                 dtype: Any = None) -> None:
        super().__init__(name, dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"Invalid `average` argument value. Expected one of: {{None, "
                             f"'micro', 'macro', 'weighted'}}. Received: average={average}")
        if not isinstance(beta, float) or beta <= 0.0:
            raise ValueError(f"Invalid `beta` argument value. It should be a Python float > 0. "
                             f"Received: beta={beta!r}")
        if threshold is not None and (not isinstance(threshold, float) or
                                      not 0.0 < threshold <= 1.0):
            raise ValueError(f"Invalid `threshold` argument value. It should be a Python "
                             f"float with 0 < threshold <= 1. Received: threshold={threshold!r}")
        self.average, self.beta, self.threshold = average, beta, threshold
        self.axis = None if average == "micro" else 0
        self.true_positives = None

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        yt = np.asarray(_float(y_true), dtype=np.float64)
        yp = np.asarray(_float(y_pred), dtype=np.float64)
        if yp.ndim != 2 or yt.ndim != 2:
            raise ValueError(f"{type(self).__name__} expects 2D inputs with shape (batch_size, "
                             f"output_dim). Received input shapes: y_pred.shape={yp.shape} "
                             f"and y_true.shape={yt.shape}.")
        if self.threshold is None:
            yp = ((yp >= yp.max(-1, keepdims=True)) & (np.abs(yp) > 1e-9)).astype(np.float64)
        else:
            yp = (yp > self.threshold).astype(np.float64)
        w = None if sample_weight is None else \
            np.asarray(to_numpy(sample_weight), np.float64)[:, None]

        def wsum(v):
            return (v if w is None else v * w).sum(axis=self.axis)
        if self.true_positives is None:
            zeros = np.zeros(yp.shape[-1]) if self.axis == 0 else np.zeros(())
            self.true_positives, self.false_positives = zeros.copy(), zeros.copy()
            self.false_negatives, self.intermediate_weights = zeros.copy(), zeros.copy()
        self.true_positives = self.true_positives + wsum(yp * yt)
        self.false_positives = self.false_positives + wsum(yp * (1 - yt))
        self.false_negatives = self.false_negatives + wsum((1 - yp) * yt)
        self.intermediate_weights = self.intermediate_weights + wsum(yt)

    def result(self):
        if self.true_positives is None:
            return 0.0
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        precision = tp / (tp + fp + EPSILON)
        recall = tp / (tp + fn + EPSILON)
        b2 = self.beta ** 2
        f = precision * recall / (b2 * precision + recall + EPSILON) * (1 + b2)
        if self.average == "weighted":
            w = self.intermediate_weights / (self.intermediate_weights.sum() + EPSILON)
            return float((f * w).sum())
        if self.average is not None:
            return float(np.mean(f))
        return _value(f)

    def reset_state(self) -> None:
        if self.true_positives is not None:
            for k in ("true_positives", "false_positives", "false_negatives",
                      "intermediate_weights"):
                setattr(self, k, np.zeros_like(getattr(self, k)))

    def get_config(self) -> dict:
        return {**super().get_config(), "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """F1 score (``FBetaScore`` with ``beta=1``)."""

    def __init__(self, average: str | None = None, threshold: float | None = None,
                 name: str = "f1_score", dtype: Any = None) -> None:
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self) -> dict:
        c = super().get_config()
        c.pop("beta")
        return c


class AUC(Metric):
    """Area under the ROC (or PR) curve, approximated as Keras does on ``num_thresholds``
    evenly spaced thresholds: confusion counts per threshold, then a Riemann sum
    ("interpolation": trapezoids for ROC, Davis & Goadrich's interpolation for PR;
    "minoring"/"majoring": lower/upper rectangles).

    ``from_logits`` applies a sigmoid first; ``multi_label`` computes one curve per column
    and averages them (weighted by ``label_weights``).
    """

    def __init__(self, num_thresholds: int = 200, curve: str = "ROC",
                 summation_method: str = "interpolation", name: str | None = None,
                 dtype: Any = None, thresholds=None, multi_label: bool = False,
                 num_labels: int | None = None, label_weights=None,
                 from_logits: bool = False) -> None:
        super().__init__(name or "auc", dtype)
        curve, summation_method = str(curve).upper(), str(summation_method).lower()
        if curve not in ("ROC", "PR"):
            raise ValueError(f'Invalid AUC curve value: "{curve}". Expected values are '
                             f'["PR", "ROC"]')
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f'Invalid AUC summation method value: "{summation_method}". '
                             f'Expected values are ["interpolation", "majoring", "minoring"]')
        self._init_from_thresholds = thresholds is not None
        if thresholds is not None:
            self.num_thresholds = len(thresholds) + 2
            inner = sorted(float(t) for t in thresholds)
            self._evenly = _evenly_spaced(np.array([0.0] + inner + [1.0]))
        else:
            if num_thresholds <= 1:
                raise ValueError(f"Argument `num_thresholds` must be an integer > 1. "
                                 f"Received: num_thresholds={num_thresholds}")
            self.num_thresholds = num_thresholds
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._evenly = True
        self._thresholds = np.array([0.0 - EPSILON] + inner + [1.0 + EPSILON])
        self.curve, self.summation_method = curve, summation_method
        self.multi_label, self.num_labels = multi_label, num_labels
        self.label_weights = None if label_weights is None else \
            np.asarray(label_weights, np.float64)
        self._from_logits = from_logits
        self.true_positives = None

    @property
    def thresholds(self) -> list:
        return list(self._thresholds)

    def update_state(self, y_true, y_pred, sample_weight=None) -> None:
        yp = np.asarray(_float(y_pred), np.float32)
        if self._from_logits:
            yp = (1.0 / (1.0 + np.exp(-yp.astype(np.float64)))).astype(np.float32)
        if self.multi_label and yp.ndim != 2:
            raise ValueError(f"AUC: `y_pred` must have rank 2 when `multi_label=True`. Found "
                             f"rank {yp.ndim}. Full shape received for `y_pred`: {yp.shape}")
        c = _confusion(y_true, yp, self._thresholds, evenly=self._evenly,
                       sample_weight=sample_weight, multi_label=self.multi_label,
                       label_weights=None if self.multi_label else self.label_weights)
        if self.true_positives is None:
            self.true_positives, self.false_positives = c["tp"], c["fp"]
            self.true_negatives, self.false_negatives = c["tn"], c["fn"]
        else:
            self.true_positives = self.true_positives + c["tp"]
            self.false_positives = self.false_positives + c["fp"]
            self.true_negatives = self.true_negatives + c["tn"]
            self.false_negatives = self.false_negatives + c["fn"]

    def _by_label(self, terms: np.ndarray) -> float:
        if not self.multi_label:
            return float(terms.sum())
        by_label = terms.sum(axis=0)
        if self.label_weights is None:
            return float(by_label.mean())
        return float(_divide_no_nan((by_label * self.label_weights).sum(),
                                    self.label_weights.sum()))

    def _interpolate_pr(self) -> float:
        tp, fp, fn = self.true_positives, self.false_positives, self.false_negatives
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        ratio = np.where((p[:-1] > 0) & (p[1:] > 0),
                         _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            inc = _divide_no_nan(slope * (dtp + intercept * np.log(ratio)),
                                 np.maximum(tp[1:] + fn[1:], 0))
        return self._by_label(inc)

    def result(self) -> float:
        if self.true_positives is None:
            return 0.0
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr()
        tp, fp = self.true_positives, self.false_positives
        tn, fn = self.true_negatives, self.false_negatives
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, _divide_no_nan(tp, tp + fp)
        if self.summation_method == "interpolation":
            heights = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            heights = np.minimum(y[:-1], y[1:])
        else:
            heights = np.maximum(y[:-1], y[1:])
        return self._by_label((x[:-1] - x[1:]) * heights)

    def reset_state(self) -> None:
        self.true_positives = None

    def get_config(self) -> dict:
        c = {**super().get_config(), "num_thresholds": self.num_thresholds,
             "curve": self.curve, "summation_method": self.summation_method,
             "multi_label": self.multi_label, "num_labels": self.num_labels,
             "label_weights": None if self.label_weights is None else
             self.label_weights.tolist(), "from_logits": self._from_logits}
        if self._init_from_thresholds:
            c["thresholds"] = [float(t) for t in self._thresholds[1:-1]]
        return c
