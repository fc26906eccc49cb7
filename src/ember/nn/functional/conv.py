"""``F.conv1d/2d/3d``, ``F.conv_transpose1d/2d/3d``, ``F.unfold`` and ``F.fold`` (the
primitives and their backward ops live in ``ember.ops.conv``)."""
from ...ops.conv import (conv1d, conv2d, conv3d, conv_transpose1d, conv_transpose2d,
                         conv_transpose3d, fold, unfold)

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "unfold", "fold"]
