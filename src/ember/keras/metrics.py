"""``keras.metrics``: Keras 3's metric classes and names, computed by ``ember.train.metrics``.

    model.compile(..., metrics=["accuracy", "mae", keras.metrics.AUC()])
    keras.metrics.get("AUC")                      # an instance

As in Keras, ``Accuracy`` is the exact-match metric (``y_true == y_pred``); the string
"accuracy" (or "acc") in ``compile`` picks binary, categorical or sparse categorical accuracy
from the shapes of the targets and outputs.
"""
from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ..train import metrics as _m
from ..train.metrics import (AUC, BinaryAccuracy, CategoricalAccuracy, F1Score, FBetaScore,
                             Mean, MeanAbsoluteError, MeanMetricWrapper, MeanSquaredError,
                             Metric, Precision, Recall, RootMeanSquaredError,
                             SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy, Sum,
                             TopKCategoricalAccuracy, binary_accuracy, categorical_accuracy,
                             mean_absolute_error, mean_squared_error,
                             sparse_categorical_accuracy, sparse_top_k_categorical_accuracy,
                             top_k_categorical_accuracy)
from . import losses as _losses

__all__ = ["Metric", "Mean", "Sum", "MeanMetricWrapper", "Accuracy", "BinaryAccuracy",
           "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
           "SparseTopKCategoricalAccuracy", "Precision", "Recall", "F1Score", "FBetaScore",
           "AUC", "MeanAbsoluteError", "MeanSquaredError", "RootMeanSquaredError",
           "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
           "mean_absolute_error", "mean_squared_error", "get", "serialize", "deserialize"]


class Accuracy(MeanMetricWrapper):
    """How often predictions equal targets exactly (Keras's ``Accuracy``: compare labels, not
    probabilities; use "accuracy" in ``compile`` for automatic choice)."""

    def __init__(self, name: str = "accuracy", dtype: Any = None) -> None:
        super().__init__(_m.accuracy, name, dtype)


def _loss_metric(fn):
    def metric(y_true, y_pred, **kw):
        return _m.to_numpy(fn(y_true, y_pred, **kw))
    metric.__name__ = fn.__name__
    return metric


class BinaryCrossentropy(MeanMetricWrapper):
    """Mean binary cross-entropy (as the loss, averaged over all samples seen)."""

    def __init__(self, name: str = "binary_crossentropy", dtype: Any = None,
                 from_logits: bool = False, label_smoothing: float = 0.0) -> None:
        super().__init__(_loss_metric(_losses.binary_crossentropy), name, dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing)


class CategoricalCrossentropy(MeanMetricWrapper):
    """Mean categorical cross-entropy over all samples seen."""

    def __init__(self, name: str = "categorical_crossentropy", dtype: Any = None,
                 from_logits: bool = False, label_smoothing: float = 0.0,
                 axis: int = -1) -> None:
        super().__init__(_loss_metric(_losses.categorical_crossentropy), name, dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """Mean sparse categorical cross-entropy over all samples seen."""

    def __init__(self, name: str = "sparse_categorical_crossentropy", dtype: Any = None,
                 from_logits: bool = False, axis: int = -1) -> None:
        super().__init__(_loss_metric(_losses.sparse_categorical_crossentropy), name, dtype,
                         from_logits=from_logits, axis=axis)


_CLASSES = [Metric, Mean, Sum, MeanMetricWrapper, Accuracy, BinaryAccuracy,
            CategoricalAccuracy, SparseCategoricalAccuracy, TopKCategoricalAccuracy,
            SparseTopKCategoricalAccuracy, Precision, Recall, F1Score, FBetaScore, AUC,
            MeanAbsoluteError, MeanSquaredError, RootMeanSquaredError, BinaryCrossentropy,
            CategoricalCrossentropy, SparseCategoricalCrossentropy]
_BY_NAME: dict[str, Any] = {c.__name__: c for c in _CLASSES}
_BY_NAME.update({_m._snake(c.__name__): c for c in _CLASSES})
_BY_NAME.update({"bce": BinaryCrossentropy, "BCE": BinaryCrossentropy,
                 "mse": MeanSquaredError, "MSE": MeanSquaredError,
                 "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError})


def serialize(metric) -> dict:
    """``{"class_name", "config"}`` of a metric instance."""
    if isinstance(metric, Metric) and type(metric).__name__ in _BY_NAME:
        return {"class_name": type(metric).__name__, "config": metric.get_config()}
    raise ValueError(f"keras.metrics.serialize: cannot serialize {metric!r}")


def deserialize(config: dict, custom_objects: dict | None = None) -> Metric:
    """The metric a :func:`serialize` result describes."""
    table = {**_BY_NAME, **(custom_objects or {})}
    cls = table.get(config.get("class_name"))
    if cls is None:
        raise ValueError(f"Could not interpret metric identifier: {config!r}")
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier):
    """A metric from a name ("mae", "AUC", "top_k_categorical_accuracy"...), a config dict, a
    Metric class or instance, or a function ``fn(y_true, y_pred)``."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = _BY_NAME.get(identifier)
    else:
        obj = identifier
    if callable(obj):
        return obj() if inspect.isclass(obj) else obj
    known = ", ".join(sorted(k for k in _BY_NAME if k[0].islower()))
    raise ValueError(f"Could not interpret metric identifier: {identifier!r} (known names: "
                     f"{known})")


def _resolve(identifier, y_true, y_pred) -> Metric:
    """What ``compile(metrics=[identifier])`` makes for an output (Keras's ``get_metric``):
    "accuracy"/"acc" pick their kind from the shapes; a string names the metric itself."""
    if str(identifier).lower() in ("accuracy", "acc"):
        yt, yp = np.asarray(_m.to_numpy(y_true)), np.asarray(_m.to_numpy(y_pred))
        is_binary = yp.ndim >= 1 and yp.shape[-1] == 1
        is_sparse = yt.ndim < yp.ndim or (yt.ndim >= 1 and yt.shape[-1] == 1 and
                                          yp.shape[-1] > 1)
        cls = BinaryAccuracy if is_binary else SparseCategoricalAccuracy if is_sparse \
            else CategoricalAccuracy
        metric = cls(name=str(identifier))
    else:
        metric = get(identifier)
    if not isinstance(metric, Metric):
        if not callable(metric):
            raise ValueError(f"compile: metric {identifier!r} is neither a Metric nor a "
                             f"function")
        metric = MeanMetricWrapper(metric, name=getattr(metric, "__name__", None))
    if isinstance(identifier, str):
        metric.name = identifier
    return metric
