"""Anomaly detection: find the op whose backward (or forward) first produced NaN/inf."""
from __future__ import annotations

from .. import _state


class detect_anomaly:
    """Context manager: record where each op is created, check every backward result.

    On the first NaN/inf a ``FloatingPointError`` names the op and shows the user's source
    lines that created it. ``check_forward=True`` also checks every forward output.
    """

    def __init__(self, check_nan: bool = True, check_forward: bool = False):
        self.check_nan = check_nan
        self.check_forward = check_forward

    def __enter__(self):
        self._prev = (_state.anomaly, _state.anomaly_forward)
        _state.anomaly = self.check_nan
        _state.anomaly_forward = self.check_nan and self.check_forward
        return self

    def __exit__(self, *exc):
        _state.anomaly, _state.anomaly_forward = self._prev
        return False


def set_detect_anomaly(mode: bool, check_forward: bool = False) -> None:
    _state.anomaly = bool(mode)
    _state.anomaly_forward = bool(mode) and check_forward


def is_anomaly_enabled() -> bool:
    return _state.anomaly
