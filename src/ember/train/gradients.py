"""Gradient callbacks: accumulation over several batches, and clipping by norm or value."""
from __future__ import annotations

import math

from ..tensor import Tensor
from .events import Callback, CancelStepException

__all__ = ["GradientAccumulation", "GradientClip"]


class GradientAccumulation(Callback):
    """Step the optimiser once every ``steps`` batches, with the mean of their gradients.

    The loss of each batch is divided by ``steps`` before the backward pass, so with batches
    of equal size the step equals one on a single batch ``steps`` times larger. Gradients left
    over at the end of an epoch carry into the next one. The logged loss is not divided.
    """

    order = -20
    run_valid = False

    def __init__(self, steps: int = 2) -> None:
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"GradientAccumulation: steps must be an int >= 1, got {steps!r}")
        self.steps = steps
        self.count = 0

    def before_fit(self) -> None:
        self.count = 0

    def after_loss(self) -> None:
        self.engine.loss_grad = self.engine.loss_grad / self.steps

    def before_step(self) -> None:
        self.count += 1
        if self.count % self.steps:
            raise CancelStepException()


def _params(engine) -> list:
    opt = engine.opt
    if opt is not None and hasattr(opt, "param_groups"):
        return [p for g in opt.param_groups for p in g["params"]]
    return list(engine.model.parameters())


class GradientClip(Callback):
    """Clip gradients after the backward pass: to a total ``max_norm`` (PyTorch's
    ``clip_grad_norm_`` formula, ``norm_type`` 2, inf or any p) and/or elementwise to
    ``[-clip_value, clip_value]``.

    Written with ember ops only, so a compiled train step keeps it inside the graph.
    """

    order = -10
    run_valid = False
    traceable = True

    def __init__(self, max_norm: float | None = None, clip_value: float | None = None,
                 norm_type: float = 2.0) -> None:
        if max_norm is None and clip_value is None:
            raise ValueError("GradientClip: give max_norm, clip_value or both")
        if max_norm is not None and not max_norm > 0:
            raise ValueError(f"GradientClip: max_norm must be > 0, got {max_norm}")
        if clip_value is not None and not clip_value > 0:
            raise ValueError(f"GradientClip: clip_value must be > 0, got {clip_value}")
        self.max_norm, self.clip_value, self.norm_type = max_norm, clip_value, float(norm_type)

    def after_backward(self) -> None:
        params = [p for p in _params(self.engine) if isinstance(p.grad, Tensor)]
        if not params:
            return
        if self.clip_value is not None:
            v = self.clip_value
            for p in params:
                p.grad = p.grad.clamp(-v, v)
        if self.max_norm is not None:
            if math.isinf(self.norm_type):
                total = None
                for p in params:
                    m = p.grad.abs().max()
                    total = m if total is None else total.maximum(m)
            else:
                n = self.norm_type
                total = sum(((p.grad.abs() ** n).sum() for p in params[1:]),
                            (params[0].grad.abs() ** n).sum()) ** (1.0 / n)
            # PyTorch's coefficient: max_norm / (norm + 1e-6), never above 1
            coef = (self.max_norm / (total + 1e-6)).clamp(max=1.0)
            for p in params:
                p.grad = p.grad * coef.to(p.grad.dtype)
