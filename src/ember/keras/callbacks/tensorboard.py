"""``keras.callbacks.TensorBoard``: write TensorBoard event files (scalars, weight
histograms and images, the model's config), with no TensorFlow needed."""
from __future__ import annotations

import os
import time
import warnings

import numpy as np

from ...serialization import write_atomic
from . import _event_file as ev
from .callback import Callback


def _to_numpy(w) -> np.ndarray:
    if hasattr(w, "detach"):  # a tensor that may require grad
        w = w.detach()
    return np.asarray(w.numpy() if hasattr(w, "numpy") else w)


def _named_weights(model) -> list[tuple[str, object]]:
    """(name, weight) pairs, named as Keras names them (``dense/kernel``) where the layers say
    so, else after the module path (``fc.weight`` -> ``fc/weight``)."""
    layers = getattr(model, "layers", None)
    if isinstance(layers, (list, tuple)) and layers and all(
            isinstance(getattr(layer, "weights", None), (list, tuple)) for layer in layers):
        out = []
        for layer in layers:
            for i, w in enumerate(layer.weights):
                name = getattr(w, "path", None) or (
                    f"{getattr(layer, 'name', 'layer')}/{getattr(w, 'name', i)}")
                out.append((str(name), w))
        return out
    if callable(getattr(model, "named_parameters", None)):
        return [(n.replace(".", "/"), p) for n, p in model.named_parameters()]
    return [(f"weight_{i}", w) for i, w in enumerate(model.get_weights())]


def _weight_image(w: np.ndarray) -> np.ndarray | None:
    """Keras's picture of a weight, (n, height, width, channels), or None if it has none."""
    w = np.squeeze(w)
    if w.ndim == 1:  # a bias
        w = w.reshape(1, w.shape[0], 1, 1)
    elif w.ndim == 2:  # a dense kernel, drawn wide
        if w.shape[0] > w.shape[1]:
            w = w.T
        w = w.reshape(1, w.shape[0], w.shape[1], 1)
    elif w.ndim == 3:  # a conv kernel, channels last: one image per kernel
        w = np.transpose(w, (2, 0, 1))
        w = w.reshape(w.shape[0], w.shape[1], w.shape[2], 1)
    if w.ndim == 4 and w.shape[-1] in (1, 3, 4):
        return w
    return None


def _scalars(logs: dict) -> dict:
    out = {}
    for k, v in logs.items():
        try:
            out[k] = float(v)
        except (TypeError, ValueError):
            pass  # vectors and strings have no scalar plot
    return out


class TensorBoard(Callback):
    """Log metrics (and optionally weight histograms/images) for TensorBoard.

    Writes ``log_dir/train/events.out.tfevents.*`` and ``log_dir/validation/...``: per epoch
    the scalars ``epoch_loss``, ``epoch_<metric>``, ``epoch_learning_rate`` (validation
    values under ``validation/`` without their ``val_`` prefix). View them with
    ``tensorboard --logdir logs``.

    Args:
        histogram_freq: every this many epochs, write a histogram of each weight (0: never).
        write_graph: write the model's JSON config (Keras's conceptual graph) when the model
            has ``to_json``.
        write_images: with histograms, also draw the weights as images.
        write_steps_per_second: log training steps per second.
        update_freq: ``"epoch"``; ``"batch"`` or an integer N also writes ``batch_<name>``
            scalars every N training batches.
        embeddings_freq: every this many epochs, save the weights for the projector
            (``train/keras_embedding.ckpt-<epoch>.weights.h5``) and describe the model's
            Embedding layers in ``projector_config.pbtxt``.
        embeddings_metadata: a metadata file for all Embedding layers, or a dict from layer
            name to file.
        profile_batch: must be 0: ember has no profiler trace for TensorBoard (as Keras on its
            torch backend).
    """

    def __init__(self, log_dir: str | os.PathLike = "logs", histogram_freq: int = 0,
                 write_graph: bool = True, write_images: bool = False,
                 write_steps_per_second: bool = False, update_freq: str | int = "epoch",
                 profile_batch: int = 0, embeddings_freq: int = 0,
                 embeddings_metadata: str | dict | None = None) -> None:
        super().__init__()
        if profile_batch:
            raise ValueError(f"TensorBoard: profiling is not available in ember (as with "
                             f"Keras's torch backend). Received: profile_batch="
                             f"{profile_batch} (must be 0)")
        if update_freq not in ("epoch", "batch") and not (
                isinstance(update_freq, int) and update_freq > 0):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive "
                             f"integer, got {update_freq!r}")
        self.log_dir = os.fspath(log_dir)
        self.histogram_freq = histogram_freq
        self.write_graph = write_graph
        self.write_images = write_images
        self.write_steps_per_second = write_steps_per_second
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.embeddings_freq = embeddings_freq
        self.embeddings_metadata = embeddings_metadata
        self._global_train_batch = 0
        self._global_test_batch = 0
        self._epoch_batches = 0
        self._epoch_start_time = 0.0
        self._batch_start_time = 0.0
        self._writers: dict[str, ev.EventFileWriter] = {}
        self._train_dir = os.path.join(self.log_dir, "train")
        self._val_dir = os.path.join(self.log_dir, "validation")

    def set_model(self, model) -> None:
        self._model = model
        self._close_writers()
        self._writers = {}
        if self.write_graph:
            self._write_keras_model_summary()
        if self.embeddings_freq:
            self._configure_embeddings()

    @property
    def _train_writer(self) -> ev.EventFileWriter:
        if "train" not in self._writers:
            self._writers["train"] = ev.EventFileWriter(self._train_dir)
        return self._writers["train"]

    @property
    def _val_writer(self) -> ev.EventFileWriter:
        if "val" not in self._writers:
            self._writers["val"] = ev.EventFileWriter(self._val_dir)
        return self._writers["val"]

    def _close_writers(self) -> None:
        for w in self._writers.values():
            w.close()

    def _write_keras_model_summary(self) -> None:
        to_json = getattr(self.model, "to_json", None)
        if not callable(to_json):
            return
        try:
            config = to_json()
        except Exception as e:  # a model that can't describe itself must not stop training
            warnings.warn(f"Model failed to serialize as JSON. Ignoring... {e}", stacklevel=2)
            return
        # plugin "graph_keras_model", content b"1": what TensorBoard's graph plugin reads
        self._train_writer.write(0, [ev.text_tensor_value("keras", config,
                                                          "graph_keras_model", b"1")])
        self._train_writer.flush()

    def _configure_embeddings(self) -> None:
        layers = getattr(self.model, "layers", None) or []
        metadata = self.embeddings_metadata
        if isinstance(metadata, dict):
            metadata = dict(metadata)
        lines = []
        for layer in layers:
            if type(layer).__name__ != "Embedding":
                continue
            lines.append("embeddings {")
            # the name Keras gives the first layer's weights in its checkpoints
            lines.append('  tensor_name: "layer_with_weights-0/embeddings/.ATTRIBUTES/'
                         'VARIABLE_VALUE"')
            path = None
            if isinstance(metadata, str):
                path = metadata
            elif isinstance(metadata, dict):
                path = metadata.pop(getattr(layer, "name", None), None)
            if path is not None:
                lines.append(f"  metadata_path: {_pbtxt_string(path)}")
            lines.append("}")
        if isinstance(metadata, dict) and metadata:
            raise ValueError(f"Unrecognized `Embedding` layer names passed to "
                             f"`keras.callbacks.TensorBoard` `embeddings_metadata` argument: "
                             f"{metadata.keys()}")
        os.makedirs(self.log_dir, exist_ok=True)
        path = os.path.join(self.log_dir, "projector_config.pbtxt")
        write_atomic(path, "".join(line + "\n" for line in lines).encode())

    def _record_batch(self) -> bool:
        return self.update_freq != "epoch" and self._global_train_batch % self.update_freq == 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._global_train_batch = 0

    def on_train_end(self, logs: dict | None = None) -> None:
        self._close_writers()

    def on_test_end(self, logs: dict | None = None) -> None:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is None or not logs:
            return
        step = int(getattr(optimizer, "iterations", self._global_train_batch))
        self._val_writer.write(step, [ev.scalar_value(f"evaluation_{k}_vs_iterations", v)
                                      for k, v in _scalars(logs).items()])
        self._val_writer.flush()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._global_train_batch += 1
        self._epoch_batches += 1
        if self.write_steps_per_second:
            self._batch_start_time = time.time()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self._record_batch():
            return
        values = {}
        if self.write_steps_per_second:
            values["batch_steps_per_second"] = 1.0 / max(
                time.time() - self._batch_start_time, 1e-9)
        if isinstance(logs, dict):
            values.update({f"batch_{k}": v for k, v in _scalars(logs).items()})
        self._train_writer.write(self._global_train_batch,
                                 [ev.scalar_value(k, v) for k, v in values.items()])

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._global_test_batch += 1

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch_batches = 0
        self._epoch_start_time = time.time()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._log_epoch_metrics(epoch, logs)
        if self.histogram_freq and epoch % self.histogram_freq == 0:
            self._log_weights(epoch)
        if self.embeddings_freq and epoch % self.embeddings_freq == 0:
            self._log_embeddings(epoch)

    def _collect_learning_rate(self, logs: dict) -> dict:
        optimizer = getattr(self.model, "optimizer", None)
        optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # a loss-scale wrapper
        inner = getattr(optimizer, "optimizers", None)
        if isinstance(inner, (list, tuple)):
            for opt in inner:
                logs[f"learning_rate_{opt.name}"] = float(opt.learning_rate)
        elif optimizer is not None and hasattr(optimizer, "learning_rate"):
            logs["learning_rate"] = float(optimizer.learning_rate)
        return logs

    def _log_epoch_metrics(self, epoch: int, logs: dict | None) -> None:
        if not logs:
            return
        logs = _scalars(logs)
        train_logs = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val_logs = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        train_logs = self._collect_learning_rate(train_logs)
        if self.write_steps_per_second:
            elapsed = max(time.time() - self._epoch_start_time, 1e-9)
            train_logs["steps_per_second"] = self._epoch_batches / elapsed
        for writer, values in ((self._train_writer, train_logs), (self._val_writer, val_logs)):
            if values:
                writer.write(epoch, [ev.scalar_value(f"epoch_{k}", v)
                                     for k, v in values.items()])
                writer.flush()

    def _log_weights(self, epoch: int) -> None:
        values = []
        for name, w in _named_weights(self.model):
            name = name.replace(":", "_")
            arr = _to_numpy(w)
            values.append(ev.histogram_value(f"{name}/histogram", arr))
            if self.write_images:
                img = _weight_image(arr.astype(np.float64))
                if img is not None:
                    # tf.summary.image's float -> uint8: saturate, scale by 255.5, truncate;
                    # like it, at most 3 images per weight
                    img = (np.clip(img, 0.0, 1.0) * 255.5).astype(np.uint8)
                    n = min(len(img), 3)
                    values.extend(ev.image_value(f"{name}/image" + (f"/{i}" if n > 1 else ""),
                                                 img[i]) for i in range(n))
        self._train_writer.write(epoch, values)
        self._train_writer.flush()

    def _log_embeddings(self, epoch: int) -> None:
        path = os.path.join(self.log_dir, "train", f"keras_embedding.ckpt-{epoch}.weights.h5")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.model.save_weights(path)


def _pbtxt_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
