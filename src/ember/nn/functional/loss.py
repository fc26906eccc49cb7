"""Loss functions (``F.cross_entropy`` and friends); they live in ``ember.ops.loss``."""
from ...ops.loss import (binary_cross_entropy, binary_cross_entropy_with_logits,
                         cosine_embedding_loss, cross_entropy, ctc_loss, gaussian_nll_loss,
                         hinge_embedding_loss, huber_loss, kl_div, l1_loss, margin_ranking_loss,
                         mse_loss, multilabel_soft_margin_loss, nll_loss, poisson_nll_loss,
                         smooth_l1_loss, soft_margin_loss, triplet_margin_loss)

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div",
           "cosine_embedding_loss", "margin_ranking_loss", "hinge_embedding_loss",
           "soft_margin_loss", "multilabel_soft_margin_loss", "poisson_nll_loss",
           "gaussian_nll_loss", "triplet_margin_loss", "ctc_loss"]
