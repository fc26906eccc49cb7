"""TensorBoard event files without TensorFlow: TFRecord framing, CRC32C and the few protobuf
messages (Event, Summary, HistogramProto, Image, TensorProto) encoded by hand.

A TFRecord is ``uint64 length | uint32 masked_crc32c(length) | data | uint32
masked_crc32c(data)`` (little endian); each record's data is one serialized ``Event``. The
first event of a file carries ``file_version = "brain.Event:2"``. Field numbers follow
tensorflow/core/util/event.proto and framework/summary.proto.
"""
from __future__ import annotations

import itertools
import os
import socket
import struct
import time
import zlib

import numpy as np


def _crc32c_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            # 0x82F63B78: the Castagnoli polynomial, bit-reversed (the CRC is reflected)
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    """CRC-32C (Castagnoli) of ``data``, as TFRecord files use: crc32c(b"123456789") ==
    0xE3069283."""
    crc ^= 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotated and offset, so a CRC of data holding CRCs stays strong."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
    """One TFRecord: the framed, checksummed ``data``."""
    header = struct.pack("<Q", len(data))
    return (header + struct.pack("<I", masked_crc32c(header)) + data
            + struct.pack("<I", masked_crc32c(data)))


# ----- protobuf wire format ------------------------------------------------------------------

def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int64s are sent as their 64-bit two's complement
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _int(field: int, n: int) -> bytes:
    return _key(field, 0) + _varint(int(n))


def _double(field: int, x: float) -> bytes:
    return _key(field, 1) + struct.pack("<d", x)


def _float(field: int, x: float) -> bytes:
    return _key(field, 5) + struct.pack("<f", x)


def _bytes(field: int, data: bytes | str) -> bytes:
    if isinstance(data, str):
        data = data.encode()
    return _key(field, 2) + _varint(len(data)) + data


def _packed_doubles(field: int, xs) -> bytes:
    return _bytes(field, np.asarray(xs, dtype="<f8").tobytes())


def event(wall_time: float, step: int = 0, *, file_version: str | None = None,
          values: list[bytes] | None = None) -> bytes:
    """A serialized ``Event`` holding a file version or a ``Summary`` of ``values``."""
    out = _double(1, wall_time) + _int(2, step)
    if file_version is not None:
        out += _bytes(3, file_version)
    if values is not None:
        out += _bytes(5, b"".join(_bytes(1, v) for v in values))  # Summary.value (repeated)
    return out


def scalar_value(tag: str, value: float) -> bytes:
    """A ``Summary.Value`` with ``simple_value`` (TensorBoard's scalar dashboard)."""
    return _bytes(1, tag) + _float(2, float(value))


def histogram_value(tag: str, values: np.ndarray, bins: int = 30) -> bytes:
    """A ``Summary.Value`` with a ``HistogramProto``: ``bins`` equal-width buckets over
    [min, max] (tf.summary.histogram's default), each bucket given by its right edge."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        lo = hi = 0.0
        limits, counts = np.zeros(0), np.zeros(0)
    else:
        lo, hi = float(x.min()), float(x.max())
        if lo == hi:
            limits, counts = np.array([hi]), np.array([float(x.size)])
        else:
            counts, edges = np.histogram(x, bins=bins, range=(lo, hi))
            limits = edges[1:]
    histo = (_double(1, lo) + _double(2, hi) + _double(3, float(x.size))
             + _double(4, float(x.sum())) + _double(5, float(np.dot(x, x)))
             + _packed_doubles(6, limits) + _packed_doubles(7, counts))
    return _bytes(1, tag) + _bytes(5, histo)


def _png(img: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image of shape (height, width, channels), channels 1, 3 or 4."""
    h, w, c = img.shape
    color = {1: 0, 3: 2, 4: 6}[c]  # grey, RGB, RGBA

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + img[r].tobytes() for r in range(h))  # filter 0 on each row
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0,
                                                              0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def image_value(tag: str, img: np.ndarray) -> bytes:
    """A ``Summary.Value`` with an ``Image`` (PNG) of a uint8 (height, width, channels)."""
    h, w, c = img.shape
    image = _int(1, h) + _int(2, w) + _int(3, c) + _bytes(4, _png(np.ascontiguousarray(img)))
    return _bytes(1, tag) + _bytes(4, image)


def text_tensor_value(tag: str, text: str, plugin_name: str, content: bytes) -> bytes:
    """A ``Summary.Value`` holding a scalar string tensor with plugin metadata (how Keras
    writes the model's JSON config for TensorBoard's graph dashboard)."""
    metadata = _bytes(1, _bytes(1, plugin_name) + _bytes(2, content))
    tensor = _int(1, 7) + _bytes(2, b"") + _bytes(8, text)  # DT_STRING, shape [], string_val
    return _bytes(1, tag) + _bytes(8, tensor) + _bytes(9, metadata)


_file_counter = itertools.count()


class EventFileWriter:
    """Appends events to ``folder/events.out.tfevents.<time>.<host>.<pid>.<n>.v2``; the
    file is created at the first write."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path: str | None = None
        self._file = None

    def _open(self) -> None:
        os.makedirs(self.folder, exist_ok=True)
        name = (f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}."
                f"{os.getpid()}.{next(_file_counter)}.v2")
        self.path = os.path.join(self.folder, name)
        self._file = open(self.path, "wb")
        self._file.write(tfrecord(event(time.time(), 0, file_version="brain.Event:2")))

    def write(self, step: int, values: list[bytes]) -> None:
        """Write one event at ``step`` holding the summary ``values``."""
        if not values:
            return
        if self._file is None:
            self._open()
        self._file.write(tfrecord(event(time.time(), step, values=values)))

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
