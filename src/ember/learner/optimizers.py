"""fastai's optimiser functions with fastai's defaults, building ``ember.optim`` optimisers.

``Learner(opt_func=...)`` calls ``opt_func(param_groups, lr=lr)``; any ``ember.optim`` class
(``ember.optim.SGD``, ``functools.partial(ember.optim.AdamW, weight_decay=0.1)``) works too.
"""
from __future__ import annotations

from .. import optim

__all__ = ["Adam", "SGD"]


def Adam(params, lr: float = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99,  # noqa: N802
         eps: float = 1e-5, wd: float = 0.01, decouple_wd: bool = True) -> optim.Adam:
    """fastai's Adam: betas ``(mom, sqr_mom)`` = (0.9, 0.99), eps 1e-5, and decoupled weight
    decay 0.01 (``p *= 1 - lr * wd`` before the update, as AdamW) unless ``decouple_wd`` is
    False (then L2: ``wd * p`` is added to the gradient)."""
    return optim.Adam(params, lr=lr, betas=(mom, sqr_mom), eps=eps, weight_decay=wd,
                      decoupled_weight_decay=decouple_wd)


def SGD(params, lr: float = 1e-3, mom: float = 0.0, wd: float = 0.0) -> optim.SGD:  # noqa: N802
    """SGD with optional momentum ``mom`` (PyTorch's form, no dampening).

    The weight decay is ``torch.optim.SGD``'s (``wd * p`` added to the gradient); without
    momentum it is the same update as fastai's decoupled weight decay.
    """
    return optim.SGD(params, lr=lr, momentum=mom, weight_decay=wd)
