"""ember.train.metrics against NumPy formulas, an exact AUC, and Keras 3 (when installed)."""
import os
import re

import numpy as np
import pytest

import ember as em
from ember.train import metrics as M
from oracles import keras_or_skip  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # keras/torch internals

rng = np.random.default_rng(0)
N, K = 24, 4
P = rng.dirichlet(np.ones(K), N).astype(np.float32)          # class probabilities
Y = rng.integers(0, K, N)                                     # sparse targets
Y1H = np.eye(K, dtype=np.float32)[Y]                          # one-hot targets
PB = rng.random((N, 1)).astype(np.float32)                    # binary probabilities
YB = rng.integers(0, 2, (N, 1)).astype(np.float32)            # binary targets
SW = rng.random(N).astype(np.float32)                         # sample weights
R_T = rng.standard_normal((N, 3)).astype(np.float32)          # regression
R_P = rng.standard_normal((N, 3)).astype(np.float32)


def _wmean(v, w=None):
    return float(np.sum(v * w) / np.sum(w)) if w is not None else float(np.mean(v))


def _two_batches(m, yt, yp, sw=None):
    """Update in two uneven batches (one as Tensors): the result must not depend on it."""
    h = len(yt) // 3
    m.update_state(yt[:h], yp[:h], None if sw is None else sw[:h])
    m.update_state(em.tensor(yt[h:]), em.tensor(yp[h:]), None if sw is None else sw[h:])
    return m.result()


def _rank(p, t):  # 1 + how many classes score strictly higher than the target
    return 1 + (p > p[np.arange(len(t)), t][:, None]).sum(1)


CASES = [  # (metric, y_true, y_pred, sample_weight, NumPy reference)
    (lambda: M.Accuracy(), Y, P, None, _wmean(P.argmax(1) == Y)),
    (lambda: M.Accuracy(), Y1H, P, SW, _wmean(P.argmax(1) == Y, SW)),
    (lambda: M.Accuracy(), YB, PB, None, _wmean((PB > .5) == YB)),
    (lambda: M.Accuracy(), YB[:, 0], PB[:, 0], SW, _wmean((PB[:, 0] > .5) == YB[:, 0], SW)),
    (lambda: M.BinaryAccuracy(threshold=0.3), YB, PB, None, _wmean((PB > .3) == YB)),
    (lambda: M.CategoricalAccuracy(), Y1H, P, SW, _wmean(P.argmax(1) == Y, SW)),
    (lambda: M.SparseCategoricalAccuracy(), Y[:, None], P, None, _wmean(P.argmax(1) == Y)),
    (lambda: M.TopKCategoricalAccuracy(k=2), Y1H, P, None, _wmean(_rank(P, Y) <= 2)),
    (lambda: M.SparseTopKCategoricalAccuracy(k=2), Y, P, SW, _wmean(_rank(P, Y) <= 2, SW)),
    (lambda: M.MeanAbsoluteError(), R_T, R_P, SW, _wmean(np.abs(R_T - R_P).mean(1), SW)),
    (lambda: M.MeanSquaredError(), R_T, R_P, None, _wmean(((R_T - R_P) ** 2).mean(1))),
    (lambda: M.RootMeanSquaredError(), R_T, R_P, SW,
     np.sqrt(_wmean(((R_T - R_P) ** 2).mean(1), SW))),
]


@pytest.mark.parametrize("i", range(len(CASES)))
def test_mean_metrics_match_numpy(i):
    make, yt, yp, sw, want = CASES[i]
    np.testing.assert_allclose(_two_batches(make(), yt, yp, sw), want, rtol=1e-6)


def test_mean_and_reset():
    m = M.Mean()
    m.update_state([1.0, 3.0, 5.0, 7.0], sample_weight=[1, 1, 0, 0])
    assert m.result() == 2.0
    m.update_state(np.ones((2, 3)) * 4)  # each row counts once
    assert m.result() == pytest.approx((1 + 3 + 8) / 4)
    m.reset_state()
    assert m.result() == 0.0 and m.name == "mean"


def _counts(yt, yp, thr):
    pos = yp > thr
    yt = yt.astype(bool)
    return (pos & yt).sum(), (pos & ~yt).sum(), (~pos & yt).sum()


def test_precision_recall_thresholds_top_k_class_id():
    tp, fp, fn = _counts(YB, PB, 0.5)
    assert _two_batches(M.Precision(), YB, PB) == pytest.approx(tp / (tp + fp))
    assert _two_batches(M.Recall(), YB, PB) == pytest.approx(tp / (tp + fn))
    got = _two_batches(M.Precision(thresholds=[0.2, 0.7]), YB, PB)
    want = [a / (a + b) for a, b, _ in (_counts(YB, PB, t) for t in (0.2, 0.7))]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # top_k=1 on multi-class scores: the arg-max class of each row is the only positive
    top = np.eye(K, dtype=bool)[P.argmax(1)]
    want = (top & Y1H.astype(bool)).sum() / top.sum()
    assert _two_batches(M.Precision(top_k=1), Y1H, P) == pytest.approx(want)
    tp, fp, fn = _counts(Y1H[:, 2], P[:, 2], 0.5)
    assert _two_batches(M.Recall(class_id=2), Y1H, P) == pytest.approx(
        tp / (tp + fn) if tp + fn else 0.0)


@pytest.mark.parametrize("average", [None, "micro", "macro", "weighted"])
def test_f1_score_formula(average):
    pred = np.eye(K)[P.argmax(1)]
    tp = (pred * Y1H).sum(0)
    fp = (pred * (1 - Y1H)).sum(0)
    fn = ((1 - pred) * Y1H).sum(0)
    if average == "micro":
        tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
    f1 = 2 * tp / (2 * tp + fp + fn)
    if average == "macro":
        f1 = f1.mean()
    elif average == "weighted":
        f1 = (f1 * Y1H.sum(0)).sum() / Y1H.sum()
    np.testing.assert_allclose(_two_batches(M.F1Score(average=average), Y1H, P), f1,
                               rtol=1e-5)


def _exact_auc(scores, labels):
    """P(score of a positive > score of a negative), ties counting one half."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    diff = pos[:, None] - neg[None, :]
    return ((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size


def test_auc_roc_is_exact_for_scores_at_bucket_centres():
    # with 200 thresholds, scores at bucket centres are never split by a threshold, so the
    # trapezoidal sum over thresholds is the exact (Mann-Whitney) AUC
    n = 300
    s = ((rng.integers(0, 199, n) + 0.5) / 199).astype(np.float32)
    lab = (rng.random(n) < s).astype(np.float32)
    got = _two_batches(M.AUC(), lab, s)
    assert got == pytest.approx(_exact_auc(s, lab), abs=1e-6)
    # continuous scores: the 200-threshold approximation stays close
    s2 = rng.random(n).astype(np.float32)
    lab2 = (rng.random(n) < s2).astype(np.float32)
    assert _two_batches(M.AUC(), lab2, s2) == pytest.approx(_exact_auc(s2, lab2), abs=5e-3)


def test_auc_from_logits_and_weights():
    s = rng.standard_normal(50).astype(np.float32)
    lab = (rng.random(50) < 0.5).astype(np.float32)
    a = M.AUC(from_logits=True)
    b = M.AUC()
    assert _two_batches(a, lab, s) == pytest.approx(_two_batches(b, lab, 1 / (1 + np.exp(-s))))
    w = np.ones(50, np.float32)
    assert _two_batches(M.AUC(), lab, 1 / (1 + np.exp(-s)), w) == pytest.approx(b.result())


def test_bad_shapes_name_the_metric():
    with pytest.raises(ValueError, match="sparse_categorical_accuracy"):
        M.SparseCategoricalAccuracy().update_state(np.zeros((4, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="FBetaScore|F1Score"):
        M.F1Score().update_state(np.zeros(4), np.zeros(4))
    with pytest.raises(ValueError, match="categorical_accuracy"):
        M.CategoricalAccuracy().update_state(np.zeros(4), np.zeros((4, 3)))


# ----- Keras 3 as the oracle ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return keras_or_skip()


KERAS_CASES = [  # (keras class name, kwargs, y_true, y_pred, sample_weight)
    ("BinaryAccuracy", {}, YB, PB, SW),
    ("CategoricalAccuracy", {}, Y1H, P, SW),
    ("SparseCategoricalAccuracy", {}, Y, P, None),
    ("TopKCategoricalAccuracy", {"k": 2}, Y1H, P, SW),
    ("SparseTopKCategoricalAccuracy", {"k": 3}, Y, P, None),
    ("Precision", {}, YB, PB, SW),
    ("Precision", {"thresholds": [0.1, 0.5, 0.9]}, YB, PB, None),
    ("Precision", {"top_k": 2}, Y1H, P, None),
    ("Recall", {}, YB, PB, SW),
    ("Recall", {"class_id": 1}, Y1H, P, None),
    ("F1Score", {}, Y1H, P, None),
    ("F1Score", {"average": "macro", "threshold": 0.3}, Y1H, P, SW),
    ("F1Score", {"average": "weighted"}, Y1H, P, None),
    ("AUC", {}, YB, PB, None),
    ("AUC", {}, YB, PB, SW),
    ("AUC", {"curve": "PR"}, YB, PB, None),
    ("AUC", {"summation_method": "minoring"}, YB, PB, None),
    ("AUC", {"curve": "PR", "summation_method": "majoring", "num_thresholds": 37}, YB, PB, SW),
    ("AUC", {"multi_label": True}, Y1H, P, None),
    ("AUC", {"thresholds": [0.2, 0.5, 0.61]}, YB, PB, None),
    ("MeanAbsoluteError", {}, R_T, R_P, SW),
    ("MeanSquaredError", {}, R_T, R_P, None),
    ("RootMeanSquaredError", {}, R_T, R_P, SW),
]


@pytest.mark.parametrize("i", range(len(KERAS_CASES)))
def test_metrics_match_keras(keras, i):
    name, kw, yt, yp, sw = KERAS_CASES[i]
    k = getattr(keras.metrics, name)(**kw)
    h = len(yt) // 3
    k.update_state(yt[:h], yp[:h], None if sw is None else sw[:h])
    k.update_state(yt[h:], yp[h:], None if sw is None else sw[h:])
    want = np.asarray(keras.ops.convert_to_numpy(k.result()))
    got = _two_batches(getattr(M, name)(**kw), yt, yp, sw)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    # Keras numbers repeated default names (auc_1, auc_2...) process-wide; ember does not
    assert getattr(M, name)(**kw).name == re.sub(r"_\d+$", "", k.name)
