"""fastai's metrics: functions of ``(pred, targ)`` and the classes that accumulate them.

A metric given to ``Learner(metrics=...)`` is either a :class:`Metric` (``reset()``,
``accumulate(learn)``, ``value``, ``name``) or a plain function ``f(pred, targ)`` returning a
scalar, which is wrapped in :class:`AvgMetric`: the batch values averaged with batch-size
weights (exact for means such as accuracy). :class:`AccumMetric` keeps every prediction and
target of the epoch and computes the metric once on all of them (needed for RMSE, F1, AUC...).

    learn = Learner(dls, model, metrics=[accuracy, F1Score(average="macro"), RocAuc()])

Metric functions take ember Tensors or NumPy arrays and return a 0-d float32 Tensor, as
fastai's return a 0-d torch tensor. The scikit-learn style scores behind ``F1Score``,
``Precision``, ``Recall``, ``RocAuc``... (``f1_score(y_true, y_pred, ...)`` and friends) are
written here in NumPy with scikit-learn's definitions, so no scikit-learn is needed.
"""
from __future__ import annotations

import itertools
from typing import Callable

import numpy as np

from ..tensor import Tensor
from ..train.metrics import _snake, to_numpy
from ..train.recorder import batch_size

__all__ = ["Metric", "AvgMetric", "AccumMetric", "AvgLoss", "AvgSmoothLoss", "ValueMetric",
           "ActivationType", "mk_metric", "flatten_check", "skm_to_fastai",
           "accuracy", "error_rate", "top_k_accuracy", "accuracy_multi", "mse", "mae", "msle",
           "rmse", "exp_rmspe", "APScoreBinary", "BalancedAccuracy", "MatthewsCorrCoef",
           "F1Score", "FBeta", "Precision", "Recall", "RocAuc", "RocAucBinary", "R2Score",
           "ExplainedVariance", "F1ScoreMulti", "FBetaMulti", "PrecisionMulti",
           "RecallMulti", "RocAucMulti", "precision_score", "recall_score", "f1_score",
           "fbeta_score", "roc_auc_score", "average_precision_score",
           "balanced_accuracy_score", "matthews_corrcoef", "r2_score",
           "explained_variance_score"]


def _np(x) -> np.ndarray:
    return np.asarray(to_numpy(x))


def _t(v) -> Tensor:
    """A metric's result as a 0-d float32 Tensor (what fastai's metric functions return)."""
    return Tensor._wrap(np.asarray(v, dtype=np.float32))


def _item(v):
    """A metric value as a Python float, or a NumPy array for per-class results."""
    if v is None:
        return None
    a = np.asarray(to_numpy(v))
    return float(a) if a.size == 1 else a


def flatten_check(inp, targ, name: str = "metric") -> tuple:
    """Both flattened (as NumPy), after checking they hold as many elements."""
    inp, targ = _np(inp).reshape(-1), _np(targ).reshape(-1)
    if inp.size != targ.size:
        raise ValueError(f"{name}: expected output and target to have the same number of "
                         f"elements but got {inp.size} and {targ.size}")
    return inp, targ


def _class_axis(name: str, inp: np.ndarray, axis: int) -> None:
    if inp.ndim == 0 or not -inp.ndim <= axis < inp.ndim:
        raise ValueError(f"{name}: predictions of shape {inp.shape} have no class axis {axis}; "
                         f"expected scores of shape (batch, n_classes)")


# ----- metric functions --------------------------------------------------------------------------

def accuracy(inp, targ, axis: int = -1) -> Tensor:
    """Fraction of samples whose argmax over ``axis`` of ``inp`` equals ``targ``."""
    inp = _np(inp)
    _class_axis("accuracy", inp, axis)
    pred, targ = flatten_check(inp.argmax(axis), targ, "accuracy")
    return _t((pred == targ).mean())


def error_rate(inp, targ, axis: int = -1) -> Tensor:
    """``1 - accuracy``."""
    return _t(1 - float(_np(accuracy(inp, targ, axis=axis))))


def top_k_accuracy(inp, targ, k: int = 5, axis: int = -1) -> Tensor:
    """Fraction of samples whose target is among the ``k`` highest scores (ties: lower index)."""
    inp = _np(inp)
    _class_axis("top_k_accuracy", inp, axis)
    inp = np.moveaxis(inp, axis, -1)
    targ = _np(targ)
    if targ.shape != inp.shape[:-1]:
        raise ValueError(f"top_k_accuracy: targets of shape {targ.shape} must be the "
                         f"predictions {inp.shape} without the class axis")
    top = np.argsort(-inp, axis=-1, kind="stable")[..., :k]
    return _t((top == targ[..., None]).sum(-1).astype(np.float32).mean())


def accuracy_multi(inp, targ, thresh: float = 0.5, sigmoid: bool = True) -> Tensor:
    """Multi-label accuracy: elementwise agreement of ``inp > thresh`` (after a sigmoid when
    ``sigmoid``) with the 0/1 targets."""
    inp, targ = flatten_check(inp, targ, "accuracy_multi")
    inp = inp.astype(np.float64)
    if sigmoid:
        inp = 1 / (1 + np.exp(-inp))
    return _t(((inp > thresh) == targ.astype(bool)).mean())


def mse(inp, targ) -> Tensor:
    """Mean squared error."""
    inp, targ = flatten_check(inp, targ, "mse")
    return _t(np.mean((inp.astype(np.float64) - targ) ** 2))


def mae(inp, targ) -> Tensor:
    """Mean absolute error."""
    inp, targ = flatten_check(inp, targ, "mae")
    return _t(np.mean(np.abs(inp.astype(np.float64) - targ)))


def msle(inp, targ) -> Tensor:
    """Mean squared logarithmic error: the MSE of ``log(1 + x)``."""
    inp, targ = flatten_check(inp, targ, "msle")
    return _t(np.mean((np.log1p(inp.astype(np.float64)) - np.log1p(targ)) ** 2))


# ----- scikit-learn's scores, in NumPy ----------------------------------------------------------

_AVERAGES = (None, "binary", "micro", "macro", "weighted")


def _weights(sample_weight, n: int) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n)
    w = np.asarray(to_numpy(sample_weight), np.float64).reshape(-1)
    if w.size != n:
        raise ValueError(f"sample_weight has {w.size} values for {n} samples")
    return w


def _div(a, b) -> np.ndarray:
    """a / b, 0 where b == 0 (scikit-learn's zero_division=0, without its warning)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))


def _multilabel(y_true: np.ndarray, y_pred: np.ndarray) -> bool:
    return y_true.ndim == 2 and y_true.shape[1] > 1


def _prf_counts(y_true, y_pred, labels, average, pos_label, sample_weight, fn: str) -> tuple:
    """Per-label (tp, predicted, true) weighted counts and the labels they belong to."""
    if average not in _AVERAGES:
        raise ValueError(f"{fn}: average must be one of {_AVERAGES}, got {average!r}")
    y_true, y_pred = _np(y_true), _np(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{fn}: y_true {y_true.shape} and y_pred {y_pred.shape} must have the "
                         f"same shape")
    if _multilabel(y_true, y_pred):
        if average == "binary":
            raise ValueError(f"{fn}: target is multilabel-indicator but average='binary'; "
                             f"choose one of [None, 'micro', 'macro', 'weighted']")
        t, p = y_true.astype(bool), y_pred.astype(bool)
        w = _weights(sample_weight, len(t))[:, None]
        cols = list(range(t.shape[1])) if labels is None else list(labels)
        t, p = t[:, cols], p[:, cols]
        return (w * (t & p)).sum(0), (w * p).sum(0), (w * t).sum(0), cols
    y_true, y_pred = y_true.reshape(-1), y_pred.reshape(-1)
    w = _weights(sample_weight, len(y_true))
    present = np.unique(np.concatenate([y_true, y_pred]))
    if average == "binary":
        if len(present) > 2:
            raise ValueError(f"{fn}: target is multiclass but average='binary'; choose one of "
                             f"[None, 'micro', 'macro', 'weighted']")
        if len(present) == 2 and pos_label not in present:
            raise ValueError(f"{fn}: pos_label={pos_label!r} is not a valid label; it should "
                             f"be one of {present.tolist()}")
        labels = [pos_label]
    elif labels is None:
        labels = present.tolist()
    tp = np.array([(w * ((y_true == c) & (y_pred == c))).sum() for c in labels])
    pred = np.array([(w * (y_pred == c)).sum() for c in labels])
    true = np.array([(w * (y_true == c)).sum() for c in labels])
    return tp, pred, true, list(labels)


def _average(values: np.ndarray, true: np.ndarray, average):
    if average is None:
        return values
    if average == "weighted":
        return float(np.average(values, weights=true)) if true.sum() > 0 else 0.0
    return float(values.mean()) if values.size else 0.0


def _prf(y_true, y_pred, beta, labels, pos_label, average, sample_weight, fn) -> tuple:
    tp, pred, true, _ = _prf_counts(y_true, y_pred, labels, average, pos_label, sample_weight,
                                    fn)
    if average == "micro":
        tp, pred, true = tp.sum(keepdims=True), pred.sum(keepdims=True), true.sum(keepdims=True)
    precision, recall = _div(tp, pred), _div(tp, true)
    b2 = beta * beta
    # scikit-learn >= 1.3: (1 + b2) tp / ((1 + b2) tp + b2 fn + fp), 0 when undefined
    f = _div((1 + b2) * tp, (1 + b2) * tp + b2 * (true - tp) + (pred - tp))
    avg = "macro" if average in ("micro", "binary") else average
    return (_average(precision, true, avg), _average(recall, true, avg),
            _average(f, true, avg))


def precision_score(y_true, y_pred, labels=None, pos_label=1, average: str | None = "binary",
                    sample_weight=None):
    """``tp / (tp + fp)``, as scikit-learn's ``precision_score`` (0 where undefined)."""
    return _prf(y_true, y_pred, 1.0, labels, pos_label, average, sample_weight,
                "precision_score")[0]


def recall_score(y_true, y_pred, labels=None, pos_label=1, average: str | None = "binary",
                 sample_weight=None):
    """``tp / (tp + fn)``, as scikit-learn's ``recall_score``."""
    return _prf(y_true, y_pred, 1.0, labels, pos_label, average, sample_weight,
                "recall_score")[1]


def fbeta_score(y_true, y_pred, beta: float, labels=None, pos_label=1,
                average: str | None = "binary", sample_weight=None):
    """The F-beta score, as scikit-learn's ``fbeta_score``."""
    if beta <= 0:
        raise ValueError(f"fbeta_score: beta should be > 0, got {beta}")
    return _prf(y_true, y_pred, beta, labels, pos_label, average, sample_weight,
                "fbeta_score")[2]


def f1_score(y_true, y_pred, labels=None, pos_label=1, average: str | None = "binary",
             sample_weight=None):
    """The F1 score (harmonic mean of precision and recall), as scikit-learn's ``f1_score``."""
    return _prf(y_true, y_pred, 1.0, labels, pos_label, average, sample_weight, "f1_score")[2]


def _confusion(y_true, y_pred, sample_weight) -> np.ndarray:
    y_true, y_pred = _np(y_true).reshape(-1), _np(y_pred).reshape(-1)
    labels = np.unique(np.concatenate([y_true, y_pred]))
    w = _weights(sample_weight, len(y_true))
    ti, pi = np.searchsorted(labels, y_true), np.searchsorted(labels, y_pred)
    c = np.zeros((len(labels), len(labels)))
    np.add.at(c, (ti, pi), w)
    return c


def balanced_accuracy_score(y_true, y_pred, sample_weight=None, adjusted: bool = False) -> float:
    """The mean per-class recall over the classes present in ``y_true`` (scikit-learn's);
    ``adjusted`` rescales so that chance is 0 and perfect is 1."""
    c = _confusion(y_true, y_pred, sample_weight)
    support = c.sum(1)
    per_class = np.diag(c)[support > 0] / support[support > 0]
    score = float(per_class.mean())
    if adjusted:
        chance = 1 / len(per_class)
        score = (score - chance) / (1 - chance)
    return score


def matthews_corrcoef(y_true, y_pred, sample_weight=None) -> float:
    """Matthews correlation coefficient (multiclass form), as scikit-learn's."""
    c = _confusion(y_true, y_pred, sample_weight)
    t_sum, p_sum = c.sum(1), c.sum(0)
    n_correct, n = np.trace(c), p_sum.sum()
    cov_ytyp = n_correct * n - t_sum @ p_sum
    cov_ypyp = n * n - p_sum @ p_sum
    cov_ytyt = n * n - t_sum @ t_sum
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return float(cov_ytyp / np.sqrt(cov_ytyt * cov_ypyp))


def _roc(y: np.ndarray, s: np.ndarray, w: np.ndarray) -> tuple:
    """False- and true-positive rates at every distinct threshold, from (0, 0)."""
    order = np.argsort(-s, kind="mergesort")
    y, s, w = y[order], s[order], w[order]
    ends = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y * w)[ends]
    fps = np.cumsum((1 - y) * w)[ends]
    return np.r_[0.0, fps] / fps[-1], np.r_[0.0, tps] / tps[-1]


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def _binary_auc(y, s, w, max_fpr=None, fn="roc_auc_score") -> float:
    y = np.asarray(y).reshape(-1)
    if len(np.unique(y)) != 2:
        raise ValueError(f"{fn}: only one class present in y_true; ROC AUC score is not "
                         f"defined in that case")
    fpr, tpr = _roc(y.astype(np.float64), np.asarray(s, np.float64).reshape(-1), w)
    if max_fpr is None or max_fpr == 1:
        return float(_trapezoid(tpr, fpr))
    if not 0 < max_fpr <= 1:
        raise ValueError(f"{fn}: expected max_fpr in range (0, 1], got {max_fpr}")
    stop = np.searchsorted(fpr, max_fpr, "right")
    tpr = np.append(tpr[:stop], np.interp(max_fpr, fpr[stop - 1:stop + 1],
                                          tpr[stop - 1:stop + 1]))
    fpr = np.append(fpr[:stop], max_fpr)
    partial = _trapezoid(tpr, fpr)
    # McClish correction: 0.5 for a random ranking, 1 for a perfect one
    lo, hi = 0.5 * max_fpr ** 2, max_fpr
    return float(0.5 * (1 + (partial - lo) / (hi - lo)))


def roc_auc_score(y_true, y_score, average: str | None = "macro", sample_weight=None,
                  max_fpr: float | None = None, multi_class: str = "raise", labels=None):
    """Area under the ROC curve (exact, trapezoids between distinct thresholds), as
    scikit-learn's ``roc_auc_score``: binary (``y_score`` the positive class's score),
    multiclass (``(n, n_classes)`` probabilities, ``multi_class`` "ovr" or "ovo") and
    multilabel (0/1 indicator targets, one column per label)."""
    y_true, y_score = _np(y_true), _np(y_score).astype(np.float64)
    if _multilabel(y_true, y_score):
        if y_true.shape != y_score.shape:
            raise ValueError(f"roc_auc_score: multilabel y_true {y_true.shape} and y_score "
                             f"{y_score.shape} must have the same shape")
        w = _weights(sample_weight, len(y_true))
        if average == "micro":
            return _binary_auc(y_true.ravel(), y_score.ravel(), np.repeat(w, y_true.shape[1]),
                               max_fpr)
        if average not in (None, "macro", "weighted"):
            raise ValueError(f"roc_auc_score: average must be None, 'micro', 'macro' or "
                             f"'weighted' for multilabel targets, got {average!r}")
        per = np.array([_binary_auc(y_true[:, j], y_score[:, j], w, max_fpr)
                        for j in range(y_true.shape[1])])
        return _average(per, (y_true * w[:, None]).sum(0), average)
    y_true = y_true.reshape(-1)
    classes = np.unique(y_true)
    if y_score.ndim == 2 and (y_score.shape[1] > 2 or len(classes) > 2):
        return _multiclass_auc(y_true, y_score, average, sample_weight, max_fpr, multi_class,
                               labels)
    if len(classes) > 2:
        raise ValueError(f"roc_auc_score: y_true has {len(classes)} classes but y_score "
                         f"{y_score.shape} gives one score per sample; pass (n, n_classes) "
                         f"probabilities for multiclass targets")
    if y_score.ndim == 2:  # (n, 2) scores: the positive class is the second column
        y_score = y_score[:, -1]
    pos = classes[-1] if len(classes) else 1
    return _binary_auc(y_true == pos, y_score, _weights(sample_weight, len(y_true)), max_fpr)


def _multiclass_auc(y_true, y_score, average, sample_weight, max_fpr, multi_class, labels):
    fn = "roc_auc_score"
    if multi_class not in ("ovr", "ovo"):
        raise ValueError(f"{fn}: multiclass targets need multi_class='ovr' or 'ovo', got "
                         f"{multi_class!r}")
    if average not in ("macro", "weighted"):
        raise ValueError(f"{fn}: average must be 'macro' or 'weighted' for multiclass "
                         f"targets, got {average!r}")
    if max_fpr is not None and max_fpr != 1:
        raise ValueError(f"{fn}: partial AUC (max_fpr={max_fpr}) is only defined for binary "
                         f"targets")
    if not np.allclose(1, y_score.sum(axis=1)):
        raise ValueError(f"{fn}: target scores need to be probabilities for multiclass ROC "
                         f"AUC, i.e. they should sum up to 1.0 over classes")
    classes = np.unique(y_true) if labels is None else np.asarray(labels)
    if len(classes) != y_score.shape[1]:
        raise ValueError(f"{fn}: number of classes in y_true ({len(classes)}) not equal to the "
                         f"number of columns in y_score ({y_score.shape[1]})")
    y = np.searchsorted(classes, y_true)
    if multi_class == "ovr":
        w = _weights(sample_weight, len(y))
        per = np.array([_binary_auc(y == c, y_score[:, c], w) for c in range(len(classes))])
        support = np.array([(w * (y == c)).sum() for c in range(len(classes))])
        return _average(per, support, average)
    if sample_weight is not None:
        raise ValueError(f"{fn}: sample_weight is not supported for multiclass one-vs-one ROC "
                         f"AUC")
    scores, prevalence = [], []
    for a, b in itertools.combinations(np.unique(y), 2):
        ab = (y == a) | (y == b)
        ones = np.ones(int(ab.sum()))
        scores.append((_binary_auc(y[ab] == a, y_score[ab, a], ones) +
                       _binary_auc(y[ab] == b, y_score[ab, b], ones)) / 2)
        prevalence.append(ab.mean())
    return float(np.average(scores, weights=prevalence if average == "weighted" else None))


def average_precision_score(y_true, y_score, average: str | None = "macro", pos_label=1,
                            sample_weight=None) -> float:
    """Average precision (the step-wise area under the precision-recall curve), as
    scikit-learn's, for binary targets."""
    y = np.asarray(_np(y_true)).reshape(-1) == pos_label
    s = _np(y_score).astype(np.float64).reshape(-1)
    w = _weights(sample_weight, len(y))
    order = np.argsort(-s, kind="mergesort")
    y, s, w = y[order], s[order], w[order]
    ends = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
    tps = np.cumsum(y * w)[ends]
    fps = np.cumsum(~y * w)[ends]
    if tps[-1] == 0:
        return 0.0
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def r2_score(y_true, y_pred, sample_weight=None) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` (1 or 0 when SS_tot is 0, as
    scikit-learn's ``force_finite``)."""
    t, p = flatten_check(y_true, y_pred, "r2_score")
    w = _weights(sample_weight, len(t))
    t, p = t.astype(np.float64), p.astype(np.float64)
    ss_res = (w * (t - p) ** 2).sum()
    ss_tot = (w * (t - np.average(t, weights=w)) ** 2).sum()
    if ss_tot == 0:
        return 1.0 if ss_res == 0 else 0.0
    return float(1 - ss_res / ss_tot)


def explained_variance_score(y_true, y_pred, sample_weight=None) -> float:
    """``1 - Var(y - pred) / Var(y)``, as scikit-learn's."""
    t, p = flatten_check(y_true, y_pred, "explained_variance_score")
    w = _weights(sample_weight, len(t))
    t, p = t.astype(np.float64), p.astype(np.float64)
    d = t - p
    num = np.average((d - np.average(d, weights=w)) ** 2, weights=w)
    den = np.average((t - np.average(t, weights=w)) ** 2, weights=w)
    if den == 0:
        return 1.0 if num == 0 else 0.0
    return float(1 - num / den)


# ----- metric classes ----------------------------------------------------------------------------


def _func_name(func) -> str:
    f = getattr(func, "func", func)  # functools.partial
    return getattr(f, "__name__", type(f).__name__)


class Metric:
    """Base class of fastai metrics: ``reset`` before an epoch's phase, ``accumulate(learn)``
    after each batch (reading ``learn.pred`` and ``learn.yb``), then ``value``."""

    def reset(self) -> None:
        pass

    def accumulate(self, learn) -> None:
        pass

    @property
    def value(self):
        raise NotImplementedError(f"{type(self).__name__} must define the value property")

    @property
    def name(self) -> str:
        n = type(self).__name__
        n = n[:-len("Metric")] if n.endswith("Metric") and n != "Metric" else n
        return _snake(n)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


def _yb(learn) -> tuple:
    yb = learn.yb
    if not yb:
        raise ValueError("metric: the batch has no targets (learn.yb is empty)")
    return yb


class AvgMetric(Metric):
    """The batch-size-weighted mean of ``func(pred, *yb)`` over the batches."""

    def __init__(self, func: Callable) -> None:
        self.func = func
        self.reset()

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def accumulate(self, learn) -> None:
        yb = _yb(learn)
        bs = batch_size(yb)
        self.total += float(_np(self.func(learn.pred, *yb))) * bs
        self.count += bs

    @property
    def value(self):
        return self.total / self.count if self.count else None

    @property
    def name(self) -> str:
        return _func_name(self.func)


class ActivationType:
    """What :class:`AccumMetric` applies to the predictions before ``func``."""

    No = "no"
    Sigmoid = "sigmoid"
    Softmax = "softmax"
    BinarySoftmax = "binary_softmax"


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


class AccumMetric(Metric):
    """Keeps every prediction and target of the phase; ``value`` is ``func(preds, targs)``
    on all of them (``func(targs, preds)`` with ``invert_arg``, scikit-learn's order).

    Args:
        dim_argmax: take the argmax of the predictions over this axis first.
        activation: an :class:`ActivationType` applied first (softmax over ``dim_argmax``).
        thresh: predictions become ``pred >= thresh``.
        to_np: pass NumPy arrays to ``func`` (else ember Tensors).
        flatten: flatten predictions and targets (checking they match in size).
    """

    def __init__(self, func: Callable, dim_argmax: int | None = None,
                 activation: str = ActivationType.No, thresh: float | None = None,
                 to_np: bool = False, invert_arg: bool = False, flatten: bool = True,
                 name: str | None = None, **kwargs) -> None:
        if activation not in (ActivationType.No, ActivationType.Sigmoid,
                              ActivationType.Softmax, ActivationType.BinarySoftmax):
            raise ValueError(f"AccumMetric: unknown activation {activation!r}; expected one of "
                             f"'no', 'sigmoid', 'softmax', 'binary_softmax'")
        self.func, self.dim_argmax, self.activation = func, dim_argmax, activation
        self.thresh, self.flatten, self.to_np = thresh, flatten, to_np
        self.invert_args, self.kwargs = invert_arg, kwargs
        self._name = name or _func_name(func)
        self.reset()

    def reset(self) -> None:
        self.targs, self.preds = [], []

    def accumulate(self, learn) -> None:
        pred = _np(learn.pred).astype(np.float64, copy=False)
        axis = -1 if self.dim_argmax is None else self.dim_argmax
        if self.activation in (ActivationType.Softmax, ActivationType.BinarySoftmax):
            pred = _softmax(pred, axis)
            if self.activation == ActivationType.BinarySoftmax:
                pred = pred[:, -1]
        elif self.activation == ActivationType.Sigmoid:
            pred = 1 / (1 + np.exp(-pred))
        elif self.dim_argmax is not None:
            pred = pred.argmax(axis=self.dim_argmax)
        if self.thresh is not None:
            pred = pred >= self.thresh
        self.accum_values(pred, _yb(learn)[0])

    def accum_values(self, preds, targs) -> None:
        """Store a batch of (already activated) predictions and targets."""
        preds, targs = _np(preds), _np(targs)
        if self.flatten:
            preds, targs = flatten_check(preds, targs, self.name)
        self.preds.append(preds)
        self.targs.append(targs)

    def __call__(self, preds, targs):
        """The metric on one batch."""
        self.reset()
        self.accum_values(preds, targs)
        return self.value

    @property
    def value(self):
        if not self.preds:
            return None
        preds, targs = np.concatenate(self.preds), np.concatenate(self.targs)
        if not self.to_np:
            preds, targs = Tensor._wrap(preds), Tensor._wrap(targs)
        if self.invert_args:
            return self.func(targs, preds, **self.kwargs)
        return self.func(preds, targs, **self.kwargs)

    @property
    def name(self) -> str:
        return self._name


class AvgLoss(Metric):
    """The batch-size-weighted mean of ``learn.loss``."""

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def accumulate(self, learn) -> None:
        bs = batch_size(learn.yb)
        self.total += float(_np(learn.loss).mean()) * bs
        self.count += bs

    @property
    def value(self):
        return self.total / self.count if self.count else None

    @property
    def name(self) -> str:
        return "loss"


class AvgSmoothLoss(Metric):
    """Exponential moving average of the losses with weight ``beta``, debiased (as Adam's
    moments): ``val = beta * val + (1 - beta) * loss``, value ``val / (1 - beta**count)``."""

    def __init__(self, beta: float = 0.98) -> None:
        self.beta = beta
        self.reset()

    def reset(self) -> None:
        self.count, self.val = 0, 0.0

    def accumulate(self, learn) -> None:
        self.add(float(_np(learn.loss).mean()))

    def add(self, loss: float) -> None:
        """Add one batch's loss."""
        self.count += 1
        self.val = loss + self.beta * (self.val - loss)  # torch.lerp(loss, val, beta)

    @property
    def value(self):
        return self.val / (1 - self.beta ** self.count) if self.count else None

    @property
    def name(self) -> str:
        return "smooth_loss"


class ValueMetric(Metric):
    """A metric whose value is ``func()``, computed by something else (a callback)."""

    def __init__(self, func: Callable, metric_name: str | None = None) -> None:
        self.func, self.metric_name = func, metric_name

    @property
    def value(self):
        return self.func()

    @property
    def name(self) -> str:
        return self.metric_name or _func_name(self.func)


def mk_metric(m) -> Metric:
    """``m`` as a :class:`Metric`: classes are instantiated, functions wrapped in AvgMetric."""
    if isinstance(m, type):
        m = m()
    if isinstance(m, Metric):
        return m
    if not callable(m):
        raise TypeError(f"Learner metrics: expected a Metric or a function f(pred, targ), got "
                        f"{type(m).__name__} {m!r}")
    return AvgMetric(m)


def skm_to_fastai(func: Callable, is_class: bool = True, thresh: float | None = None,
                  axis: int = -1, activation: str | None = None, **kwargs) -> AccumMetric:
    """A scikit-learn style ``func(y_true, y_pred, **kwargs)`` as an AccumMetric: class
    scores go through argmax over ``axis`` (or a sigmoid and ``thresh``)."""
    dim_argmax = axis if is_class and thresh is None else None
    if activation is None:
        activation = ActivationType.Sigmoid if (is_class and thresh is not None) \
            else ActivationType.No
    return AccumMetric(func, dim_argmax=dim_argmax, activation=activation, thresh=thresh,
                       to_np=True, invert_arg=True, **kwargs)


def _rmse(preds: np.ndarray, targs: np.ndarray) -> float:
    return float(np.sqrt(np.mean((preds.astype(np.float64) - targs) ** 2)))


def _exp_rmspe(preds: np.ndarray, targs: np.ndarray) -> float:
    preds, targs = np.exp(preds.astype(np.float64)), np.exp(targs.astype(np.float64))
    return float(np.sqrt((((targs - preds) / targs) ** 2).mean()))


rmse = AccumMetric(_rmse, to_np=True, name="rmse")
rmse.__doc__ = "Root mean squared error over the whole phase (not a mean of batch RMSEs)."
exp_rmspe = AccumMetric(_exp_rmspe, to_np=True, name="exp_rmspe")
exp_rmspe.__doc__ = "Root mean squared percentage error of exp(pred) against exp(targ)."


# fastai's single-label classification wrappers over scikit-learn's scores
def APScoreBinary(axis: int = -1, average: str | None = "macro", pos_label=1,  # noqa: N802
                  sample_weight=None) -> AccumMetric:
    """Average precision for single-label binary classification (softmax, positive = last)."""
    return skm_to_fastai(average_precision_score, axis=axis,
                         activation=ActivationType.BinarySoftmax, average=average,
                         pos_label=pos_label, sample_weight=sample_weight)


def BalancedAccuracy(axis: int = -1, sample_weight=None,  # noqa: N802
                     adjusted: bool = False) -> AccumMetric:
    """Balanced accuracy (mean recall per class) for single-label classification."""
    return skm_to_fastai(balanced_accuracy_score, axis=axis, sample_weight=sample_weight,
                         adjusted=adjusted)


def MatthewsCorrCoef(sample_weight=None, **kwargs) -> AccumMetric:  # noqa: N802
    """Matthews correlation coefficient for single-label classification."""
    return skm_to_fastai(matthews_corrcoef, sample_weight=sample_weight, **kwargs)


def F1Score(axis: int = -1, labels=None, pos_label=1, average: str | None = "binary",  # noqa: N802
            sample_weight=None) -> AccumMetric:
    """F1 score for single-label classification (argmax of the scores)."""
    return skm_to_fastai(f1_score, axis=axis, labels=labels, pos_label=pos_label,
                         average=average, sample_weight=sample_weight)


def FBeta(beta: float, axis: int = -1, labels=None, pos_label=1,  # noqa: N802
          average: str | None = "binary", sample_weight=None) -> AccumMetric:
    """F-beta score for single-label classification."""
    return skm_to_fastai(fbeta_score, axis=axis, beta=beta, labels=labels,
                         pos_label=pos_label, average=average, sample_weight=sample_weight)


def Precision(axis: int = -1, labels=None, pos_label=1,  # noqa: N802
              average: str | None = "binary", sample_weight=None) -> AccumMetric:
    """Precision for single-label classification."""
    return skm_to_fastai(precision_score, axis=axis, labels=labels, pos_label=pos_label,
                         average=average, sample_weight=sample_weight)


def Recall(axis: int = -1, labels=None, pos_label=1,  # noqa: N802
           average: str | None = "binary", sample_weight=None) -> AccumMetric:
    """Recall for single-label classification."""
    return skm_to_fastai(recall_score, axis=axis, labels=labels, pos_label=pos_label,
                         average=average, sample_weight=sample_weight)


def RocAuc(axis: int = -1, average: str = "macro", sample_weight=None,  # noqa: N802
           max_fpr: float | None = None, multi_class: str = "ovr") -> AccumMetric:
    """ROC AUC for single-label multiclass classification (softmax of the scores)."""
    if multi_class not in ("ovr", "ovo"):
        raise ValueError(f"RocAuc: multi_class must be 'ovr' or 'ovo', got {multi_class!r}")
    return skm_to_fastai(roc_auc_score, axis=axis, activation=ActivationType.Softmax,
                         flatten=False, average=average, sample_weight=sample_weight,
                         max_fpr=max_fpr, multi_class=multi_class)


def RocAucBinary(axis: int = -1, average: str = "macro", sample_weight=None,  # noqa: N802
                 max_fpr: float | None = None, multi_class: str = "raise") -> AccumMetric:
    """ROC AUC for single-label binary classification (softmax, positive = last column)."""
    return skm_to_fastai(roc_auc_score, axis=axis, activation=ActivationType.BinarySoftmax,
                         average=average, sample_weight=sample_weight, max_fpr=max_fpr,
                         multi_class=multi_class)


def R2Score(sample_weight=None) -> AccumMetric:  # noqa: N802
    """R squared for regression."""
    return skm_to_fastai(r2_score, is_class=False, sample_weight=sample_weight)


def ExplainedVariance(sample_weight=None) -> AccumMetric:  # noqa: N802
    """Explained variance for regression."""
    return skm_to_fastai(explained_variance_score, is_class=False,
                         sample_weight=sample_weight)


# fastai's multi-label wrappers: sigmoid, then threshold, per label column
def _multi(func, thresh, sigmoid, **kwargs) -> AccumMetric:
    act = ActivationType.Sigmoid if sigmoid else ActivationType.No
    return skm_to_fastai(func, thresh=thresh, activation=act, flatten=False, **kwargs)


def F1ScoreMulti(thresh: float = 0.5, sigmoid: bool = True, labels=None,  # noqa: N802
                 pos_label=1, average: str | None = "macro", sample_weight=None):
    """F1 score for multi-label classification."""
    return _multi(f1_score, thresh, sigmoid, labels=labels, pos_label=pos_label,
                  average=average, sample_weight=sample_weight)


def FBetaMulti(beta: float, thresh: float = 0.5, sigmoid: bool = True,  # noqa: N802
               labels=None, pos_label=1, average: str | None = "macro", sample_weight=None):
    """F-beta score for multi-label classification."""
    return _multi(fbeta_score, thresh, sigmoid, beta=beta, labels=labels,
                  pos_label=pos_label, average=average, sample_weight=sample_weight)


def PrecisionMulti(thresh: float = 0.5, sigmoid: bool = True, labels=None,  # noqa: N802
                   pos_label=1, average: str | None = "macro", sample_weight=None):
    """Precision for multi-label classification."""
    return _multi(precision_score, thresh, sigmoid, labels=labels, pos_label=pos_label,
                  average=average, sample_weight=sample_weight)


def RecallMulti(thresh: float = 0.5, sigmoid: bool = True, labels=None,  # noqa: N802
                pos_label=1, average: str | None = "macro", sample_weight=None):
    """Recall for multi-label classification."""
    return _multi(recall_score, thresh, sigmoid, labels=labels, pos_label=pos_label,
                  average=average, sample_weight=sample_weight)


def RocAucMulti(sigmoid: bool = True, average: str | None = "macro",  # noqa: N802
                sample_weight=None, max_fpr: float | None = None) -> AccumMetric:
    """ROC AUC for multi-label classification (one curve per label)."""
    act = ActivationType.Sigmoid if sigmoid else ActivationType.No
    return skm_to_fastai(roc_auc_score, activation=act, flatten=False, average=average,
                         sample_weight=sample_weight, max_fpr=max_fpr)
