"""``ember.save`` / ``ember.load``: checkpoints in one safetensors file, never pickle.

A checkpoint is any nesting of dicts, lists, tuples, str, int, float, bool, None, bytes,
ember Tensors (and Parameters), NumPy arrays and scalars, ember dtypes and devices::

    ember.save({"model": net.state_dict(), "optimizer": opt.state_dict(), "epoch": 3,
                "rng": ember.get_rng_state()}, "ckpt.safetensors")
    ckpt = ember.load("ckpt.safetensors")

The file is a standard safetensors file: the tensors are its tensors (named after their
place in the object, e.g. ``model.fc.weight``), and the structure around them is JSON in the
header's metadata (key ``"ember"``), next to a CRC32 of every tensor (key ``"ember.crc32"``)
so that damaged data is reported rather than loaded. Loading parses JSON and raw arrays
only: it never imports or executes anything, so an untrusted file is safe to open.

Interchange: a flat ``{name: Tensor}`` state_dict is saved with exactly those names, so
``safetensors.torch.load_file`` reads it in PyTorch, and ``ember.load`` reads any safetensors
file written elsewhere (as a flat dict of tensors).

Saving to a path is atomic: the bytes go to a temporary file in the same folder, are
fsync'ed, and replace the old file in one rename, so a crash mid-save leaves the last good
checkpoint in place.
"""
from __future__ import annotations

import base64
import collections
import json
import math
import os
import stat
import tempfile
import zlib

import numpy as np

from . import dtypes as _dt
from .backend import Device
from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]

_FORMAT_VERSION = 1

# safetensors dtype codes <-> NumPy dtypes (ember's dtypes, plus the other ones safetensors
# stores, so foreign files load too)
_SAFETENSORS_DTYPES = {
    "BOOL": np.dtype(np.bool_), "U8": np.dtype(np.uint8), "I8": np.dtype(np.int8),
    "I16": np.dtype(np.int16), "U16": np.dtype(np.uint16), "I32": np.dtype(np.int32),
    "U32": np.dtype(np.uint32), "I64": np.dtype(np.int64), "U64": np.dtype(np.uint64),
    "F16": np.dtype(np.float16), "F32": np.dtype(np.float32), "F64": np.dtype(np.float64),
    "C64": np.dtype(np.complex64),
}
if _dt._BF16 is not None:
    _SAFETENSORS_DTYPES["BF16"] = _dt._BF16
_SAVABLE = set(_SAFETENSORS_DTYPES.values())


class CheckpointError(RuntimeError):
    """A checkpoint file that is truncated, corrupted or not a checkpoint at all."""


# ----- the structure: Python objects <-> JSON with references to named tensors ---------------


class _Encoder:
    """Walks the object, collecting arrays under unique names and returning JSON."""

    def __init__(self) -> None:
        self.arrays: dict = {}
        self._by_id: dict = {}  # id(tensor) -> name, so a tensor saved twice is stored once
        self._keep: list = []  # keeps the objects alive so their ids stay unique

    def name_for(self, path: list) -> str:
        base = ".".join(path) or "tensor"
        name, k = base, 1
        while name in self.arrays or name == "__metadata__":
            k += 1
            name = f"{base}#{k}"
        return name

    def add_array(self, obj, arr: np.ndarray, path: list) -> str:
        name = self._by_id.get(id(obj))
        if name is None:
            arr = np.asarray(arr)
            # safetensors writes the raw buffer (ignoring strides): it must be C-contiguous
            if not arr.flags.c_contiguous:
                arr = arr.copy(order="C")  # (np.ascontiguousarray would make 0-d arrays 1-d)
            if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and
                                              not np.little_endian):
                arr = arr.astype(arr.dtype.newbyteorder("<"))
            if arr.dtype not in _SAVABLE:
                raise TypeError(f"ember.save: the array at {_where(path)} has dtype "
                                f"{arr.dtype}, which safetensors can't store (supported: "
                                f"{', '.join(sorted(str(d) for d in _SAVABLE))})")
            name = self.name_for(path)
            self.arrays[name] = arr
            self._by_id[id(obj)] = name
            self._keep.append(obj)
        return name

    def encode(self, obj, path: list):
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            if math.isfinite(obj):
                return float(obj)
            return {"$float": repr(float(obj))}  # JSON has no nan/inf
        if isinstance(obj, Tensor):
            arr = obj._dev.backend.to_numpy(obj._data)
            out = {"$tensor": self.add_array(obj, arr, path)}
            from .nn.parameter import Parameter
            if isinstance(obj, Parameter):
                out["parameter"] = True
            if obj.requires_grad and obj._node is None:
                out["requires_grad"] = True
            return out
        if isinstance(obj, np.ndarray):
            return {"$ndarray": self.add_array(obj, obj, path)}
        if isinstance(obj, np.generic):
            return {"$npscalar": self.add_array(obj, np.asarray(obj), path)}
        if isinstance(obj, (bytes, bytearray)):
            return {"$bytes": base64.b64encode(bytes(obj)).decode("ascii")}
        if isinstance(obj, _dt.dtype):
            return {"$dtype": obj.name}
        if isinstance(obj, Device):
            return {"$device": str(obj)}
        if isinstance(obj, dict):
            tag = "$odict" if isinstance(obj, collections.OrderedDict) else "$dict"
            items = []
            for k, v in obj.items():
                items.append([self.encode_key(k, path), self.encode(v, path + [str(k)])])
            return {tag: items}
        if isinstance(obj, list):
            return [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]
        if isinstance(obj, tuple):  # namedtuples are saved as plain tuples
            return {"$tuple": [self.encode(v, path + [str(i)]) for i, v in enumerate(obj)]}
        raise TypeError(f"ember.save: can't save an object of type {type(obj).__name__} at "
                        f"{_where(path)}. Checkpoints hold dicts, lists, tuples, str, int, "
                        f"float, bool, None, bytes, Tensors, NumPy arrays, dtypes and devices "
                        f"(never pickled objects: loading a file must not run code)")

    def encode_key(self, key, path: list):
        if key is None or isinstance(key, (bool, int, float, str)):
            return self.encode(key, path)
        if isinstance(key, tuple):
            return {"$tuple": [self.encode_key(k, path) for k in key]}
        raise TypeError(f"ember.save: can't save a dict key of type {type(key).__name__} at "
                        f"{_where(path)}; keys must be str, int, float, bool, None or tuples "
                        f"of those")


def _where(path: list) -> str:
    return "obj" + "".join(f"[{p!r}]" for p in path)


class _Decoder:
    def __init__(self, fname: str, tensors: dict, device, map_fn) -> None:
        self.fname = fname
        self.arrays = tensors
        self.device = device
        self.map_fn = map_fn
        self._made: dict = {}  # name -> Tensor, so shared tensors stay shared

    def fail(self, what: str):
        raise CheckpointError(f"ember.load: {self.fname}: corrupted structure ({what})")

    def array(self, name) -> np.ndarray:
        if not isinstance(name, str) or name not in self.arrays:
            self.fail(f"reference to a tensor {name!r} that the file does not hold")
        return self.arrays[name]

    def tensor(self, node: dict) -> Tensor:
        name = node["$tensor"]
        key = (name, bool(node.get("parameter")), bool(node.get("requires_grad")))
        t = self._made.get(key)
        if t is not None:
            return t
        arr = self.array(name)
        if arr.dtype not in _dt._FROM_NP:
            self.fail(f"tensor {name!r} has dtype {arr.dtype}, which ember tensors can't hold")
        t = Tensor._wrap(arr)
        if self.device is not None and self.device.type != "cpu":
            t = t.to(self.device)
        if self.map_fn is not None:
            mapped = self.map_fn(t, "cpu")
            t = mapped if isinstance(mapped, Tensor) else t
        if node.get("parameter"):
            from .nn.parameter import Parameter
            t = Parameter(t, requires_grad=bool(node.get("requires_grad")))
        elif node.get("requires_grad"):
            t.requires_grad_(True)
        self._made[key] = t
        return t

    def decode(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(v) for v in node]
        tags = [k for k in node if k.startswith("$")] if isinstance(node, dict) else []
        if len(tags) != 1:
            self.fail(f"unexpected JSON value {node!r}")
        tag = tags[0]
        val = node[tag]
        if tag == "$tensor":
            return self.tensor(node)
        if tag in ("$dict", "$odict"):
            if not isinstance(val, list) or not all(isinstance(p, list) and len(p) == 2
                                                    for p in val):
                self.fail(f"{tag} must be a list of [key, value] pairs")
            out = {} if tag == "$dict" else collections.OrderedDict()
            for k, v in val:
                out[self.key(k)] = self.decode(v)
            return out
        if tag == "$tuple":
            if not isinstance(val, list):
                self.fail("$tuple must hold a list")
            return tuple(self.decode(v) for v in val)
        if tag == "$float":
            if val not in ("nan", "inf", "-inf"):
                self.fail(f"$float must be nan, inf or -inf, got {val!r}")
            return float(val)
        if tag == "$ndarray":
            return self.array(val)
        if tag == "$npscalar":
            return self.array(val)[()]
        if tag == "$bytes":
            try:
                return base64.b64decode(val, validate=True)
            except (ValueError, TypeError):
                self.fail("$bytes is not base64")
        if tag == "$dtype":
            if val not in _dt._BY_NAME:
                self.fail(f"unknown dtype {val!r}")
            return _dt._BY_NAME[val]
        if tag == "$device":
            from .backend import get_device
            return get_device(val)
        self.fail(f"unknown tag {tag!r}")

    def key(self, node):
        k = self.decode(node)
        if isinstance(k, (list, dict)):
            self.fail(f"unhashable dict key {node!r}")
        return k


# ----- the file ------------------------------------------------------------------------------


def _crc(arr: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(arr.reshape(-1)).view(np.uint8))


def _default_mode(path: str) -> int:
    """The permission bits a newly created file would get (temporary files are 0600)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        pass
    try:
        with open("/proc/self/status") as f:  # reads the umask without changing it
            for line in f:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems can't sync a directory; the rename is done either way
    finally:
        os.close(fd)


def save(obj, f, pickle_module=None, pickle_protocol=None,
         _use_new_zipfile_serialization: bool = True) -> None:
    """Save ``obj`` to ``f`` (a path, or a binary file object) as one safetensors file.

    ``pickle_module`` and ``pickle_protocol`` are accepted for PyTorch compatibility and
    ignored: ember never pickles. Saving to a path is atomic.
    """
    import safetensors.numpy

    enc = _Encoder()
    structure = enc.encode(obj, [])
    metadata = {
        "format": "pt",
        "ember": json.dumps({"version": _FORMAT_VERSION, "root": structure},
                            separators=(",", ":"), allow_nan=False),
        "ember.crc32": json.dumps({k: _crc(a) for k, a in enc.arrays.items()},
                                  separators=(",", ":")),
    }
    if hasattr(f, "write"):
        f.write(safetensors.numpy.save(enc.arrays, metadata=metadata))
        return
    path = os.path.abspath(os.fspath(f))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"ember.save: folder {folder} does not exist (saving "
                                f"{os.fspath(f)})")
    mode = _default_mode(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                               suffix=".tmp")
    os.close(fd)
    try:
        safetensors.numpy.save_file(enc.arrays, tmp, metadata=metadata)
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def write_atomic(path, data) -> None:
    """Write ``data`` (bytes, or a function ``write(file_object)``) to ``path`` through a
    temporary file beside it, then rename over it: a crash mid-write leaves the previous
    file whole and no partial one. The file gets the usual permissions and is fsynced."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot save to {path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    mode = _default_mode(path)  # mkstemp makes 0600 files
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def _read(f) -> tuple:
    if hasattr(f, "read"):
        return f.read(), repr(getattr(f, "name", "<file object>"))
    path = os.fspath(f)
    with open(path, "rb") as fh:
        return fh.read(), repr(path)


def _check_header(buf: bytes, fname: str) -> dict:
    """Validate the safetensors framing and header, with messages naming the problem."""
    size = len(buf)
    if buf[:4] == b"PK\x03\x04":
        raise CheckpointError(f"ember.load: {fname} is a PyTorch zip/pickle checkpoint. ember "
                              f"never unpickles files (that can run code); convert it in "
                              f"PyTorch with safetensors.torch.save_file(state_dict, path)")
    # a safetensors header length can begin with the pickle magic bytes (640 = 80 02 ...):
    # a file whose framing and JSON header are valid is safetensors whatever its first bytes
    framed = size > 8 and int.from_bytes(buf[:8], "little") <= size - 8 and buf[8:9] == b"{"
    if not framed and buf[:1] == b"\x80" and buf[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise CheckpointError(f"ember.load: {fname} is a pickle file; ember never unpickles "
                              f"files (that can run code)")
    if size < 8:
        raise CheckpointError(f"ember.load: {fname} is truncated or not a checkpoint: it has "
                              f"{size} bytes, fewer than the 8-byte header length that starts "
                              f"a safetensors file")
    n = int.from_bytes(buf[:8], "little")
    if n > size - 8:
        raise CheckpointError(f"ember.load: {fname} is truncated or not a checkpoint: its "
                              f"first 8 bytes announce a {n}-byte header but only {size - 8} "
                              f"bytes follow")
    try:
        header = json.loads(buf[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise CheckpointError(f"ember.load: {fname} has a corrupted header: its {n} header "
                              f"bytes are not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"ember.load: {fname} has a corrupted header: expected a JSON "
                              f"object, got {type(header).__name__}")
    data_len = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str)
                                                     for v in info.values()):
                raise CheckpointError(f"ember.load: {fname} has a corrupted header: "
                                      f"__metadata__ must map names to strings")
            continue
        ok = isinstance(info, dict) and info.get("dtype") in _SAFETENSORS_DTYPES and \
            isinstance(info.get("shape"), list) and isinstance(info.get("data_offsets"), list)
        if ok:
            shape, offs = info["shape"], info["data_offsets"]
            ok = all(isinstance(s, int) and s >= 0 for s in shape) and len(offs) == 2 and \
                all(isinstance(o, int) and o >= 0 for o in offs) and offs[0] <= offs[1]
        if not ok:
            raise CheckpointError(f"ember.load: {fname} has a corrupted header: entry "
                                  f"{name!r} = {info!r} is not a tensor description "
                                  f"(dtype, shape, data_offsets)")
        begin, end = info["data_offsets"]
        need = math.prod(info["shape"]) * _SAFETENSORS_DTYPES[info["dtype"]].itemsize
        if end - begin != need:
            raise CheckpointError(f"ember.load: {fname} has a corrupted header: tensor "
                                  f"{name!r} ({info['dtype']} {tuple(info['shape'])}) needs "
                                  f"{need} bytes but its data_offsets span {end - begin}")
        if end > data_len:
            raise CheckpointError(f"ember.load: {fname} is truncated: tensor {name!r} ends at "
                                  f"byte {end} of the data section, which has only {data_len} "
                                  f"bytes ({end - data_len} or more bytes are missing)")
    return header


def _resolve_map_location(map_location):
    """(device or None, callable or None) from PyTorch's map_location forms."""
    from .backend import get_device
    if map_location is None:
        return None, None
    if callable(map_location) and not isinstance(map_location, str) and \
            not hasattr(map_location, "backend"):
        return None, map_location
    if isinstance(map_location, dict):
        target = map_location.get("cpu")
        return (get_device(target) if target is not None else None), None
    return get_device(map_location), None


def load(f, map_location=None, pickle_module=None, *, weights_only=None, mmap=None,
         **pickle_load_args):
    """Load what :func:`save` wrote (or any safetensors file, as a dict of tensors).

    ``map_location``: None, ``"cpu"``, a device, a dict such as ``{"cuda:0": "cpu"}``, or
    ``fn(tensor, location)`` returning a tensor. ``pickle_module``, ``weights_only`` and
    ``mmap`` are accepted for PyTorch compatibility; loading is always weights-only safe.
    Raises :class:`CheckpointError` for a truncated or corrupted file.
    """
    import safetensors

    buf, fname = _read(f)
    header = _check_header(buf, fname)
    try:
        entries = safetensors.deserialize(buf)
    except Exception as e:  # the Rust parser's own checks (overlapping offsets, ...)
        raise CheckpointError(f"ember.load: {fname} is corrupted: safetensors could not "
                              f"parse it ({e})") from None
    arrays = {}
    for name, info in entries:
        dt = _SAFETENSORS_DTYPES[info["dtype"]]
        arrays[name] = np.frombuffer(info["data"], dtype=dt).reshape(info["shape"])
    meta = header.get("__metadata__") or {}

    crcs = meta.get("ember.crc32")
    if crcs is not None:
        try:
            crcs = json.loads(crcs)
        except ValueError:
            raise CheckpointError(f"ember.load: {fname} has a corrupted header: the "
                                  f"'ember.crc32' metadata is not valid JSON") from None
        for name, arr in arrays.items():
            if name in crcs and _crc(arr) != crcs[name]:
                raise CheckpointError(f"ember.load: {fname} is corrupted: the data of tensor "
                                      f"{name!r} does not match its CRC32 checksum (the file "
                                      f"was damaged after it was written)")

    device, map_fn = _resolve_map_location(map_location)
    dec = _Decoder(fname, arrays, device, map_fn)
    if "ember" not in meta:  # a plain safetensors file: a flat state_dict
        return {name: dec.tensor({"$tensor": name}) for name in arrays}
    try:
        doc = json.loads(meta["ember"])
    except ValueError:
        raise CheckpointError(f"ember.load: {fname} has a corrupted header: the 'ember' "
                              f"metadata is not valid JSON") from None
    if not isinstance(doc, dict) or "root" not in doc:
        dec.fail("missing 'root'")
    if doc.get("version", 0) > _FORMAT_VERSION:
        raise CheckpointError(f"ember.load: {fname} was written by a newer ember (format "
                              f"version {doc.get('version')}; this ember reads up to "
                              f"{_FORMAT_VERSION})")
    return dec.decode(doc["root"])
