"""Observers: the ranges they settle on, against NumPy."""
import numpy as np
import pytest

import ember as em
from ember.quantize import observers as O

rng = np.random.default_rng(2)


def qparams(lo, hi):
    lo, hi = np.float32(min(lo, 0)), np.float32(max(hi, 0))
    s = np.float32((hi - lo) / np.float32(255))
    return s, int(np.rint(-lo / s))


def quant_mse(x, scale, zp):
    q = np.clip(np.rint(x / scale) + zp, 0, 255)
    return float(np.mean(((q - zp) * scale - x) ** 2))


def test_minmax_observer_tracks_extremes_and_passes_input_through():
    obs = O.MinMaxObserver()
    batches = [rng.standard_normal(50).astype(np.float32) * k for k in (1, 3, 2)]
    for b in batches:
        x = em.tensor(b)
        assert obs(x) is x
    s, z = obs.calculate_qparams()
    ref_s, ref_z = qparams(min(b.min() for b in batches), max(b.max() for b in batches))
    assert s.item() == pytest.approx(float(ref_s), rel=1e-7)
    assert int(z.item()) == ref_z
    assert s.dtype == em.float32 and z.dtype == em.uint8


def test_positive_only_range_is_widened_to_zero():
    obs = O.MinMaxObserver()
    obs(em.tensor(np.array([2.0, 5.0], np.float32)))
    s, z = obs.calculate_qparams()
    assert int(z.item()) == 0 and s.item() == pytest.approx(5 / 255)


def test_moving_average_observer_formula():
    obs = O.MovingAverageMinMaxObserver(averaging_constant=0.5)
    data = [np.array([-1.0, 1.0]), np.array([-3.0, 5.0]), np.array([-1.0, 1.0])]
    for d in data:
        obs(em.tensor(d.astype(np.float32)))
    lo, hi = -1.0, 1.0
    for d in data[1:]:
        lo += 0.5 * (d.min() - lo)
        hi += 0.5 * (d.max() - hi)
    assert (obs.min_val, obs.max_val) == pytest.approx((lo, hi))


def test_percentile_observer_matches_numpy_percentile():
    x = rng.standard_normal(20000).astype(np.float32)
    obs = O.PercentileObserver(percentile=99.0, bins=2048)
    obs(em.tensor(x[:10000]))
    obs(em.tensor(x[10000:] * 1.5))  # the range grows: old counts move to the new bins
    allx = np.concatenate([x[:10000], x[10000:] * 1.5])
    lo, hi = obs._range()
    width = float(allx.max() - allx.min()) / 2048
    assert lo == pytest.approx(np.percentile(allx, 1.0), abs=3 * width)
    assert hi == pytest.approx(np.percentile(allx, 99.0), abs=3 * width)


@pytest.mark.parametrize("x", [rng.standard_normal(200000).astype(np.float32),
                               rng.laplace(size=200000).astype(np.float32)])
def test_histogram_observer_clips_tails_when_that_lowers_the_error(x):
    # with many values the rare extremes cost less clipped than the coarser grid they force
    hist, mm = O.HistogramObserver(), O.MinMaxObserver()
    hist(em.tensor(x))
    mm(em.tensor(x))
    hs, hz = (a.item() for a in hist.calculate_qparams())
    ms, mz = (a.item() for a in mm.calculate_qparams())
    assert hs < 0.9 * ms
    assert quant_mse(x, hs, hz) < 0.85 * quant_mse(x, ms, mz)


def test_histogram_observer_keeps_a_lone_outlier():
    # squared error: clipping one value at 40 costs more than the grid's rounding gains
    x = np.concatenate([rng.standard_normal(5000), [40.0]]).astype(np.float32)
    hist = O.HistogramObserver()
    hist(em.tensor(x))
    assert hist._range()[1] == pytest.approx(40.0)


def test_per_channel_weight_quantisation():
    w = rng.standard_normal((4, 3, 2)).astype(np.float32)
    w[2] = 0
    q, s = O.quantize_weight(w, axis=0)
    absmax = np.abs(w).reshape(4, -1).max(1)
    np.testing.assert_allclose(s[[0, 1, 3]], absmax[[0, 1, 3]] / 127, rtol=1e-6)
    assert s[2] == 1.0 and np.all(q[2] == 0)
    assert q.dtype == np.int8 and np.abs(q).max() == 127
    assert np.all(np.abs(q * s[:, None, None] - w) <= s[:, None, None] / 2 + 1e-7)
    obs = O.PerChannelMinMaxObserver(ch_axis=0)
    obs(em.tensor(w))
    np.testing.assert_allclose(obs.calculate_qparams()[0].numpy(), s)


def test_observer_errors():
    with pytest.raises(RuntimeError, match="no data observed"):
        O.MinMaxObserver().calculate_qparams()
    with pytest.raises(ValueError, match="percentile must be"):
        O.PercentileObserver(percentile=20)
    with pytest.raises(ValueError, match="averaging_constant"):
        O.MovingAverageMinMaxObserver(averaging_constant=0)
