"""``F.dropout`` family (the primitive lives in ``ember.ops.dropout``)."""
from ...ops.dropout import alpha_dropout, dropout, dropout1d, dropout2d

__all__ = ["dropout", "dropout1d", "dropout2d", "alpha_dropout"]
