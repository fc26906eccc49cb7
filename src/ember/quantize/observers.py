"""Observers: modules that watch the values flowing through a model during calibration and
turn what they saw into quantisation parameters (PyTorch's ``torch.ao.quantization``
observers, same names).

Activations are quantised to uint8 per tensor (asymmetric): an observer settles on a range
``[lo, hi]`` (always widened to hold 0, so zero padding and ReLU's zeros are exact) and gives
``scale = (hi - lo) / 255`` and ``zero_point = round(-lo / scale)``. Weights are quantised to
int8 per output channel, symmetric: ``scale = max|w| / 127``, zero point 0.

- :class:`MinMaxObserver`: the smallest and largest value seen;
- :class:`MovingAverageMinMaxObserver`: an exponential moving average of each batch's min and
  max (less sensitive to one outlier batch);
- :class:`HistogramObserver`: a histogram of everything seen; the range is the one that
  minimises the expected squared quantisation error over the histogram (rounding inside the
  range plus clipping outside it), as PyTorch's HistogramObserver aims to, searched over
  ranges that drop up to 1% of the values at either end;
- :class:`PercentileObserver`: the histogram's lower and upper percentiles (ONNX Runtime's
  "Percentile" calibration);
- :class:`PerChannelMinMaxObserver`: symmetric int8 per channel, for weights.
"""
from __future__ import annotations

import numpy as np

from ..nn.modules.module import Module
from ..tensor import Tensor

__all__ = ["ObserverBase", "MinMaxObserver", "MovingAverageMinMaxObserver",
           "HistogramObserver", "PercentileObserver", "PerChannelMinMaxObserver",
           "affine_qparams", "symmetric_qparams", "quantize_weight"]

_F32 = np.float32


def affine_qparams(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (scale, zero_point) for the range ``[lo, hi]`` widened to hold 0, as 0-d float32
    and uint8 arrays (ONNX DynamicQuantizeLinear's formula; scale 1 for an all-zero range)."""
    lo, hi = _F32(min(lo, 0.0)), _F32(max(hi, 0.0))
    scale = _F32((hi - lo) / _F32(255))
    if scale == 0 or not np.isfinite(scale):
        scale = _F32(1.0)
    zp = np.clip(np.rint(_F32(0) - lo / scale), 0, 255)
    return np.asarray(scale, _F32), np.asarray(zp, np.uint8)


def symmetric_qparams(absmax: np.ndarray) -> np.ndarray:
    """Per-channel int8 scales ``absmax / 127`` (1 for an all-zero channel)."""
    scale = np.asarray(absmax, _F32) / _F32(127)
    return np.where(scale > 0, scale, _F32(1.0)).astype(_F32)


def quantize_weight(w: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8 quantisation of a float weight along ``axis``: returns
    ``(q int8, scale float32 (w.shape[axis],))`` with ``w ~ q * scale``, ``q`` in [-127, 127]."""
    w = np.asarray(w, _F32)
    other = tuple(i for i in range(w.ndim) if i != axis)
    scale = symmetric_qparams(np.abs(w).max(axis=other) if w.size else
                              np.zeros(w.shape[axis], _F32))
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def _values(x) -> np.ndarray:
    if isinstance(x, Tensor):
        return x._dev.backend.to_numpy(x.detach()._data)
    return np.asarray(x)


class ObserverBase(Module):
    """Records statistics of the tensors passed to ``forward`` (which returns its input
    unchanged) and turns them into ``(scale, zero_point)`` with :meth:`calculate_qparams`."""

    def forward(self, x):
        a = _values(x)
        if a.size:
            self._observe(np.asarray(a, np.float64 if a.dtype == np.float64 else _F32))
        return x

    def _observe(self, a: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} must implement _observe")

    def _range(self) -> tuple[float, float]:
        raise NotImplementedError(f"{type(self).__name__} must implement _range")

    @property
    def observed(self) -> bool:
        return self._seen

    def calculate_qparams(self) -> tuple[Tensor, Tensor]:
        """``(scale, zero_point)`` as 0-d float32 and uint8 Tensors."""
        if not self._seen:
            raise RuntimeError(f"{type(self).__name__}: no data observed; run calibration "
                               f"batches through the prepared model before convert()")
        lo, hi = self._range()
        scale, zp = affine_qparams(lo, hi)
        return Tensor._wrap(scale), Tensor._wrap(zp)

    def extra_repr(self) -> str:
        if not self._seen:
            return "no data"
        lo, hi = self._range()
        return f"min_val={lo:.6g}, max_val={hi:.6g}"


class MinMaxObserver(ObserverBase):
    """The range is the smallest and largest value seen."""

    def __init__(self):
        super().__init__()
        self._seen = False
        self.min_val = np.inf
        self.max_val = -np.inf

    def _observe(self, a):
        self._seen = True
        self.min_val = min(self.min_val, float(a.min()))
        self.max_val = max(self.max_val, float(a.max()))

    def _range(self):
        return self.min_val, self.max_val


class MovingAverageMinMaxObserver(MinMaxObserver):
    """The range is an exponential moving average of each batch's min and max:
    ``m <- m + averaging_constant * (batch_m - m)``, starting from the first batch."""

    def __init__(self, averaging_constant: float = 0.01):
        super().__init__()
        if not 0 < averaging_constant <= 1:
            raise ValueError(f"MovingAverageMinMaxObserver: averaging_constant must be in "
                             f"(0, 1], got {averaging_constant!r}")
        self.averaging_constant = float(averaging_constant)

    def _observe(self, a):
        lo, hi = float(a.min()), float(a.max())
        if not self._seen:
            self.min_val, self.max_val = lo, hi
        else:
            c = self.averaging_constant
            self.min_val += c * (lo - self.min_val)
            self.max_val += c * (hi - self.max_val)
        self._seen = True


class _HistogramBase(ObserverBase):
    """A histogram of every value seen; when new data falls outside the current range the
    range grows and the old counts are moved to the new bins holding their bin centres."""

    def __init__(self, bins: int = 2048):
        super().__init__()
        if not isinstance(bins, int) or bins < 16:
            raise ValueError(f"{type(self).__name__}: bins must be an int >= 16, got {bins!r}")
        self.bins = bins
        self._seen = False
        self.histogram = np.zeros(bins, np.float64)
        self.min_val = 0.0
        self.max_val = 0.0

    def _observe(self, a):
        lo, hi = float(a.min()), float(a.max())
        if self._seen:
            new_lo, new_hi = min(lo, self.min_val), max(hi, self.max_val)
            if (new_lo, new_hi) != (self.min_val, self.max_val):
                old_edges = np.linspace(self.min_val, self.max_val, self.bins + 1)
                centres = (old_edges[:-1] + old_edges[1:]) / 2
                self.histogram, _ = np.histogram(centres, self.bins, (new_lo, new_hi),
                                                 weights=self.histogram)
                self.min_val, self.max_val = new_lo, new_hi
        else:
            self.min_val, self.max_val = lo, hi
            self._seen = True
        if self.max_val > self.min_val:
            h, _ = np.histogram(a, self.bins, (self.min_val, self.max_val))
            self.histogram += h
        else:
            self.histogram[0] += a.size

    def _edges(self):
        return np.linspace(self.min_val, self.max_val, self.bins + 1)


class HistogramObserver(_HistogramBase):
    """The range minimising the expected squared quantisation error over the histogram."""

    def _error(self, centres, counts, lo, hi):
        delta = (max(hi, 0.0) - min(lo, 0.0)) / 255
        inside = (centres >= lo) & (centres <= hi)
        clipped = np.where(centres < lo, lo - centres, centres - hi)
        return float(counts[inside].sum() * delta * delta / 12 +
                     (counts[~inside] * clipped[~inside] ** 2).sum())

    def _range(self):
        if self.max_val <= self.min_val:
            return self.min_val, self.max_val
        edges = self._edges()
        centres = (edges[:-1] + edges[1:]) / 2
        h = self.histogram
        cum = np.cumsum(h)
        total = cum[-1]
        # Candidate ranges drop a fraction (0 to 1%, log-spaced) of the values at each end;
        # the one with the least error wins. Long sparse tails get cut, the bulk never.
        fracs = np.concatenate([[0.0], np.logspace(-6, -2, 17)])
        los = {int(np.searchsorted(cum, f * total, side="right")) for f in fracs}
        his = {int(np.searchsorted(cum, (1 - f) * total, side="left")) for f in fracs}
        best = None
        for lo in los:
            for hi in his:
                hi = min(hi, self.bins - 1)
                if hi < lo:
                    continue
                e = self._error(centres, h, edges[lo], edges[hi + 1])
                if best is None or e < best[0]:
                    best = (e, edges[lo], edges[hi + 1])
        return float(best[1]), float(best[2])


class PercentileObserver(_HistogramBase):
    """The range between the ``100 - percentile`` and ``percentile`` percentiles of the
    values seen (ONNX Runtime's Percentile calibration)."""

    def __init__(self, percentile: float = 99.99, bins: int = 2048):
        super().__init__(bins)
        if not 50 < percentile <= 100:
            raise ValueError(f"PercentileObserver: percentile must be in (50, 100], got "
                             f"{percentile!r}")
        self.percentile = float(percentile)

    def _range(self):
        if self.max_val <= self.min_val:
            return self.min_val, self.max_val
        edges = self._edges()
        cdf = np.cumsum(self.histogram) / self.histogram.sum()
        q = self.percentile / 100
        lo_bin = int(np.searchsorted(cdf, 1 - q, side="left"))
        hi_bin = int(np.searchsorted(cdf, q, side="left"))
        return float(edges[lo_bin]), float(edges[min(hi_bin + 1, self.bins)])


class PerChannelMinMaxObserver(ObserverBase):
    """Symmetric int8 quantisation per channel along ``ch_axis`` (weights)."""

    def __init__(self, ch_axis: int = 0):
        super().__init__()
        self.ch_axis = ch_axis
        self._seen = False
        self.absmax = None

    def _observe(self, a):
        other = tuple(i for i in range(a.ndim) if i != self.ch_axis % a.ndim)
        m = np.abs(a).max(axis=other)
        self.absmax = m if self.absmax is None else np.maximum(self.absmax, m)
        self._seen = True

    def calculate_qparams(self) -> tuple[Tensor, Tensor]:
        """``(scale (C,) float32, zero_point (C,) int8 zeros)``."""
        if not self._seen:
            raise RuntimeError("PerChannelMinMaxObserver: no data observed")
        scale = symmetric_qparams(self.absmax)
        return Tensor._wrap(scale), Tensor._wrap(np.zeros(scale.shape, np.int8))

    def extra_repr(self) -> str:
        return f"ch_axis={self.ch_axis}"
