"""``F.batch_norm``, ``F.layer_norm``, ``F.group_norm``, ``F.instance_norm``, ``F.rms_norm``,
``F.local_response_norm`` (the primitives live in ``ember.ops.normalization``)."""
from ...ops.normalization import (batch_norm, group_norm, instance_norm, layer_norm,
                                  local_response_norm, rms_norm)

__all__ = ["batch_norm", "layer_norm", "group_norm", "instance_norm", "rms_norm",
           "local_response_norm"]
