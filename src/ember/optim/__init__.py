"""``ember.optim``: optimisers and learning-rate schedules with PyTorch's names and semantics.

    opt = ember.optim.AdamW(model.parameters(), lr=1e-3)
    sched = ember.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-2, total_steps=1000)
"""
from . import lr_scheduler  # noqa: F401
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .lbfgs import LBFGS
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "LBFGS",
           "lr_scheduler"]
