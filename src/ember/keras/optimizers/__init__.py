"""``keras.optimizers``: Keras 3's optimisers, with Keras's update formulas, on ``ember.optim``.

Each is an ``ember.optim.Optimizer`` (so ``state_dict()``/``load_state_dict()`` work and a
step compiles under ``ember.jit``) created without parameters: ``compile``/``fit`` call
``build(model parameters)``. The Keras face on top:

- ``learning_rate``: read as a float; assign a float (callbacks such as ReduceLROnPlateau
  do), or give a :mod:`~ember.keras.optimizers.schedules` schedule (or a no-argument
  callable) at construction, evaluated at ``iterations`` before every step;
- ``iterations``: steps taken so far;
- ``clipnorm`` (each gradient to that norm), ``clipvalue`` (each element), ``global_clipnorm``
  (all gradients together), and ``weight_decay`` (decoupled: ``w -= w * weight_decay * lr``
  before the update), applied in Keras's order: clip, decay, update.

The update rules are Keras's, which differ from PyTorch's: e.g. Keras's Adam puts epsilon
outside the bias correction (``w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)``),
and its RMSprop adds epsilon under the square root.

    opt = keras.optimizers.get("adam")
    opt = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import numpy as np

from ... import _state
from ...ops.registry import apply as _apply_op
from ...ops.registry import register
from ...optim.optimizer import Optimizer as _TorchOptimizer
from ...optim.optimizer import _own
from ...tensor import Tensor
from . import schedules
from .schedules import LearningRateSchedule

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "serialize",
           "deserialize", "schedules"]


# ----- the update, on arrays ---------------------------------------------------------------------

def _clip(g: np.ndarray, clipnorm, clipvalue, scale) -> np.ndarray:
    """The gradient as the step uses it: clipped (Keras's ``_clip_gradients``)."""
    if clipnorm:
        norm = math.sqrt(float(np.sum(np.square(g, dtype=np.float64))))
        g = g * np.asarray(clipnorm / max(norm, clipnorm), g.dtype)
    elif scale is not None:
        g = g * np.asarray(scale, g.dtype)
    elif clipvalue:
        g = np.clip(g, -clipvalue, clipvalue)
    return g


def _apply_update(rule: Callable, p: np.ndarray, g: np.ndarray, states: list, lr: float,
                  iterations: int, hyper: dict, weight_decay, clipnorm, clipvalue,
                  scale) -> None:
    """One parameter's Keras step, in place: clip the gradient, decay the weight, update."""
    g = _clip(g, clipnorm, clipvalue, scale)
    if weight_decay:
        p *= np.asarray(1 - weight_decay * lr, p.dtype)
    rule(p, g, states, lr, iterations, **hyper)


@register("keras_optimizer_update", saves=(), extra=True)
def _keras_update(xp, p, g, *rest, rule, hyper, n_states, weight_decay, clipnorm, clipvalue,
                  scaled, inplace=False):
    """One parameter's step, out of place (a traced ``step``): inputs ``p, g, *states, lr,
    iterations[, global clip scale]``; returns ``(p, (states...))``."""
    states = [_own(s, inplace) for s in rest[:n_states]]
    lr, it = rest[n_states], rest[n_states + 1]
    scale = float(rest[n_states + 2]) if scaled else None
    p = _own(p, inplace)
    _apply_update(rule, p, g, states, float(lr), int(it), hyper, weight_decay, clipnorm,
                  clipvalue, scale)
    return p, tuple(states)


_keras_update.updates_state = True  # output 0 is input 0's new value, extra k input 2+k's


@register("keras_iterations_update", saves=())  # "_update": a training-only op
def _iterations_update(xp, it):
    """``iterations + 1``: the step counter, advanced inside a compiled step."""
    return it + 1


def _sgd(p, g, states, lr, t, *, momentum, nesterov):
    if momentum:
        m = states[0]
        m *= momentum
        m -= lr * g
        if nesterov:
            p += m * momentum - lr * g
        else:
            p += m
    else:
        p -= lr * g


def _adam(p, g, states, lr, t, *, beta_1, beta_2, epsilon, amsgrad):
    m, v = states[0], states[1]
    step = t + 1
    alpha = lr * math.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
    # in place, one temporary: m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2)
    tmp = np.subtract(g, m)
    tmp *= 1 - beta_1
    m += tmp
    np.multiply(g, g, out=tmp)
    tmp -= v
    tmp *= 1 - beta_2
    v += tmp
    if amsgrad:
        np.maximum(states[2], v, out=states[2])
        v = states[2]
    # p -= m * alpha / (sqrt(v) + epsilon)
    np.sqrt(v, out=tmp)
    tmp += epsilon
    np.divide(m, tmp, out=tmp)
    tmp *= alpha
    p -= tmp


def _rmsprop(p, g, states, lr, t, *, rho, momentum, epsilon, centered):
    v = states[0]
    v *= rho
    v += (1 - rho) * g * g
    if centered:
        avg = states[1]
        avg *= rho
        avg += (1 - rho) * g
        denom = v - avg * avg + epsilon
    else:
        denom = v + epsilon
    inc = lr * g / np.sqrt(denom)
    if momentum > 0:
        mom = states[-1]
        mom *= momentum
        mom += inc
        p -= mom
    else:
        p -= inc


def _adagrad(p, g, states, lr, t, *, epsilon):
    acc = states[0]
    acc += g * g
    p -= lr * g / np.sqrt(acc + epsilon)


# ----- the optimiser classes ---------------------------------------------------------------------

class Optimizer(_TorchOptimizer):
    """Base class of the Keras optimisers (see the module doc).

    Subclasses give ``_rule`` (the in-place update of one parameter), ``_hyper()`` (its
    keyword hyper-parameters) and ``_slots()`` (names and initial values of the per-parameter
    state).
    """

    _rule: Callable = staticmethod(_sgd)

    def __init__(self, learning_rate=0.001, weight_decay: float | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None,
                 **kwargs) -> None:
        if kwargs.pop("decay", None) is not None:
            import warnings
            warnings.warn("Argument `decay` is no longer supported and will be ignored.",
                          stacklevel=2)
        # keys Keras 3 writes into every optimizer config: accepted at their "off" values
        # (a .keras file saved by Keras re-compiles); ember has no EMA or loss scaling
        for key, off in _KERAS_CONFIG_DEFAULTS.items():
            if key in kwargs and kwargs[key] in off:
                kwargs.pop(key)
        if kwargs:
            raise ValueError(f"{type(self).__name__}: argument(s) not recognized: {kwargs}")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(f"Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can "
                             f"be set. Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                             f"global_clipnorm={global_clipnorm}")
        if not isinstance(learning_rate, LearningRateSchedule) and not callable(learning_rate):
            if isinstance(learning_rate, bool) or not isinstance(learning_rate,
                                                                 (int, float, np.floating)):
                raise ValueError(f"Argument `learning_rate` should be float, or an instance of "
                                 f"LearningRateSchedule, or a callable (that takes in the "
                                 f"current iteration value and returns the corresponding "
                                 f"learning rate value). Received instead: "
                                 f"learning_rate={learning_rate!r}")
            learning_rate = float(learning_rate)
        self.name = name or _snake(type(self).__name__)
        self.weight_decay, self.clipnorm = weight_decay, clipnorm
        self.clipvalue, self.global_clipnorm = clipvalue, global_clipnorm
        self._schedule = None if isinstance(learning_rate, float) else learning_rate
        self._lr = learning_rate if isinstance(learning_rate, float) else None
        self._iterations = Tensor._wrap(np.zeros((), np.int64))
        self.built = False
        # ember.optim's bookkeeping exists before build, empty, so state_dict() works
        self.defaults = {}
        self.state = {}
        self.param_groups = []
        self._optimizer_step_pre_hooks: dict = {}
        self._optimizer_step_post_hooks: dict = {}
        self._patch_step_function()

    # ----- Keras attributes -------------------------------------------------------------------
    @property
    def iterations(self) -> int:
        """How many steps have been applied."""
        return int(self._iterations._data)

    @iterations.setter
    def iterations(self, value: int) -> None:
        self._iterations._data[...] = int(value)

    def _current_lr(self) -> float:
        if self._schedule is None:
            return self._lr
        if isinstance(self._schedule, LearningRateSchedule):
            return float(self._schedule(int(self._iterations._data)))
        return float(self._schedule())

    @property
    def learning_rate(self) -> float:
        """The learning rate the next step uses (a schedule's value at ``iterations``)."""
        return self._current_lr()

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if isinstance(value, LearningRateSchedule) or callable(value):
            self._schedule, self._lr = value, None
        elif isinstance(self._schedule, LearningRateSchedule):
            raise TypeError("This optimizer was created with a `LearningRateSchedule` object "
                            "as its `learning_rate` constructor argument, hence its learning "
                            "rate is not settable. If you need the learning rate to be "
                            "settable, you should instantiate the optimizer with a float "
                            "`learning_rate` argument.")
        else:
            self._schedule, self._lr = None, float(value)
        for g in self.param_groups:
            g["lr"] = self._lr if self._lr is not None else 0.0

    @property
    def variables(self) -> list:
        """``iterations`` then every parameter's state, as Tensors (Keras's order)."""
        out = [self._iterations]
        for g in self.param_groups:
            for p in g["params"]:
                out.extend(self.state[p].values())
        return out

    # ----- building ---------------------------------------------------------------------------
    def _hyper(self) -> dict:
        return {}

    def _slots(self, p: Tensor) -> dict:
        return {}

    def build(self, var_list) -> None:
        """Bind to the parameters to train and create their state (Keras's ``build``)."""
        params = [p for p in var_list]
        self.param_groups = []
        self.state = {}
        self.defaults = {"lr": self._lr if self._lr is not None else 0.0}
        self.add_param_group({"params": params})
        for p in params:
            self.state[p] = {k: Tensor._wrap(np.array(v, dtype=p._data.dtype), p._dev)
                             for k, v in self._slots(p).items()}
        self.built = True

    # ----- the step ---------------------------------------------------------------------------
    def _global_scale(self, grads: list):
        """Keras's ``clip_by_global_norm`` factor ``min(1, clip / norm)``, or None."""
        if not self.global_clipnorm:
            return None
        c = self.global_clipnorm
        if _state.tracer is not None:
            total = None
            for g in grads:
                s = (g * g).sum()
                total = s if total is None else total + s
            norm = total.sqrt()
            return (c * (1.0 / norm).clamp(max=1.0 / c)) + (norm - norm)
        norm = math.sqrt(sum(float(np.sum(np.square(g._data, dtype=np.float64)))
                             for g in grads))
        return c * min(1.0 / norm if norm else math.inf, 1.0 / c) + (norm - norm)

    def step(self, closure=None):
        """Apply one update from the parameters' ``.grad``; returns ``closure()``."""
        loss = self._eval_closure(closure)
        if not self.built:
            raise ValueError(f"{type(self).__name__}: the optimizer is not built; call "
                             f"optimizer.build(model.parameters()) (compile/fit do it)")
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if params:
            self._update(params, [p.grad for p in params])
        return loss

    def apply(self, grads, trainable_variables=None) -> None:
        """Keras's ``apply``: update ``trainable_variables`` (all built parameters if None)
        with ``grads`` (Tensors or arrays, None to skip one); builds on first use."""
        if trainable_variables is None:
            if not self.built:
                raise ValueError("When passing `grads` without `variables`, the optimizer "
                                 "must already be built on a list of variables. Call "
                                 "`optimizer.build(trainable_variables)` first.")
            trainable_variables = [p for g in self.param_groups for p in g["params"]]
        variables = list(trainable_variables)
        grads = list(grads)
        if len(grads) != len(variables):
            raise ValueError(f"{type(self).__name__}.apply: got {len(grads)} gradients for "
                             f"{len(variables)} variables")
        if not self.built:
            self.build(variables)
        known = {id(p) for g in self.param_groups for p in g["params"]}
        pairs = [(v, g) for v, g in zip(variables, grads) if g is not None]
        for v, _ in pairs:
            if id(v) not in known:
                raise ValueError(f"{type(self).__name__}.apply: a variable of shape "
                                 f"{tuple(v.shape)} is not one the optimizer was built with")
        if pairs:
            self._update([v for v, _ in pairs], [g if isinstance(g, Tensor) else
                                                 Tensor._wrap(np.asarray(g, v._data.dtype))
                                                 for v, g in pairs])

    def apply_gradients(self, grads_and_vars) -> int:
        """``apply`` from ``(gradient, variable)`` pairs; returns ``iterations``."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])
        return self.iterations

    def _update(self, params: list, grads: list) -> None:
        attrs = dict(rule=type(self)._rule, hyper=self._hyper(),
                     weight_decay=self.weight_decay, clipnorm=self.clipnorm,
                     clipvalue=self.clipvalue)
        tracer = _state.tracer
        if tracer is None:
            lr, it = self._current_lr(), int(self._iterations._data)
            scale = self._global_scale(grads)
            for p, g in zip(params, grads):
                st = list(self.state[p].values())
                _apply_update(attrs["rule"], p._data, g._data, [s._data for s in st], lr,
                              it, attrs["hyper"], self.weight_decay, self.clipnorm,
                              self.clipvalue, scale)
                p._version[0] += 1
            self._iterations._data += 1
            return
        # traced (ember.jit): one op per parameter, the learning rate read at every call
        lr = tracer.dynamic_scalar(self._current_lr, np.float64)
        scale = self._global_scale(grads)
        extra = (scale,) if scale is not None else ()
        for p, g in zip(params, grads):
            st = list(self.state[p].values())
            for s in st:
                tracer.capture(s)
            out, news = _apply_op(_keras_update, (p, g, *st, lr, self._iterations, *extra),
                              dict(attrs, n_states=len(st), scaled=scale is not None))
            np.copyto(p._data, out._data)
            tracer.inplace(p, out)
            for s, new in zip(st, news):
                np.copyto(s._data, new)
                tracer.inplace(s, Tensor._wrap(new, s._dev))
            p._version[0] += 1
        nxt = _apply_op(_iterations_update, (self._iterations,))
        np.copyto(self._iterations._data, nxt._data)
        tracer.inplace(self._iterations, nxt)

    # ----- state ------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """ember.optim's layout plus ``"iterations"``; the learning rate is in
        ``param_groups[i]["lr"]`` (a schedule is recomputed from ``iterations``)."""
        sd = super().state_dict()
        sd["iterations"] = int(self._iterations._data)
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        if not self.built:
            raise ValueError(f"{type(self).__name__}.load_state_dict: build the optimizer "
                             f"first (optimizer.build(model.parameters()), or fit once)")
        it = state_dict.get("iterations", 0)
        live = {p: dict(self.state[p]) for g in self.param_groups for p in g["params"]}
        super().load_state_dict({k: v for k, v in state_dict.items() if k != "iterations"})
        # write the loaded values into the existing tensors, so compiled steps that captured
        # them stay valid
        for p, old in live.items():
            new = self.state.get(p, {})
            for k, t in old.items():
                if k in new:
                    np.copyto(t._data, np.asarray(new[k]._data, t._data.dtype))
            self.state[p] = old
        self._iterations._data[...] = int(np.asarray(getattr(it, "_data", it)))
        if self._schedule is None and self.param_groups:
            self._lr = float(self.param_groups[0]["lr"])

    def _after_load(self) -> None:
        pass

    # ----- config -----------------------------------------------------------------------------
    def get_config(self) -> dict:
        lr = self._schedule if self._schedule is not None else self._lr
        if isinstance(lr, LearningRateSchedule):
            lr = schedules.serialize(lr)
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue}

    @classmethod
    def from_config(cls, config: dict, custom_objects: dict | None = None) -> "Optimizer":
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config["learning_rate"] = schedules.deserialize(lr, custom_objects)
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name} learning_rate={self._lr}>"


_KERAS_CONFIG_DEFAULTS = {"use_ema": (False,), "ema_momentum": (0.99,),
                          "ema_overwrite_frequency": (None,), "loss_scale_factor": (None,),
                          "gradient_accumulation_steps": (None, 1)}


def _snake(name: str) -> str:
    from ...train.metrics import _snake as snake
    return snake(name)


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum, in Keras's form:
    ``m = momentum * m - lr * g; w += m`` (Nesterov: ``w += momentum * m - lr * g``)."""

    _rule = staticmethod(_sgd)

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 name: str | None = None, **kwargs) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name or "SGD", **kwargs)
        if not isinstance(momentum, (int, float)) or momentum < 0 or momentum > 1:
            raise ValueError("`momentum` must be a float between [0, 1].")
        self.momentum, self.nesterov = float(momentum), nesterov

    def _hyper(self) -> dict:
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def _slots(self, p) -> dict:
        return {"momentum": np.zeros_like(p._data)} if self.momentum else {}

    def get_config(self) -> dict:
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam as Keras computes it:
    ``w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)``."""

    _rule = staticmethod(_adam)

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False,
                 weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 name: str | None = None, **kwargs) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name or "adam", **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def _hyper(self) -> dict:
        return {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": self.amsgrad}

    def _slots(self, p) -> dict:
        s = {"momentum": np.zeros_like(p._data), "velocity": np.zeros_like(p._data)}
        if self.amsgrad:
            s["velocity_hat"] = np.zeros_like(p._data)
        return s

    def get_config(self) -> dict:
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (``w -= w * weight_decay * lr`` before each update);
    Keras's default ``weight_decay=0.004``."""

    def __init__(self, learning_rate=0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None,
                 **kwargs) -> None:
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: "
                             "weight_decay=None")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, amsgrad, weight_decay,
                         clipnorm, clipvalue, global_clipnorm, name or "adamw", **kwargs)


class RMSprop(Optimizer):
    """RMSprop as Keras computes it: ``v = rho v + (1-rho) g^2``,
    ``w -= lr g / sqrt(v + epsilon)`` (centered: ``sqrt(v - mean(g)^2 + epsilon)``),
    optionally with momentum."""

    _rule = staticmethod(_rmsprop)

    def __init__(self, learning_rate=0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False,
                 weight_decay: float | None = None, clipnorm: float | None = None,
                 clipvalue: float | None = None, global_clipnorm: float | None = None,
                 name: str | None = None, **kwargs) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name or "rmsprop", **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def _hyper(self) -> dict:
        return {"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}

    def _slots(self, p) -> dict:
        s = {"velocity": np.zeros_like(p._data)}
        if self.centered:
            s["average_gradient"] = np.zeros_like(p._data)
        if self.momentum > 0:
            s["momentum"] = np.zeros_like(p._data)
        return s

    def get_config(self) -> dict:
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad as Keras computes it: ``a += g^2; w -= lr g / sqrt(a + epsilon)``, the
    accumulator starting at ``initial_accumulator_value``."""

    _rule = staticmethod(_adagrad)

    def __init__(self, learning_rate=0.001, initial_accumulator_value: float = 0.1,
                 epsilon: float = 1e-7, weight_decay: float | None = None,
                 clipnorm: float | None = None, clipvalue: float | None = None,
                 global_clipnorm: float | None = None, name: str | None = None,
                 **kwargs) -> None:
        super().__init__(learning_rate, weight_decay, clipnorm, clipvalue, global_clipnorm,
                         name or "adagrad", **kwargs)
        self.initial_accumulator_value, self.epsilon = initial_accumulator_value, epsilon

    def _hyper(self) -> dict:
        return {"epsilon": self.epsilon}

    def _slots(self, p) -> dict:
        return {"accumulator": np.full_like(p._data, self.initial_accumulator_value)}

    def get_config(self) -> dict:
        return {**super().get_config(),
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


# ----- lookup ------------------------------------------------------------------------------------

_CLASSES = {c.__name__: c for c in (SGD, Adam, AdamW, RMSprop, Adagrad)}
_BY_NAME = {**_CLASSES, **{k.lower(): c for k, c in _CLASSES.items()}}


def serialize(optimizer: Optimizer) -> dict:
    """``{"class_name", "config"}`` of an optimiser."""
    return {"class_name": type(optimizer).__name__, "config": optimizer.get_config()}


def deserialize(config: dict, custom_objects: dict | None = None) -> Optimizer:
    """The optimiser a :func:`serialize` result describes."""
    table = {**_BY_NAME, **(custom_objects or {})}
    name = config.get("class_name", "")
    cls = table.get(name) or table.get(str(name).lower())
    if cls is None:
        raise ValueError(f"Could not interpret optimizer identifier: {config!r} (known: "
                         f"{', '.join(sorted(_CLASSES))})")
    return cls.from_config(dict(config.get("config") or {}), custom_objects)


def get(identifier: Any) -> Optimizer:
    """An optimiser from a name ("adam", "SGD", "rmsprop"...: Keras's defaults), a config
    dict, or an optimiser (returned as is; ``ember.optim`` optimisers are accepted too)."""
    if isinstance(identifier, _TorchOptimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _BY_NAME.get(identifier.lower())
        if cls is not None:
            return cls()
    if inspect.isclass(identifier) and issubclass(identifier, Optimizer):
        return identifier()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r} (known "
                     f"names: {', '.join(sorted(k for k in _BY_NAME if k.islower()))})")
