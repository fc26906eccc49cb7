"""``ember.train``: the one training engine under ``ember.keras`` and ``ember.learner``.

    from ember.train import Engine, metrics, GradientClip
    engine = Engine(model, F.cross_entropy, opt, train_loader, valid_loader,
                    metrics=[metrics.Accuracy()], cbs=[GradientClip(max_norm=1.0)], verbose=1)
    engine.fit(5)
    engine.recorder.history["val_accuracy"]

Every feature is a :class:`Callback` with an ``order``; callbacks steer the loop by raising
the Cancel exceptions. Built in: :class:`Recorder` (loss, metrics, history),
:class:`ProgressBar` (tqdm), :class:`GradientAccumulation`, :class:`GradientClip`, and a
compiled train step through :func:`ember.jit`.
"""
from . import metrics
from .events import (EVENTS, STEP_EVENTS, Callback, CancelBackwardException,
                     CancelBatchException, CancelEpochException, CancelFitException,
                     CancelStepException, CancelTrainException, CancelValidException)
from .gradients import GradientAccumulation, GradientClip
from .loop import Engine, concat_outputs, detach, map_structure, to_tensors
from .progress import ProgressBar, format_logs
from .recorder import Recorder, batch_size

__all__ = ["Engine", "Callback", "Recorder", "ProgressBar", "GradientAccumulation",
           "GradientClip", "metrics", "EVENTS", "STEP_EVENTS", "CancelBatchException",
           "CancelBackwardException", "CancelStepException", "CancelTrainException",
           "CancelValidException", "CancelEpochException", "CancelFitException",
           "batch_size", "concat_outputs", "detach", "map_structure", "to_tensors",
           "format_logs"]
