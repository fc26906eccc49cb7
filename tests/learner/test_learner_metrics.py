"""ember.learner metrics against NumPy formulas, scikit-learn's documented values and SciPy's
Mann-Whitney U (the AUC's rank form)."""
from types import SimpleNamespace

import numpy as np
import pytest

import ember as em
from ember.learner import (APScoreBinary, AvgMetric, AvgSmoothLoss, BalancedAccuracy,
                           ExplainedVariance, F1Score, F1ScoreMulti, FBeta, MatthewsCorrCoef,
                           Precision, PrecisionMulti, R2Score, Recall, RecallMulti, RocAuc,
                           RocAucBinary, RocAucMulti, accuracy, accuracy_multi, error_rate,
                           exp_rmspe, mae, mk_metric, mse, msle, rmse, top_k_accuracy)
from ember.learner import metrics as M

RNG = np.random.default_rng(0)
SCORES = RNG.standard_normal((50, 5)).astype(np.float32)
LABELS = RNG.integers(0, 5, 50)


def _batch(pred, targ):
    return SimpleNamespace(pred=em.tensor(pred), yb=(em.tensor(targ),))


def _run(metric, chunks):
    """Accumulate (pred, targ) batches as the Recorder does; return the metric's value."""
    metric.reset()
    for p, t in chunks:
        metric.accumulate(_batch(p, t))
    return metric.value


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ----- plain functions ---------------------------------------------------------------------------

@pytest.mark.parametrize("fn, expected", [
    (accuracy, (SCORES.argmax(1) == LABELS).mean()),
    (error_rate, 1 - (SCORES.argmax(1) == LABELS).mean()),
])
def test_accuracy_and_error_rate(fn, expected):
    out = fn(em.tensor(SCORES), em.tensor(LABELS))
    assert isinstance(out, em.Tensor) and out.ndim == 0
    assert float(out) == pytest.approx(expected)


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_accuracy(k):
    top = np.argsort(-SCORES, axis=1)[:, :k]
    expected = np.mean([LABELS[i] in top[i] for i in range(len(LABELS))])
    assert float(top_k_accuracy(SCORES, LABELS, k=k)) == pytest.approx(expected)


@pytest.mark.parametrize("thresh, sigmoid", [(0.5, True), (0.2, False), (0.8, True)])
def test_accuracy_multi(thresh, sigmoid):
    x = RNG.standard_normal((20, 4)).astype(np.float32)
    y = RNG.integers(0, 2, (20, 4))
    p = 1 / (1 + np.exp(-x)) if sigmoid else x
    expected = ((p > thresh) == y.astype(bool)).mean()
    assert float(accuracy_multi(x, y, thresh=thresh, sigmoid=sigmoid)) == \
        pytest.approx(expected)


P = RNG.random(30).astype(np.float32) + 0.1
T = RNG.random(30).astype(np.float32) + 0.1


@pytest.mark.parametrize("fn, expected", [
    (mse, np.mean((P - T) ** 2)),
    (mae, np.mean(np.abs(P - T))),
    (msle, np.mean((np.log1p(P) - np.log1p(T)) ** 2)),
])
def test_regression_functions(fn, expected):
    assert float(fn(em.tensor(P), em.tensor(T[:, None]))) == pytest.approx(expected, rel=1e-5)


def test_mismatched_sizes_name_the_metric():
    with pytest.raises(ValueError, match="accuracy.*50 and 49"):
        accuracy(SCORES, LABELS[:49])
    with pytest.raises(ValueError, match="top_k_accuracy"):
        top_k_accuracy(SCORES, LABELS[:10])


# ----- accumulation ------------------------------------------------------------------------------

def test_avg_metric_weights_batches_by_size():
    chunks = [(SCORES[:7], LABELS[:7]), (SCORES[7:], LABELS[7:])]
    m = mk_metric(accuracy)
    assert isinstance(m, AvgMetric) and m.name == "accuracy"
    assert _run(m, chunks) == pytest.approx((SCORES.argmax(1) == LABELS).mean())


@pytest.mark.parametrize("metric, expected", [
    (rmse, np.sqrt(np.mean((P - T) ** 2))),
    (exp_rmspe, np.sqrt(np.mean(((np.exp(T) - np.exp(P)) / np.exp(T)) ** 2))),
    (R2Score(), 1 - ((T - P) ** 2).sum() / ((T - T.mean()) ** 2).sum()),
    (ExplainedVariance(), 1 - np.var(T - P) / np.var(T)),
])
def test_accumulated_regression_metrics_use_the_whole_epoch(metric, expected):
    # batches of 4 and 26: a mean of batch RMSEs would differ
    chunks = [(P[:4], T[:4]), (P[4:], T[4:])]
    assert float(_run(metric, chunks)) == pytest.approx(float(expected), rel=1e-5)


def test_avg_smooth_loss_is_debiased_ema():
    losses = [2.0, 1.5, 1.7, 0.9]
    m = AvgSmoothLoss(beta=0.9)
    for x in losses:
        m.add(x)
    ema = 0.0
    for x in losses:
        ema = 0.9 * ema + 0.1 * x
    assert m.value == pytest.approx(ema / (1 - 0.9 ** 4))


# ----- scikit-learn's scores (values from scikit-learn's documentation) --------------------------

YT, YP = [0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1]


@pytest.mark.parametrize("fn, kw, expected", [
    (M.precision_score, dict(average="macro"), 2 / 9),
    (M.precision_score, dict(average="micro"), 1 / 3),
    (M.precision_score, dict(average="weighted"), 2 / 9),
    (M.precision_score, dict(average=None), [2 / 3, 0, 0]),
    (M.recall_score, dict(average="macro"), 1 / 3),
    (M.recall_score, dict(average=None), [1, 0, 0]),
    (M.f1_score, dict(average="macro"), 0.8 / 3),
    (M.f1_score, dict(average="micro"), 1 / 3),
    (M.f1_score, dict(average="weighted"), 0.8 / 3),
    (M.f1_score, dict(average=None), [0.8, 0, 0]),
    (M.fbeta_score, dict(average="macro", beta=0.5), 0.2380952380952381),
    (M.fbeta_score, dict(average=None, beta=0.5), [0.71428571, 0, 0]),
])
def test_sklearn_documented_values(fn, kw, expected):
    np.testing.assert_allclose(fn(YT, YP, **kw), expected, rtol=1e-6)


def test_binary_precision_recall_f1_by_hand():
    yt, yp = [0, 1, 1, 0, 1, 1], [0, 1, 0, 0, 1, 1]  # tp 3, fp 0, fn 1
    assert M.precision_score(yt, yp) == pytest.approx(1.0)
    assert M.recall_score(yt, yp) == pytest.approx(0.75)
    assert M.f1_score(yt, yp) == pytest.approx(2 * 0.75 / 1.75)


def test_binary_average_rejects_multiclass():
    with pytest.raises(ValueError, match="multiclass but average='binary'"):
        M.f1_score(YT, YP)


@pytest.mark.parametrize("cls, fn", [(F1Score, M.f1_score), (Precision, M.precision_score),
                                     (Recall, M.recall_score)])
def test_class_metric_wrappers_take_the_argmax(cls, fn):
    chunks = [(SCORES[:20], LABELS[:20]), (SCORES[20:], LABELS[20:])]
    m = cls(average="macro")
    assert m.name == fn.__name__
    assert _run(m, chunks) == pytest.approx(fn(LABELS, SCORES.argmax(1), average="macro"))


def test_fbeta_wrapper():
    m = FBeta(beta=2.0, average="weighted")
    expected = M.fbeta_score(LABELS, SCORES.argmax(1), beta=2.0, average="weighted")
    assert _run(m, [(SCORES, LABELS)]) == pytest.approx(expected)


def test_balanced_accuracy_is_mean_recall_per_class():
    pred = SCORES.argmax(1)
    recalls = [(pred[LABELS == c] == c).mean() for c in np.unique(LABELS)]
    assert _run(BalancedAccuracy(), [(SCORES, LABELS)]) == pytest.approx(np.mean(recalls))


def test_matthews_binary_is_the_phi_coefficient():
    x = RNG.standard_normal((40, 2)).astype(np.float32)
    y = RNG.integers(0, 2, 40)
    p = x.argmax(1)
    phi = np.corrcoef(p, y)[0, 1]
    assert _run(MatthewsCorrCoef(), [(x, y)]) == pytest.approx(phi)


# ----- ROC AUC -----------------------------------------------------------------------------------

def _mwu_auc(y, s):
    """AUC as the Mann-Whitney U statistic over n_pos * n_neg (ties count one half)."""
    stats = pytest.importorskip("scipy.stats")
    y = np.asarray(y, bool)
    return stats.mannwhitneyu(s[y], s[~y]).statistic / (y.sum() * (~y).sum())


def test_binary_auc_equals_mann_whitney_with_ties():
    s = np.round(RNG.random(60), 1)  # many ties
    y = RNG.integers(0, 2, 60)
    assert M.roc_auc_score(y, s) == pytest.approx(_mwu_auc(y, s))


def test_auc_by_definition_without_scipy():
    s = np.array([0.1, 0.4, 0.35, 0.8])
    y = np.array([0, 0, 1, 1])  # pairs (pos, neg) ordered right: 3 of 4
    assert M.roc_auc_score(y, s) == pytest.approx(0.75)


def test_auc_integer_weights_equal_repeated_samples():
    s = RNG.random(20)
    y = RNG.integers(0, 2, 20)
    w = RNG.integers(1, 4, 20)
    assert M.roc_auc_score(y, s, sample_weight=w) == \
        pytest.approx(M.roc_auc_score(np.repeat(y, w), np.repeat(s, w)))


@pytest.mark.parametrize("max_fpr, flip, expected", [
    (0.5, False, 1.0),  # perfect ranking
    # reversed ranking: partial area 0, McClish gives 0.5 * (1 - 0.125 / (0.5 - 0.125))
    (0.5, True, 0.5 * (1 - 0.125 / 0.375)),
])
def test_partial_auc_mcclish(max_fpr, flip, expected):
    y = np.array([0] * 10 + [1] * 10)
    s = np.arange(20.0) * (-1 if flip else 1)
    assert M.roc_auc_score(y, s, max_fpr=max_fpr) == pytest.approx(expected)


def test_rocauc_multiclass_ovr_is_mean_of_one_vs_rest():
    probs = _softmax(SCORES.astype(np.float64))
    per = [_mwu_auc(LABELS == c, probs[:, c]) for c in range(5)]
    assert _run(RocAuc(), [(SCORES[:25], LABELS[:25]), (SCORES[25:], LABELS[25:])]) == \
        pytest.approx(np.mean(per))
    support = [np.sum(LABELS == c) for c in range(5)]
    assert M.roc_auc_score(LABELS, probs, average="weighted", multi_class="ovr") == \
        pytest.approx(np.average(per, weights=support))


def test_rocauc_multiclass_ovo_hand_till():
    probs = _softmax(SCORES.astype(np.float64))
    pairs = []
    for a in range(5):
        for b in range(a + 1, 5):
            m = (LABELS == a) | (LABELS == b)
            pairs.append((_mwu_auc(LABELS[m] == a, probs[m, a]) +
                          _mwu_auc(LABELS[m] == b, probs[m, b])) / 2)
    assert _run(RocAuc(multi_class="ovo"), [(SCORES, LABELS)]) == pytest.approx(np.mean(pairs))


def test_rocauc_binary_uses_the_last_softmax_column():
    x = RNG.standard_normal((40, 2)).astype(np.float32)
    y = RNG.integers(0, 2, 40)
    pos = _softmax(x.astype(np.float64))[:, 1]
    assert _run(RocAucBinary(), [(x, y)]) == pytest.approx(_mwu_auc(y, pos))


def test_rocauc_multi_label_per_column():
    x = RNG.standard_normal((40, 3)).astype(np.float32)
    y = RNG.integers(0, 2, (40, 3))
    per = [_mwu_auc(y[:, j], x[:, j]) for j in range(3)]  # sigmoid keeps the ranking
    assert _run(RocAucMulti(), [(x, y)]) == pytest.approx(np.mean(per))


def test_auc_errors_are_clear():
    with pytest.raises(ValueError, match="only one class present"):
        M.roc_auc_score([1, 1, 1], [0.2, 0.3, 0.9])
    with pytest.raises(ValueError, match="probabilities"):
        M.roc_auc_score(LABELS, SCORES, multi_class="ovr")


def test_average_precision_documented_value():
    assert M.average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == \
        pytest.approx(0.8333333)
    x = np.array([[0.0, 0.1], [0.0, 0.4], [0.0, 0.35], [0.0, 0.8]])
    # as a binary-softmax metric the positive score is softmax(x)[:, 1]: same ranking
    assert _run(APScoreBinary(), [(x, [0, 0, 1, 1])]) == pytest.approx(0.8333333)


# ----- multi-label wrappers ----------------------------------------------------------------------

@pytest.mark.parametrize("cls, count", [
    (PrecisionMulti, lambda tp, p, t: tp / p),
    (RecallMulti, lambda tp, p, t: tp / t),
    (F1ScoreMulti, lambda tp, p, t: 2 * tp / (p + t)),
])
def test_multi_label_metrics_threshold_sigmoids(cls, count):
    x = RNG.standard_normal((60, 3)).astype(np.float32)
    y = RNG.integers(0, 2, (60, 3))
    pred = 1 / (1 + np.exp(-x)) >= 0.5
    per = [count((pred[:, j] & (y[:, j] == 1)).sum(), pred[:, j].sum(), y[:, j].sum())
           for j in range(3)]
    assert _run(cls(), [(x[:30], y[:30]), (x[30:], y[30:])]) == pytest.approx(np.mean(per))
