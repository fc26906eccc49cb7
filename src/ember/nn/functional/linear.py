"""``F.linear`` and ``F.bilinear`` (the fused primitive lives in ``ember.ops.linear``)."""
from ...ops.linear import bilinear, linear

__all__ = ["linear", "bilinear"]
