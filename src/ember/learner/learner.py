"""``Learner``: fastai's training face, a thin layer over ember's one training engine.

    from ember.learner import Learner, DataLoaders, accuracy
    dls = DataLoaders.from_arrays(x, y, valid_pct=0.2, bs=64)
    learn = Learner(dls, model, metrics=accuracy)
    learn.lr_find()
    learn.fit_one_cycle(5, lr_max=3e-3)
    learn.validate()               # [valid_loss, accuracy]
    preds, targs = learn.get_preds()

``Learner`` *is* an :class:`ember.train.Engine`: the epoch/batch loop, the events, the Cancel
exceptions, the compiled train step and the progress bar are the engine's. What the Learner
adds is fastai's API over it: optimiser creation from a ``splitter``'s parameter groups
(with weight decay off for biases and norm layers), hyper-parameters by fastai's names
(``lr``, ``mom``, ``wd``...), scheduled fits (``fit_one_cycle``, ``fit_flat_cos``,
``fit_sgdr``, ``fine_tune``), ``lr_find``, freezing, prediction helpers and checkpoints.
Every feature is a callback: :class:`TrainEvalCallback`, :class:`Recorder`,
:class:`ProgressCallback`, :class:`ParamScheduler`, :class:`LRFinder`.
"""
from __future__ import annotations

import collections
import contextlib
import math
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..dtypes import get_default_dtype
from ..nn.modules.normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d,
                                        InstanceNorm2d, InstanceNorm3d, LayerNorm)
from ..ops.random import randperm
from ..serialization import load as _load
from ..serialization import save as _save
from ..tensor import Tensor
from ..train.events import Callback
from ..train.loop import Engine
from ..train.metrics import to_numpy
from ..utils.data import default_collate
from .callbacks import ProgressCallback, TrainEvalCallback, print_table_row
from .losses import loss_activation, loss_decodes
from .lr_find import LRFinder, valley
from .metrics import _item, mk_metric
from .optimizers import Adam
from .recorder import Recorder
from .schedule import ParamScheduler, SchedCos, combine_scheds, combined_cos

__all__ = ["Learner", "trainable_params", "params", "default_split", "norm_bias_params",
           "even_mults"]

norm_types = (BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d,
              InstanceNorm3d, LayerNorm)

# fastai's hyper-parameter names -> how each optimiser's param group stores them
_HYPER_KEYS = {"lr": "lr", "wd": "weight_decay", "eps": "eps"}


# ----- splitters -------------------------------------------------------------------------------

def params(m) -> list:
    """All the parameters of module ``m``."""
    return list(m.parameters())


def trainable_params(m) -> list:
    """The parameters of ``m`` that require gradients: the default splitter (one group)."""
    return [p for p in m.parameters() if p.requires_grad]


def default_split(m) -> list:
    """Two groups for a ``Sequential(body, head...)``: ``m[0]`` and the rest (fastai's split of
    a vision model into the pretrained body and the new head)."""
    try:
        body, head = m[0], m[1:]
    except (TypeError, IndexError):
        raise TypeError(f"default_split: expected an indexable model like nn.Sequential(body, "
                        f"head), got {type(m).__name__}") from None
    return [params(body), params(head)]


def norm_bias_params(m, with_bias: bool = True) -> list:
    """The parameters of every norm layer in ``m``, and every layer's bias if ``with_bias``."""
    if isinstance(m, norm_types):
        return list(m.parameters())
    res = []
    for c in m.children():
        res += norm_bias_params(c, with_bias)
    bias = getattr(m, "bias", None) if with_bias else None
    if isinstance(bias, Tensor) and any(bias is p for p in m.parameters(recurse=False)):
        res.append(bias)
    return res


def even_mults(start: float, stop: float, n: int) -> np.ndarray:
    """``n`` values from ``start`` to ``stop``, evenly spaced on a log scale."""
    if n == 1:
        return np.array([stop], dtype=float)
    step = (stop / start) ** (1 / (n - 1))
    return np.array([start * step ** i for i in range(n)])


def _noop(*args, **kwargs) -> None:
    return None


class _Gather(Callback):
    """Collects inputs, raw predictions, targets (and per-item losses) of every batch."""

    order = 55
    run_train = False

    def __init__(self, with_input: bool, with_loss: bool) -> None:
        self.with_input, self.with_loss = with_input, with_loss
        self.inputs, self.preds, self.targs, self.losses = [], [], [], []

    def after_batch(self) -> None:
        learn = self.learn
        if learn.pred is None:
            return
        self.preds.append(_to_np(learn.pred))
        if learn.yb:
            self.targs.append(_to_np(learn.yb[0] if len(learn.yb) == 1 else learn.yb))
        if self.with_input:
            self.inputs.append(_to_np(learn.xb[0] if len(learn.xb) == 1 else learn.xb))
        if self.with_loss and learn.yb:
            self.losses.append(_to_np(learn._item_losses(learn.pred, learn.yb)))


def _to_np(x):
    if isinstance(x, (tuple, list)):
        return type(x)(_to_np(o) for o in x)
    return np.array(to_numpy(x))


def _cat(parts: list):
    """Batches (arrays, or tuples of arrays) joined on axis 0, as Tensors."""
    if not parts:
        return None
    if isinstance(parts[0], (tuple, list)):
        return tuple(_cat([p[i] for p in parts]) for i in range(len(parts[0])))
    return Tensor._wrap(np.concatenate([np.atleast_1d(p) for p in parts], axis=0))


class Learner(Engine):
    """Group together a model, some ``dls`` and a ``loss_func`` to handle training.

    Args:
        dls: :class:`~ember.learner.DataLoaders` (``dls.train``, ``dls.valid``).
        model: an ``nn.Module``.
        loss_func: ``loss_func(pred, *yb)``; default: the one ``dls`` provides (cross-entropy
            for integer class targets, MSE for floats, with ``DataLoaders.from_arrays``).
        opt_func: ``opt_func(param_groups, lr=lr)`` -> optimiser; default fastai's Adam
            (betas (0.9, 0.99), eps 1e-5, decoupled weight decay 0.01).
        lr: default learning rate.
        splitter: ``splitter(model)`` -> list of parameter lists (groups for discriminative
            learning rates and freezing); default one group of the trainable parameters.
        cbs, metrics: extra callbacks; metrics (functions ``f(pred, targ)`` or Metrics).
        path, model_dir: checkpoints go to ``path/model_dir/<name>.safetensors``.
        wd: weight decay set at every fit (None: keep the optimiser's).
        wd_bn_bias: also decay biases and norm-layer parameters.
        train_bn: norm layers stay trainable when their group is frozen.
        moms: the momentum cycle of ``fit_one_cycle``.
        default_cbs: attach the progress bar (TrainEvalCallback and Recorder, which hold
            the loop's counters and records, are always attached).
        jit_compile: the engine's compiled train step (True, False or "auto").
    """

    def __init__(self, dls, model, loss_func: Callable | None = None,
                 opt_func: Callable = Adam, lr: float = 1e-3,
                 splitter: Callable = trainable_params, cbs: Iterable | Callback | None = None,
                 metrics=None, path: str | Path | None = None, model_dir: str = "models",
                 wd: float | None = None, wd_bn_bias: bool = False, train_bn: bool = True,
                 moms: Sequence[float] = (0.95, 0.85, 0.95), default_cbs: bool = True,
                 jit_compile: bool | str = "auto") -> None:
        if not hasattr(dls, "train"):
            raise TypeError(f"Learner: dls must be DataLoaders (with .train and .valid), got "
                            f"{type(dls).__name__}; build one with DataLoaders.from_arrays / "
                            f"from_dsets or DataLoaders(train_loader, valid_loader)")
        if not hasattr(model, "parameters") or not callable(model):
            raise TypeError(f"Learner: model must be an nn.Module, got {type(model).__name__}")
        if loss_func is None:
            loss_func = getattr(dls, "loss_func", None) or \
                getattr(getattr(dls, "train_ds", None), "loss_func", None)
            if loss_func is None:
                raise ValueError("Learner: could not infer a loss function from the data; "
                                 "pass loss_func= (e.g. ember.nn.functional.cross_entropy)")
        self._metrics: list = []
        self.logger: Callable = self._print_row
        super().__init__(model, loss_func, None, dls.train, getattr(dls, "valid", None),
                         n_inp=getattr(dls, "n_inp", 1), jit_compile=jit_compile)
        self.dls = dls
        self.opt_func, self.lr, self.splitter = opt_func, lr, splitter
        self.path = Path(path) if path is not None else Path(getattr(dls, "path", "."))
        self.model_dir = model_dir
        self.wd, self.wd_bn_bias, self.train_bn = wd, wd_bn_bias, train_bn
        self.moms = tuple(moms)
        self.metrics = metrics
        self.train_iter, self.pct_train, self.smooth_loss = 0, 0.0, math.nan
        self.final_record = None
        self._opt_split: list[int] = []
        self._opt_nowd: list[bool] = []
        self._mom_keys: list = []
        self.remove_cb(self.recorder)  # the engine's; fastai's Recorder below extends it
        # the loop state (train_iter, pct_train, losses, history) needs these two always
        self.add_cbs([TrainEvalCallback(), Recorder()])
        if default_cbs:
            self.add_cb(ProgressCallback())
        if isinstance(cbs, (Callback, type)):
            cbs = [cbs]
        self.add_cbs(cbs or [])

    # ----- properties -------------------------------------------------------------------------
    @property
    def learn(self) -> "Learner":
        """The learner itself (callbacks reach it as ``self.learn``, as in fastai)."""
        return self

    @property
    def metrics(self) -> list:
        return self._metrics

    @metrics.setter
    def metrics(self, value) -> None:
        if value is None:
            value = []
        elif not isinstance(value, (list, tuple)):
            value = [value]
        self._metrics = [mk_metric(m) for m in value]

    # ----- callbacks --------------------------------------------------------------------------
    def add_cb(self, cb) -> "Learner":
        """Attach a callback; it is also reachable as ``learn.<cb.name>``."""
        if isinstance(cb, type):
            cb = cb()
        super().add_cb(cb)
        name = cb.name
        current = self.__dict__.get(name)
        # never shadow the Learner's own API or state (a callback named "hypers", "model")
        if not hasattr(type(self), name) and (current is None or isinstance(current, Callback)):
            setattr(self, name, cb)
        return self

    def remove_cb(self, cb) -> "Learner":
        """Detach a callback, or every callback of a class."""
        if isinstance(cb, type):
            for c in [c for c in self.cbs if isinstance(c, cb)]:
                self.remove_cb(c)
            return self
        super().remove_cb(cb)
        if self.__dict__.get(cb.name) is cb:
            setattr(self, cb.name, None)
        return self

    def remove_cbs(self, cbs: Iterable) -> "Learner":
        for cb in list(cbs):
            self.remove_cb(cb)
        return self

    @contextlib.contextmanager
    def removed_cbs(self, cbs: Iterable):
        """Detach ``cbs`` for the duration of a ``with`` block."""
        cbs = [c for c in cbs if c in self.cbs]
        self.remove_cbs(cbs)
        try:
            yield self
        finally:
            self.add_cbs(cbs)

    @contextlib.contextmanager
    def no_logging(self):
        """Don't print the results table inside this block."""
        logger, self.logger = self.logger, _noop
        try:
            yield self
        finally:
            self.logger = logger

    @contextlib.contextmanager
    def no_bar(self):
        """Don't show progress bars inside this block."""
        with self.removed_cbs([c for c in self.cbs if isinstance(c, ProgressCallback)]):
            yield self

    def _print_row(self, log: list) -> None:
        rec = self.recorder
        names = rec.metric_names if rec is not None else []
        print_table_row(log, names, header=bool(rec is not None and len(rec.values) == 1))

    # ----- optimiser and hyper-parameters -----------------------------------------------------
    def _split_groups(self) -> list:
        groups = self.splitter(self.model)
        groups = list(groups)
        if groups and isinstance(groups[0], Tensor):
            groups = [groups]
        groups = [list(g) for g in groups]
        if not any(groups):
            raise ValueError(f"Learner: the splitter {getattr(self.splitter, '__name__', '')} "
                             f"gave no parameters for {type(self.model).__name__} (is the "
                             f"whole model frozen, or does it have no parameters yet?)")
        return groups

    def create_opt(self) -> None:
        """Build ``self.opt`` from ``opt_func`` over the splitter's groups; biases and norm
        parameters go to companion groups without weight decay unless ``wd_bn_bias``."""
        nowd = set() if self.wd_bn_bias else \
            {id(p) for p in norm_bias_params(self.model, True)}
        if isinstance(self.opt_func, partial) and "lr" in self.opt_func.keywords:
            self.lr = self.opt_func.keywords["lr"]
        groups, split, flags = [], [], []
        for i, ps in enumerate(self._split_groups()):
            decay = [p for p in ps if id(p) not in nowd]
            no_decay = [p for p in ps if id(p) in nowd]
            if decay:
                groups.append({"params": decay})
                split.append(i)
                flags.append(False)
            if no_decay:
                groups.append({"params": no_decay, "weight_decay": 0.0})
                split.append(i)
                flags.append(True)
        self.opt = self.opt_func(groups, lr=self.lr)
        if len(self.opt.param_groups) != len(groups):
            raise ValueError(f"Learner: opt_func made {len(self.opt.param_groups)} parameter "
                             f"groups from the {len(groups)} it was given")
        self._opt_split, self._opt_nowd = split, flags
        self._last_group = split.index(split[-1])  # the last split's (decayed) group
        self._mom_keys = []
        for g in self.opt.param_groups:
            if "betas" in g:
                self._mom_keys.append("betas")
            elif g.get("momentum", 0):
                self._mom_keys.append("momentum")  # fastai's SGD ignores mom without momentum
            else:
                self._mom_keys.append(None)
        if self.train_bn:
            self._force_train = {id(p) for p in norm_bias_params(self.model, False)}
        else:
            self._force_train = set()

    @property
    def n_groups(self) -> int:
        """How many parameter groups the splitter made."""
        return max(self._opt_split) + 1 if self._opt_split else len(self._split_groups())

    def _per_group(self, name: str, value) -> list:
        n = self.n_groups
        if isinstance(value, slice):
            if name != "lr":
                raise ValueError(f"Learner.set_hyper: a slice only makes sense for lr, got "
                                 f"{name}={value}")
            if value.start:
                value = even_mults(value.start, value.stop, n)
            else:
                value = [value.stop / 10] * (n - 1) + [value.stop]
        if isinstance(value, (int, float)):  # the per-batch path of the schedules
            return [float(value)] * n
        vals = np.atleast_1d(np.asarray(value, dtype=float)).tolist()
        if len(vals) == 1:
            vals = vals * n
        if len(vals) != n:
            raise ValueError(f"Learner.set_hyper: trying to set {len(vals)} values for {name} "
                             f"but there are {n} parameter groups")
        return vals

    def set_hyper(self, name: str, value) -> None:
        """Set hyper-parameter ``name`` (fastai's names: lr, mom, sqr_mom, wd, eps) to one
        value, one value per parameter group, or (lr) a slice spread over the groups."""
        if self.opt is None:
            self.create_opt()
        vals = self._per_group(name, value)
        for j, g in enumerate(self.opt.param_groups):
            v = vals[self._opt_split[j]]
            if name == "mom":
                key = self._mom_keys[j]
                if key == "betas":
                    g["betas"] = (v, g["betas"][1])
                elif key == "momentum":
                    g["momentum"] = v
            elif name == "sqr_mom":
                if "betas" in g:
                    g["betas"] = (g["betas"][0], v)
                elif "alpha" in g:
                    g["alpha"] = v
            elif name == "wd":
                if not self._opt_nowd[j]:
                    g["weight_decay"] = v
            else:
                key = _HYPER_KEYS.get(name, name)
                if key not in g:
                    raise KeyError(f"Learner.set_hyper: {type(self.opt).__name__} has no "
                                   f"hyper-parameter {name!r} (its groups hold "
                                   f"{sorted(k for k in g if k != 'params')})")
                g[key] = v

    def set_hypers(self, **kwargs) -> None:
        for k, v in kwargs.items():
            self.set_hyper(k, v)

    def _group_lrs(self):
        """The lr of each group: a float for one group (schedules then run on floats, fast),
        an array for several."""
        lrs = [h["lr"] for h in self.hypers]
        return lrs[0] if len(lrs) == 1 else np.array(lrs)

    def _last_hyper(self, name: str):
        """``hypers[-1][name]`` without building them all (read after every batch)."""
        j = self._last_group
        g = self.opt.param_groups[j]
        if name == "lr":
            return float(g["lr"])
        if name == "mom":
            key = self._mom_keys[j]
            return None if key is None else float(g["betas"][0] if key == "betas"
                                                  else g["momentum"])
        return self.hypers[-1][name]

    @property
    def hypers(self) -> list:
        """Per parameter group, ``{"lr", "mom", "sqr_mom", "wd", "eps"}`` by fastai's names."""
        if self.opt is None:
            return []
        out: list = [None] * self.n_groups
        for j, g in enumerate(self.opt.param_groups):
            i = self._opt_split[j]
            if out[i] is not None and self._opt_nowd[j]:
                continue  # report the decayed group's wd when a split has both
            key = self._mom_keys[j]
            betas = g.get("betas")
            out[i] = {"lr": float(g["lr"]),
                      "mom": float(betas[0]) if key == "betas" else
                      (float(g["momentum"]) if key == "momentum" else None),
                      "sqr_mom": float(betas[1]) if betas is not None else g.get("alpha"),
                      "wd": g.get("weight_decay"), "eps": g.get("eps")}
        return out

    # ----- freezing ---------------------------------------------------------------------------
    def freeze_to(self, n: int) -> None:
        """Freeze the parameter groups before group ``n`` (negative: from the end); norm
        layers stay trainable with ``train_bn``. Clears the optimiser state."""
        if self.opt is None:
            self.create_opt()
        n_groups = self.n_groups
        frozen_idx = n if n >= 0 else n_groups + n
        if frozen_idx >= n_groups:
            warnings.warn(f"Freezing {frozen_idx} groups; model has {n_groups}; whole model is "
                          f"frozen.", stacklevel=2)
        for j, g in enumerate(self.opt.param_groups):
            train = self._opt_split[j] >= frozen_idx
            for p in g["params"]:
                p.requires_grad = train or id(p) in self._force_train
                if not p.requires_grad:
                    p.grad = None
        self.opt.state.clear()

    def freeze(self) -> None:
        """Freeze every parameter group but the last."""
        if self.n_groups < 2:
            warnings.warn("Learner.freeze: the splitter made a single parameter group, so "
                          "nothing is frozen; pass splitter=default_split (or your own) to "
                          "split the model into groups", stacklevel=2)
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Make every parameter trainable again."""
        self.freeze_to(0)

    # ----- fitting ----------------------------------------------------------------------------
    def fit(self, n_epoch: int, lr=None, wd: float | None = None, cbs=None,
            reset_opt: bool = False, start_epoch: int = 0) -> None:
        """Train for ``n_epoch`` epochs at ``lr`` (default ``self.lr``; a slice or a list sets
        one lr per parameter group)."""
        if not isinstance(n_epoch, int) or n_epoch < 0:
            raise ValueError(f"Learner.fit: n_epoch must be a non-negative int, got {n_epoch!r}")
        try:
            n_batches = len(self.dls.train)
        except TypeError:
            n_batches = None
        if n_batches == 0:
            raise ValueError(f"Learner.fit: the training loader yields no batch (dataset of "
                             f"{len(self.dls.train_ds)} items, bs={self.dls.bs}, drop_last "
                             f"on): use a smaller bs")
        if isinstance(cbs, (Callback, type)):
            cbs = [cbs]
        self.train_data, self.valid_data = self.dls.train, getattr(self.dls, "valid", None)
        if reset_opt or self.opt is None:
            self.create_opt()
        if wd is None:
            wd = self.wd
        if wd is not None:
            self.set_hyper("wd", wd)
        self.set_hyper("lr", self.lr if lr is None else lr)
        super().fit(n_epoch, cbs=cbs, start_epoch=start_epoch)

    def fit_one_cycle(self, n_epoch: int, lr_max=None, div: float = 25., div_final: float = 1e5,
                      pct_start: float = 0.25, wd: float | None = None,
                      moms: Sequence[float] | None = None, cbs=None, reset_opt: bool = False,
                      start_epoch: int = 0) -> None:
        """Fit with the 1cycle policy: lr from ``lr_max/div`` up to ``lr_max`` (cosine, over
        ``pct_start`` of the batches) then down to ``lr_max/div_final``; momentum the other
        way round through ``moms``."""
        if self.opt is None:
            self.create_opt()
        self.set_hyper("lr", self.lr if lr_max is None else lr_max)
        lr_max = self._group_lrs()
        moms = self.moms if moms is None else moms
        scheds = {"lr": combined_cos(pct_start, lr_max / div, lr_max, lr_max / div_final),
                  "mom": combined_cos(pct_start, *moms)}
        self.fit(n_epoch, cbs=[ParamScheduler(scheds), *_listify(cbs)], reset_opt=reset_opt,
                 wd=wd, start_epoch=start_epoch)

    def fit_flat_cos(self, n_epoch: int, lr=None, div_final: float = 1e5,
                     pct_start: float = 0.75, wd: float | None = None, cbs=None,
                     reset_opt: bool = False, start_epoch: int = 0) -> None:
        """Fit at a flat ``lr`` for ``pct_start`` of the batches, then cosine-anneal to
        ``lr/div_final``."""
        if self.opt is None:
            self.create_opt()
        self.set_hyper("lr", self.lr if lr is None else lr)
        lr = self._group_lrs()
        scheds = {"lr": combined_cos(pct_start, lr, lr, lr / div_final)}
        self.fit(n_epoch, cbs=[ParamScheduler(scheds), *_listify(cbs)], reset_opt=reset_opt,
                 wd=wd, start_epoch=start_epoch)

    def fit_sgdr(self, n_cycles: int, cycle_len: int, lr_max=None, cycle_mult: int = 2,
                 cbs=None, reset_opt: bool = False, wd: float | None = None,
                 start_epoch: int = 0) -> None:
        """SGD with warm restarts: ``n_cycles`` cosine cycles from ``lr_max`` to 0, the first
        ``cycle_len`` epochs long, each next one ``cycle_mult`` times longer."""
        if self.opt is None:
            self.create_opt()
        self.set_hyper("lr", self.lr if lr_max is None else lr_max)
        lr_max = self._group_lrs()
        n_epoch = cycle_len * (cycle_mult ** n_cycles - 1) // (cycle_mult - 1) \
            if cycle_mult != 1 else cycle_len * n_cycles
        pcts = [cycle_len * cycle_mult ** i / n_epoch for i in range(n_cycles)]
        scheds = {"lr": combine_scheds(pcts, [SchedCos(lr_max, 0) for _ in range(n_cycles)])}
        self.fit(n_epoch, cbs=[ParamScheduler(scheds), *_listify(cbs)], reset_opt=reset_opt,
                 wd=wd, start_epoch=start_epoch)

    def fine_tune(self, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1,
                  lr_mult: float = 100, pct_start: float = 0.3, div: float = 5.0,
                  **kwargs) -> None:
        """Train the last group only (frozen body) for ``freeze_epochs``, then everything for
        ``epochs`` with discriminative learning rates from ``base_lr/2/lr_mult`` to
        ``base_lr/2``."""
        self.freeze()
        self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99, **kwargs)
        base_lr /= 2
        self.unfreeze()
        self.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start,
                           div=div, **kwargs)

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100,
                stop_div: bool = True, show_plot: bool = True,
                suggest_funcs: Sequence[Callable] | Callable | None = (valley,)):
        """Run a mock training with an exponentially growing lr (restoring the model and
        optimiser afterwards) and return the suggested learning rates as a namedtuple
        ``SuggestedLRs`` with one field per function (``.valley`` by default).

        ``show_plot`` draws the curve with matplotlib when it is installed.
        """
        n_epoch = num_it // len(self.dls.train) + 1
        cb = LRFinder(start_lr=start_lr, end_lr=end_lr, num_it=num_it, stop_div=stop_div)
        with self.no_logging():
            self.fit(n_epoch, cbs=cb)
        rec = self.recorder
        if suggest_funcs is None:
            if show_plot:
                self._maybe_plot(rec.plot_lr_find)
            return None
        funcs = suggest_funcs if isinstance(suggest_funcs, (list, tuple)) else [suggest_funcs]
        lrs = np.array(rec.lrs[num_it // 10:-5], dtype=float)
        losses = np.array(rec.losses[num_it // 10:-5], dtype=float)
        nan = np.nonzero(np.isnan(losses))[0]
        if len(nan):
            lrs, losses = lrs[:nan[0]], losses[:nan[0]]
        if len(lrs) < 2:
            raise ValueError(f"Learner.lr_find: only {len(rec.lrs)} batches ran before the "
                             f"loss diverged, too few to suggest a learning rate; lower "
                             f"start_lr or end_lr, or raise num_it")
        names, values, points = [], [], []
        for f in funcs:
            names.append(getattr(getattr(f, "func", f), "__name__", "suggestion"))
            lr, point = f(lrs, losses, num_it)
            values.append(lr)
            points.append(point)
        if show_plot:
            self._maybe_plot(partial(rec.plot_lr_find, suggestions=points, nms=names))
        return collections.namedtuple("SuggestedLRs", names)(*values)

    @staticmethod
    def _maybe_plot(plot: Callable) -> None:
        try:
            plot()
        except ImportError as e:  # the default show_plot=True must not need matplotlib
            warnings.warn(f"lr_find: no plot ({e})", stacklevel=3)

    # ----- evaluation and prediction ----------------------------------------------------------
    def _dl(self, ds_idx: int, dl):
        if dl is not None:
            return dl
        try:
            dl = self.dls[ds_idx]
        except IndexError:
            raise IndexError(f"Learner: dls has no loader {ds_idx} (it has "
                             f"{len(self.dls)})") from None
        if dl is None:
            raise ValueError(f"Learner: dls has no loader at index {ds_idx}")
        return dl

    def validate(self, ds_idx: int = 1, dl=None, cbs=None) -> list:
        """The loss and metrics over ``dl`` (default the validation set):
        ``[valid_loss, *metrics]``."""
        dl = self._dl(ds_idx, dl)
        epoch = self.epoch
        try:
            with self.no_logging():
                Engine.validate(self, dl, cbs=_listify(cbs))
        finally:
            self.epoch = epoch
        return [self.logs.get("loss"), *[_item(m.value) for m in self.metrics]]

    def _item_losses(self, pred, yb) -> Tensor:
        """One loss per item (the loss function with reduction="none")."""
        lf = self.loss_func
        if hasattr(lf, "reduction"):
            old, lf.reduction = lf.reduction, "none"
            try:
                return lf(pred, *yb)
            finally:
                lf.reduction = old
        try:
            return lf(pred, *yb, reduction="none")
        except TypeError:
            raise TypeError(f"Learner.get_preds(with_loss=True): the loss function "
                            f"{getattr(lf, '__name__', lf)!r} takes no reduction argument, "
                            f"so per-item losses are unavailable") from None

    def get_preds(self, ds_idx: int = 1, dl=None, with_input: bool = False,
                  with_decoded: bool = False, with_loss: bool = False, act=None, cbs=None):
        """Predictions and targets over ``dl`` (default the validation set), as Tensors.

        The predictions go through ``act`` (default: the loss's activation, e.g. softmax
        for cross-entropy). Returns ``(preds, targs)``, with the inputs first when
        ``with_input``, the decoded predictions (e.g. argmax) after the targets when
        ``with_decoded``, and per-item losses last when ``with_loss``.
        """
        dl = self._dl(ds_idx, dl)
        gather = _Gather(with_input, with_loss)
        epoch, logs = self.epoch, self.logs
        try:
            with self.no_logging():
                Engine.validate(self, dl, cbs=[gather, *_listify(cbs)])
        finally:
            self.epoch, self.logs = epoch, logs
        preds = _cat(gather.preds)
        act = loss_activation(self.loss_func) if act is None else act
        if preds is not None and not isinstance(preds, tuple):
            preds = act(preds)
        res = [preds, _cat(gather.targs)]
        if with_input:
            res.insert(0, _cat(gather.inputs))
        if with_decoded:  # after the targets, as fastai orders them
            res.insert(3 if with_input else 2, loss_decodes(self.loss_func)(preds))
        if with_loss:
            res.append(_cat(gather.losses))
        return tuple(res)

    def _vocab(self) -> list | None:
        v = getattr(self.dls, "vocab", None)
        if v is None:
            ds = self.dls.__dict__.get("loaders", [None])[0]
            ds = getattr(ds, "dataset", None)
            while ds is not None and v is None:
                v = getattr(ds, "classes", None)
                ds = getattr(ds, "dataset", None)  # through Subset
        return v

    def _label(self, dec: Tensor):
        a = np.asarray(to_numpy(dec))
        if a.ndim == 0 and a.dtype.kind in "iu":
            vocab = self._vocab()
            i = int(a)
            return vocab[i] if vocab is not None and 0 <= i < len(vocab) else i
        if a.ndim == 0 and a.dtype.kind == "b":
            return bool(a)
        return dec

    def predict(self, item) -> tuple:
        """Predict one item (an input without its batch dimension): returns ``(label,
        decoded, probs)`` — the decoded prediction as a label (a class name when the data
        has classes), as a Tensor, and the activated outputs."""
        if isinstance(item, Tensor):
            a = np.asarray(to_numpy(item))
        else:
            a = np.asarray(item)
            if a.dtype.kind == "f":  # NumPy's float64 meets the model's default dtype
                a = a.astype(get_default_dtype().np)
        xb = Tensor._wrap(np.ascontiguousarray(a[None]))
        preds, _, dec = self.get_preds(dl=[(xb,)], with_decoded=True)
        return self._label(dec[0]), dec[0], preds[0]

    def show_results(self, ds_idx: int = 1, dl=None, max_n: int = 9, shuffle: bool = True,
                     file=None) -> None:
        """Print a table of ``max_n`` samples: a summary of the input, the target and the
        prediction (class names when the data has them)."""
        dl = self._dl(ds_idx, dl)
        ds = getattr(dl, "dataset", None)
        if ds is not None and hasattr(ds, "__getitem__") and hasattr(ds, "__len__"):
            n = min(max_n, len(ds))
            idx = randperm(len(ds)).numpy()[:n].tolist() if shuffle else list(range(n))
            batch = default_collate([ds[i] for i in idx])
        else:
            batch = next(iter(dl))
        inp, preds, targs, dec = self.get_preds(dl=[batch], with_input=True,
                                                with_decoded=True)
        rows = []
        n = min(max_n, preds.shape[0])
        for i in range(n):
            x = inp[i] if not isinstance(inp, tuple) else inp[0][i]
            targ = targs[i] if targs is not None and not isinstance(targs, tuple) else None
            rows.append([str(i), _summary(x), "" if targ is None else _show(self._label(targ)),
                         _show(self._label(dec[i]))])
        _print_table(["", "input", "target", "prediction"], rows, file)

    # ----- checkpoints ------------------------------------------------------------------------
    def _file(self, name: str | Path) -> Path:
        p = Path(name)
        if p.suffix != ".safetensors":
            p = p.with_name(p.name + ".safetensors")
        return p if p.is_absolute() else self.path / self.model_dir / p

    def save(self, file: str | Path, with_opt: bool = True) -> Path:
        """Save the model (and optimiser) state to ``path/model_dir/file.safetensors``
        (safetensors + JSON, written atomically); returns the file's path."""
        f = self._file(file)
        f.parent.mkdir(parents=True, exist_ok=True)
        state: dict[str, Any] = {"model": self.model.state_dict()}
        if with_opt and self.opt is not None:
            state["opt"] = self.opt.state_dict()
        _save(state, str(f))
        return f

    def load(self, file: str | Path, device=None, with_opt: bool = True,
             strict: bool = True) -> "Learner":
        """Load a checkpoint written by :meth:`save` (or a bare model state_dict)."""
        f = self._file(file)
        if not f.exists():
            raise FileNotFoundError(f"Learner.load: no checkpoint at {f}")
        state = _load(str(f), map_location=device)
        has_model = isinstance(state, dict) and isinstance(state.get("model"), dict)
        self.model.load_state_dict(state["model"] if has_model else state, strict=strict)
        if with_opt:
            if has_model and "opt" in state:
                if self.opt is None:
                    self.create_opt()
                self.opt.load_state_dict(state["opt"])
            else:
                warnings.warn(f"Learner.load: {f} holds no optimizer state", stacklevel=2)
        return self

    def __repr__(self) -> str:
        return (f"Learner(model={type(self.model).__name__}, loss_func="
                f"{getattr(self.loss_func, '__name__', self.loss_func)!r}, "
                f"metrics={[m.name for m in self.metrics]})")


def _listify(cbs) -> list:
    if cbs is None:
        return []
    if isinstance(cbs, (Callback, type)):
        return [cbs]
    return list(cbs)


def _summary(x: Tensor) -> str:
    a = np.asarray(to_numpy(x))
    if a.size <= 4:
        return np.array2string(a.ravel(), precision=3, separator=", ")
    return f"{tuple(a.shape)} mean {a.mean():.3f}"


def _show(v) -> str:
    if isinstance(v, Tensor):
        a = np.asarray(to_numpy(v))
        if a.size == 1:
            return f"{a.item():.4g}" if a.dtype.kind == "f" else str(a.item())
        return np.array2string(a.ravel(), precision=3, separator=", ")
    return str(v)


def _print_table(header: list, rows: list, file=None) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    for r in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip(), file=file)
