"""``MonitorCallback``: the shared base of callbacks that watch a metric for improvement
(EarlyStopping, ModelCheckpoint, ReduceLROnPlateau), as in Keras 3."""
from __future__ import annotations

import operator
import warnings

import numpy as np

from .callback import Callback

# Keras 3 reads a metric's direction from its ``_direction``; these are the directions of
# Keras's own metrics (and their usual short names), used when the model does not expose
# metric objects
_UP = ("accuracy", "acc", "auc", "precision", "recall", "f1_score", "fbeta_score", "iou",
       "r2_score", "correlation", "cosine_similarity", "sensitivity", "specificity")
_DOWN = ("loss", "error", "crossentropy", "hinge", "logcosh", "mae", "mse", "rmse", "mape",
         "msle", "kl_divergence", "poisson", "huber")


def _direction_from_name(name: str) -> str | None:
    tokens = name.split("_")
    for word in _DOWN:
        if name == word or name.endswith("_" + word) or word in tokens or (
                len(word) > 4 and word in name):
            return "down"
    for word in _UP:
        if name == word or word in tokens or (len(word) > 4 and word in name):
            return "up"
    return None


def _metric_objects(model) -> list:
    metrics = getattr(model, "metrics", None)
    if not isinstance(metrics, (list, tuple)):
        return []
    out = []
    for m in metrics:
        inner = getattr(m, "metrics", None)  # a container of compiled metrics
        out.extend(inner if isinstance(inner, (list, tuple)) else [m])
    return out


class MonitorCallback(Callback):
    """Watches ``monitor`` in the epoch logs and decides what counts as an improvement.

    ``mode="auto"`` minimises losses and errors and maximises accuracy-like metrics (AUC,
    precision, recall, F1, IoU, ...); an unknown name raises, asking for ``mode``.
    """

    def __init__(self, monitor: str = "val_loss", mode: str = "auto",
                 baseline: float | None = None, min_delta: float = 0) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto "
                          f"mode.", stacklevel=2)
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self) -> None:
        if self.mode == "min":
            self.monitor_op = operator.lt
        elif self.mode == "max":
            self.monitor_op = operator.gt
        else:
            name = self.monitor.removeprefix("val_")
            direction = "down" if name == "loss" else None
            for m in _metric_objects(self.model):
                if getattr(m, "name", None) == name:
                    d = getattr(m, "_direction", getattr(m, "direction", None))
                    if d in ("up", "down"):
                        direction = d
            if direction is None:
                direction = _direction_from_name(name)
            if direction is None:
                raise ValueError(
                    f"{type(self).__name__} callback received monitor={self.monitor}, but "
                    f"ember can't determine whether that metric should be maximized or "
                    f"minimized. Pass `mode='max'` in order to monitor based on the highest "
                    f"metric value, or pass `mode='min'` in order to use the lowest value.")
            self.monitor_op = operator.gt if direction == "up" else operator.lt
        if self.monitor_op is operator.lt:
            self.min_delta *= -1

    def _is_improvement(self, monitor_value: float, reference_value: float | None) -> bool:
        if reference_value is None:
            return True
        # Keras compares as float32 tensors (its floatx), so 0.7 + 0.1 is no improvement on
        # 0.8 there; comparing the same way keeps ember's decisions identical to Keras's
        return bool(self.monitor_op(np.float32(monitor_value - self.min_delta),
                                    np.float32(reference_value)))
