"""The training loop's named events, the ``Callback`` base and the Cancel exceptions.

The engine (:class:`ember.train.Engine`) runs one loop and calls, at each named point, every
callback that defines a method of that name, in ``order`` (smaller first)::

    before_fit
      before_epoch
        before_train
          before_batch, after_pred, after_loss, before_backward, after_backward,
          before_step, after_step, after_batch          (for every training batch)
        after_train
        before_validate
          before_batch, after_pred, after_loss, after_batch   (for every validation batch)
        after_validate
      after_epoch
    after_fit

Control flow is by exception (fastai's design): raising ``CancelBatchException`` in any batch
event skips the rest of that batch; ``CancelTrainException`` ends the epoch's training part,
``CancelValidException`` its validation, ``CancelEpochException`` the epoch, and
``CancelFitException`` the whole fit. After a cancel, ``after_cancel_<event>`` runs, then the
matching ``after_<event>`` as usual.
"""
from __future__ import annotations

__all__ = ["Callback", "EVENTS", "STEP_EVENTS", "CancelBatchException",
           "CancelBackwardException", "CancelStepException", "CancelTrainException",
           "CancelValidException", "CancelEpochException", "CancelFitException"]


class CancelBatchException(Exception):
    """Skip the rest of this batch (``after_cancel_batch``, then ``after_batch``, run)."""


class CancelBackwardException(Exception):
    """Skip the backward pass of this batch."""


class CancelStepException(Exception):
    """Skip the optimiser step of this batch (gradient accumulation raises it)."""


class CancelTrainException(Exception):
    """End the training part of this epoch; validation still runs."""


class CancelValidException(Exception):
    """End the validation part of this epoch."""


class CancelEpochException(Exception):
    """End this epoch; the next one starts."""


class CancelFitException(Exception):
    """End the fit (``after_cancel_fit``, then ``after_fit``, run)."""


# The events a training step fires between its forward and its optimiser step: a compiled
# step (ember.jit) runs them inside the graph, so only traceable callbacks may define them.
STEP_EVENTS = ("after_pred", "after_loss", "before_backward", "after_backward", "before_step",
               "after_step", "after_cancel_backward", "after_cancel_step")

EVENTS = ("before_fit", "before_epoch", "before_train", "before_batch", "after_pred",
          "after_loss", "before_backward", "after_backward", "after_cancel_backward",
          "before_step", "after_step", "after_cancel_step", "after_cancel_batch",
          "after_batch", "after_cancel_train", "after_train", "before_validate",
          "after_cancel_validate", "after_validate", "after_cancel_epoch", "after_epoch",
          "after_cancel_fit", "after_fit")


class Callback:
    """Base class of the engine's callbacks: define methods named after events.

    Class attributes:
        order: callbacks run in increasing ``order`` (the metrics recorder is 50, the progress
            bar 80: a callback that reads the epoch's logs and should be printed uses < 80).
        run_train / run_valid: call this callback's batch events during training / validation.
        traceable: its step events (``after_backward``...) use only ember ops on tensors, never
            Python reads of their values, so a compiled train step can run them inside the
            graph. A callback that defines step events without it turns compilation off.

    While attached, ``self.engine`` is the engine; attributes the callback does not have are
    looked up there, so ``self.model``, ``self.loss``, ``self.epoch`` read the loop state.
    """

    order: int = 0
    run_train: bool = True
    run_valid: bool = True
    traceable: bool = False
    engine = None

    @property
    def name(self) -> str:
        """Snake-case class name without a "Callback" suffix (fastai's ``cb.name``)."""
        if "name" in self.__dict__:
            return self.__dict__["name"]
        n = type(self).__name__
        if n.endswith("Callback") and n != "Callback":
            n = n[: -len("Callback")]
        from .metrics import _snake  # LRFinder -> lr_finder, as fastai names it
        return _snake(n)

    @name.setter
    def name(self, value: str) -> None:
        self.__dict__["name"] = value

    def __getattr__(self, name: str):
        # only called for attributes the callback lacks: fall through to the loop state
        if name.startswith("__") or name == "engine":
            raise AttributeError(name)
        engine = self.__dict__.get("engine") or type(self).engine
        if engine is None:
            raise AttributeError(f"'{type(self).__name__}' has no attribute '{name}' (and is "
                                 f"not attached to an engine)")
        return getattr(engine, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
