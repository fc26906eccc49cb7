"""``F.embedding`` and ``F.one_hot`` (the primitive lives in ``ember.ops.embedding``)."""
from ...ops.embedding import embedding, one_hot

__all__ = ["embedding", "one_hot"]
