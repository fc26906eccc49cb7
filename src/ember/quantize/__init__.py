"""``ember.quantize``: post-training int8 quantisation (PyTorch's eager-mode workflow).

Dynamic (weights int8 ahead of time, activations quantised per batch at run time)::

    q = ember.quantize.dynamic(model)                   # Linear, Conv2d, LSTM, GRU
    ember.save(q.state_dict(), "q.safetensors")        # int8 weights + float32 scales

Static (activation ranges calibrated on sample data)::

    q = ember.quantize.static(model, calibration_loader)
    # or step by step, as PyTorch's prepare/convert:
    p = ember.quantize.prepare(model); [p(x) for x, _ in loader]; q = ember.quantize.convert(p)

To reload a saved quantised model, quantise a freshly built float model the same way (for
static quantisation ``convert`` needs no calibration then: ``prepare`` +
``convert(p, calibrated=False)``) and ``load_state_dict`` the file into it.

Conventions (ONNX Runtime's, so that an exported model computes what ember computes): weights
int8 symmetric per output channel; activations uint8 asymmetric per tensor — dynamic ones with
ONNX DynamicQuantizeLinear's formula, static ones from an observer (see
:mod:`ember.quantize.observers`). Static layers take and return float32 tensors holding values
of the calibrated uint8 grids (a QuantizeLinear/DequantizeLinear pair at each quantised
layer's input and output: the QDQ form ONNX Runtime fuses into int8 kernels), so unquantised
layers in between (ReLU, pooling, flatten, ...) run unchanged. A Linear/Conv followed by a
ReLU inside an ``nn.Sequential`` is fused: the ReLU happens before the output is rounded.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable

from .. import nn
from ..nn.modules.module import Module
from .conv import (DynamicQuantizedConv1d, DynamicQuantizedConv2d, QuantizedConv1d,
                   QuantizedConv2d)
from .linear import DynamicQuantizedLinear, QuantizedLinear
from .observers import (HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
                        ObserverBase, PercentileObserver, PerChannelMinMaxObserver,
                        quantize_weight)
from .rnn import DynamicQuantizedGRU, DynamicQuantizedLSTM

try:  # the ONNX export rules of the int8 ops (the exporter imports onnx only when it runs)
    from ..onnx.export_ops import quantized as _export_rules  # noqa: F401
except ImportError:  # pragma: no cover - ember.onnx incomplete: quantised export unavailable
    pass

__all__ = ["dynamic", "quantize_dynamic", "prepare", "convert", "static", "quantize_weight",
           "DynamicQuantizedLinear", "DynamicQuantizedConv1d", "DynamicQuantizedConv2d",
           "DynamicQuantizedLSTM", "DynamicQuantizedGRU", "QuantizedLinear",
           "QuantizedConv1d", "QuantizedConv2d", "ObserverBase", "MinMaxObserver",
           "MovingAverageMinMaxObserver", "HistogramObserver", "PercentileObserver",
           "PerChannelMinMaxObserver"]

DYNAMIC_MAPPING = {nn.Linear: DynamicQuantizedLinear, nn.Conv1d: DynamicQuantizedConv1d,
                   nn.Conv2d: DynamicQuantizedConv2d, nn.LSTM: DynamicQuantizedLSTM,
                   nn.GRU: DynamicQuantizedGRU}
STATIC_MAPPING = {nn.Linear: QuantizedLinear, nn.Conv1d: QuantizedConv1d,
                  nn.Conv2d: QuantizedConv2d}
_OBSERVERS = {"minmax": MinMaxObserver, "moving_average": MovingAverageMinMaxObserver,
              "histogram": HistogramObserver, "percentile": PercentileObserver}


def _check_dtype(fn: str, dtype) -> None:
    name = getattr(dtype, "name", dtype)
    if name not in ("int8", "qint8", "quint8"):
        raise ValueError(f"ember.quantize.{fn}: only int8 quantisation is supported, got "
                         f"dtype={dtype!r}")


def _targets(fn: str, modules, mapping: dict) -> tuple:
    modules = tuple(modules) if isinstance(modules, Iterable) else (modules,)
    bad = [m for m in modules if m not in mapping]
    if bad:
        names = ", ".join(getattr(m, "__name__", repr(m)) for m in bad)
        ok = ", ".join(f"nn.{m.__name__}" for m in mapping)
        raise TypeError(f"ember.quantize.{fn}: can't quantise {names}; supported layer types: "
                        f"{ok}")
    return modules


def _replace(model: Module, fn) -> Module:
    """Swap every module for which ``fn(name, module)`` returns a replacement; returns the new
    root (the model itself may be replaced)."""
    root = fn("", model)
    if root is not None:
        return root
    for prefix, parent in list(model.named_modules()):
        for name, child in list(parent._modules.items()):
            if child is None:
                continue
            new = fn(f"{prefix}.{name}" if prefix else name, child)
            if new is not None:
                parent._modules[name] = new
    return model


def dynamic(model: Module, dtype="int8",
            modules=(nn.Linear, nn.Conv2d, nn.LSTM, nn.GRU), inplace: bool = False) -> Module:
    """Post-training dynamic int8 quantisation: every layer whose type is in ``modules``
    (exact type, as PyTorch's ``quantize_dynamic``; nn.Linear, nn.Conv1d, nn.Conv2d, nn.LSTM,
    nn.GRU) gets int8 per-channel weights; Linear/Conv inputs are quantised to uint8 per batch
    at run time, LSTM/GRU run float math on dequantised weights. Returns the quantised model
    (a copy unless ``inplace``)."""
    _check_dtype("dynamic", dtype)
    if not isinstance(model, Module):
        raise TypeError(f"ember.quantize.dynamic: expected an nn.Module, got "
                        f"{type(model).__name__}")
    kinds = _targets("dynamic", modules, DYNAMIC_MAPPING)
    if not inplace:
        model = copy.deepcopy(model)

    done = []

    def swap(name, m):
        if type(m) in kinds:
            done.append(name)
            return DYNAMIC_MAPPING[type(m)].from_float(m)
        return None
    model = _replace(model, swap)
    if not done:
        _warn_nothing("dynamic", model, kinds)
    return model


def _warn_nothing(fn: str, model: Module, kinds: tuple) -> None:
    """Say so when a model has none of the layers quantised (a Keras model's Dense and
    Conv2D are not nn.Linear / nn.Conv2d)."""
    import warnings
    wanted = ", ".join(f"nn.{k.__name__}" for k in kinds)
    warnings.warn(f"ember.quantize.{fn}: {type(model).__name__} has no layer of the types "
                  f"quantised ({wanted}; exact types), so nothing was quantised. For an "
                  f"ember.keras model, export it to ONNX and quantise the file: "
                  f"ember quantize model.keras -o model_int8.onnx", stacklevel=3)


quantize_dynamic = dynamic


class _Calibration:
    """What ``prepare`` attaches to one layer: its input/output observers and hooks."""

    def __init__(self, observer, relu_parent=None, relu_name=None):
        self.input = observer()
        self.output = observer()
        self.relu_parent, self.relu_name = relu_parent, relu_name
        self.handles = []

    def see_input(self, module, args) -> None:
        self.input(args[0])

    def see_output(self, module, args, out) -> None:
        self.output(out)


def _make_observer(fn: str, observer):
    if isinstance(observer, str):
        if observer not in _OBSERVERS:
            raise ValueError(f"ember.quantize.{fn}: unknown observer {observer!r}; choose from "
                             f"{sorted(_OBSERVERS)} or pass an ObserverBase subclass")
        return _OBSERVERS[observer]
    if not (isinstance(observer, type) and issubclass(observer, ObserverBase)) and \
            not callable(observer):
        raise TypeError(f"ember.quantize.{fn}: observer must be a name, an ObserverBase "
                        f"subclass or a factory, got {observer!r}")
    return observer


def prepare(model: Module, observer="minmax",
            modules=(nn.Linear, nn.Conv1d, nn.Conv2d), fuse_relu: bool = True,
            inplace: bool = False) -> Module:
    """Attach observers to the input and output of every layer whose type is in ``modules``
    (``observer``: "minmax", "moving_average", "histogram", "percentile" or an
    :class:`ObserverBase` subclass). Run calibration data through the returned model (in
    eval mode), then :func:`convert` it."""
    factory = _make_observer("prepare", observer)
    kinds = _targets("prepare", modules, STATIC_MAPPING)
    if not isinstance(model, Module):
        raise TypeError(f"ember.quantize.prepare: expected an nn.Module, got "
                        f"{type(model).__name__}")
    if not inplace:
        model = copy.deepcopy(model)
    fused = {}
    if fuse_relu:
        for _, parent in model.named_modules():
            if isinstance(parent, nn.Sequential):
                items = [(n, m) for n, m in parent._modules.items() if m is not None]
                for (_, a), (bn, b) in zip(items, items[1:]):
                    if type(a) in kinds and type(b) is nn.ReLU:
                        fused[id(a)] = (parent, bn, b)
    for name, m in model.named_modules():
        if type(m) not in kinds:
            continue
        parent, relu_name, relu = fused.get(id(m), (None, None, None))
        cal = _Calibration(factory, parent, relu_name)
        cal.handles.append(m.register_forward_pre_hook(cal.see_input))
        out_of = relu if relu is not None else m
        cal.handles.append(out_of.register_forward_hook(cal.see_output))
        m.__dict__["_ember_calibration"] = cal
    if not any("_ember_calibration" in m.__dict__ for m in model.modules()):
        _warn_nothing("prepare", model, kinds)
    return model


def convert(model: Module, inplace: bool = False, calibrated: bool = True) -> Module:
    """Replace each layer prepared by :func:`prepare` by its static int8 version, using what
    its observers saw. ``calibrated=False`` builds the quantised structure with placeholder
    parameters (to ``load_state_dict`` a saved quantised model into)."""
    if not inplace:
        model = copy.deepcopy(model)
    found = []

    def swap(name, m):
        cal = m.__dict__.get("_ember_calibration")
        if cal is None:
            return None
        found.append(name)
        for h in cal.handles:
            h.remove()
        del m.__dict__["_ember_calibration"]
        relu = cal.relu_parent is not None
        if calibrated:
            for what, obs in (("input", cal.input), ("output", cal.output)):
                if not obs.observed:
                    raise RuntimeError(f"ember.quantize.convert: layer '{name or 'model'}' "
                                       f"({type(m).__name__}) saw no calibration data at its "
                                       f"{what}; run sample batches through the prepared "
                                       f"model first")
            qin, qout = cal.input.calculate_qparams(), cal.output.calculate_qparams()
            q = STATIC_MAPPING[type(m)].from_float(m, qin, qout, relu=relu)
        else:
            q = STATIC_MAPPING[type(m)].from_float(m, (1.0, 0), (1.0, 0), relu=relu)
        if relu:
            cal.relu_parent._modules[cal.relu_name] = nn.Identity()
        return q
    model = _replace(model, swap)
    if not found:
        raise ValueError("ember.quantize.convert: the model has no layers prepared for "
                         "quantisation; call ember.quantize.prepare(model) first")
    return model


def static(model: Module, calibration_loader, observer="minmax",
           modules=(nn.Linear, nn.Conv1d, nn.Conv2d), fuse_relu: bool = True,
           num_batches: int | None = None, inplace: bool = False) -> Module:
    """Post-training static int8 quantisation: :func:`prepare`, run ``calibration_loader``
    (an iterable of input tensors or of ``(input, target, ...)`` batches; at most
    ``num_batches`` of them) through the model in eval mode without gradients, then
    :func:`convert`."""
    from ..autograd.grad_mode import no_grad
    prepared = prepare(model, observer, modules, fuse_relu, inplace)
    was_training = prepared.training
    prepared.eval()
    n = 0
    with no_grad():
        for batch in calibration_loader:
            if num_batches is not None and n >= num_batches:
                break
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            prepared(x)
            n += 1
    if n == 0:
        raise ValueError("ember.quantize.static: the calibration loader gave no batches")
    q = convert(prepared, inplace=True)
    return q.train(was_training)
