"""``keras.callbacks.BackupAndRestore``: resume a killed ``fit`` exactly where it stopped."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ... import serialization
from ...ops.random import get_rng_state, set_rng_state
from .callback import Callback, save_due_on_batch

_FORMAT = "ember.keras.BackupAndRestore"
_VERSION = 1


class BackupAndRestore(Callback):
    """Back up the training state during ``fit`` and restore it when ``fit`` starts again.

    The backup holds the weights, the optimizer's state and learning rate, the epoch and the
    batch reached, ember's global random state and the seed of fit's shuffling, so a run
    killed in the middle of an epoch and started again (same script, same arguments)
    continues from the last backup and ends with exactly the weights of an uninterrupted
    run. The backup is one safetensors file, written atomically; it is deleted when
    training completes.

    Args:
        backup_dir: folder for the backup (not shared with other runs or callbacks).
        save_freq: ``"epoch"`` (back up at the end of each epoch) or an integer N (every N
            training batches).
        double_checkpoint: also keep the previous backup, used if the latest can't be read.
        delete_checkpoint: delete the backup when ``fit`` completes.

    Example::

        cb = BackupAndRestore("/tmp/backup", save_freq=100)
        model.fit(x, y, epochs=10, callbacks=[cb])   # rerun after a crash: it resumes
    """

    def __init__(self, backup_dir: str | os.PathLike, save_freq: str | int = "epoch",
                 double_checkpoint: bool = False, delete_checkpoint: bool = True) -> None:
        super().__init__()
        if not backup_dir:
            raise ValueError("BackupAndRestore: empty `backup_dir` argument passed")
        if save_freq != "epoch" and not (isinstance(save_freq, int)
                                         and not isinstance(save_freq, bool) and save_freq > 0):
            raise ValueError(f"BackupAndRestore: invalid value for argument `save_freq`. "
                             f"Received: save_freq={save_freq!r}. Expected either 'epoch' or "
                             f"a positive integer.")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = save_freq
        self.double_checkpoint = double_checkpoint
        self.delete_checkpoint = delete_checkpoint
        self._backup_path = os.path.join(self.backup_dir, "backup.safetensors")
        self._prev_backup_path = self._backup_path + ".bkp"
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0

    # ----- restore -------------------------------------------------------------------------

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen = 0
        self._current_epoch = 0
        state = None
        try:
            state = self._read(self._backup_path)
        except (OSError, serialization.CheckpointError, ValueError):
            # the latest backup is damaged: fall back to the previous one, if kept
            if not os.path.exists(self._prev_backup_path):
                raise
        if state is None and os.path.exists(self._prev_backup_path):
            state = self._read(self._prev_backup_path)
        if state is not None:
            self._restore(state)

    def _read(self, path: str) -> dict | None:
        if not os.path.exists(path):
            return None
        state = serialization.load(path)
        if not isinstance(state, dict) or state.get("format") != _FORMAT:
            raise ValueError(f"BackupAndRestore: {path} is not a backup written by "
                             f"BackupAndRestore (backup_dir must not hold other files)")
        if state.get("version", 0) > _VERSION:
            raise ValueError(f"BackupAndRestore: {path} has format version "
                             f"{state.get('version')}, newer than this ember reads "
                             f"({_VERSION})")
        return state

    def _restore(self, state: dict) -> None:
        model = self.model
        if getattr(model, "built", True) is False:
            raise ValueError(f"To use the BackupAndRestore callback, your model must be built "
                             f"before you call `fit()`. Model {type(model).__name__} is "
                             f"unbuilt. You can build it beforehand by calling it on a batch "
                             f"of data.")
        weights = [np.asarray(w) for w in state["weights"]]
        current = model.get_weights()
        if len(current) != len(weights) or any(
                np.shape(a) != np.shape(b) for a, b in zip(current, weights)):
            raise ValueError(f"BackupAndRestore: the backup in {self.backup_dir} holds weights "
                             f"of shapes {[w.shape for w in weights]}, the model has "
                             f"{[np.shape(w) for w in current]}: it was written by another "
                             f"model")
        model.set_weights(weights)
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and state.get("optimizer") is not None:
            optimizer.load_state_dict(state["optimizer"])
        if optimizer is not None and state.get("learning_rate") is not None:
            try:
                optimizer.learning_rate = float(state["learning_rate"])
            except TypeError:
                pass  # a schedule: its rate follows from the restored iteration count
        set_rng_state(state["rng"])
        if state.get("fit_seed") is not None:
            model._fit_seed = int(state["fit_seed"])
        epoch, step = int(state["epoch"]), int(state["step"])
        model._initial_epoch = epoch
        model._initial_step = step
        self._current_epoch = epoch
        # the next batch is ``step``: count batches from there
        self._last_batch_seen = step - 1 if step > 0 else 0

    # ----- back up -------------------------------------------------------------------------

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self.save_freq == "epoch":
            self._save_model(step=0)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if save_due_on_batch(self, batch):
            self._save_model(step=batch + 1)

    def _state(self, step: int) -> dict[str, Any]:
        model = self.model
        optimizer = getattr(model, "optimizer", None)
        lr = getattr(optimizer, "learning_rate", None)
        seed = getattr(model, "_fit_seed", None)
        return {
            "format": _FORMAT, "version": _VERSION,
            "weights": [np.array(w) for w in model.get_weights()],
            "optimizer": optimizer.state_dict() if optimizer is not None else None,
            "learning_rate": float(lr) if lr is not None else None,
            "epoch": int(self._current_epoch), "step": int(step),
            "rng": get_rng_state(),
            "fit_seed": int(seed) if seed is not None else None,
        }

    def _save_model(self, step: int) -> None:
        os.makedirs(self.backup_dir, exist_ok=True)
        state = self._state(step)
        if self.double_checkpoint and os.path.exists(self._backup_path):
            # a crash between these two lines leaves only the previous backup: restored too
            os.replace(self._backup_path, self._prev_backup_path)
        serialization.save(state, self._backup_path)  # atomic: temp file, then rename

    def on_train_end(self, logs: dict | None = None) -> None:
        if not self.delete_checkpoint:
            return
        # only our files go (Keras removes the whole folder; a folder shared by mistake
        # keeps its other files here)
        for path in (self._backup_path, self._prev_backup_path):
            if os.path.exists(path):
                os.remove(path)
        try:
            os.rmdir(self.backup_dir)
        except OSError:
            pass  # not empty, or already gone
