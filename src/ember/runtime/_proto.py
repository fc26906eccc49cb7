"""A small protobuf wire-format reader for ONNX files, in pure Python (NumPy for packed
arrays): ``ember.runtime`` loads models without the ``onnx`` package.

It decodes the parts of ``onnx.proto`` that inference needs — ModelProto, GraphProto,
NodeProto, AttributeProto, TensorProto (``raw_data`` and the typed ``*_data`` fields,
external data references), ValueInfoProto with tensor types and shapes, OperatorSetIdProto,
metadata — into plain objects whose attribute names are ``onnx``'s, so code written against
``onnx.ModelProto`` (such as :func:`ember.onnx.load.from_model_proto`) reads them unchanged.
Unknown fields are skipped, as protobuf readers do. Absent sub-messages are ``None``.

Wire format: each field is a varint key ``(number << 3) | wire_type``; wire type 0 is a
varint, 1 eight little-endian bytes, 2 a varint length and that many bytes (strings, bytes,
sub-messages, packed repeated numbers), 5 four little-endian bytes.
"""
from __future__ import annotations

import struct

import numpy as np

__all__ = ["parse_model", "ModelProto", "GraphProto", "NodeProto", "AttributeProto",
           "TensorProto", "ValueInfoProto", "DecodeError"]


class DecodeError(ValueError):
    """The bytes are not a well-formed protobuf message of the expected type."""


# field kinds: how the value of each field is decoded
_INT, _UINT, _FLOAT, _DOUBLE, _STR, _BYTES, _MSG = range(7)
_SCALAR_WIRE = {_INT: 0, _UINT: 0, _FLOAT: 5, _DOUBLE: 1}


class _Message:
    """Base of the decoded messages: ``_FIELDS`` maps a field number to ``(attribute, kind,
    repeated, message class)``; unset scalars hold protobuf's defaults."""

    _FIELDS: dict = {}
    __slots__ = ()

    def __init__(self):
        for name, kind, repeated, _ in self._FIELDS.values():
            if repeated:
                val = []
            elif kind == _MSG:
                val = None
            elif kind in (_FLOAT, _DOUBLE):
                val = 0.0
            elif kind == _STR:
                val = ""
            elif kind == _BYTES:
                val = b""
            else:
                val = 0
            object.__setattr__(self, name, val)

    def __repr__(self) -> str:
        shown = []
        for name, kind, repeated, _ in self._FIELDS.values():
            v = getattr(self, name)
            if v in (None, "", b"", 0, 0.0) or (repeated and len(v) == 0):
                continue
            if kind == _BYTES and not repeated:
                v = f"<{len(v)} bytes>"
            elif repeated and len(v) > 4:
                v = f"[{len(v)} items]"
            shown.append(f"{name}={v!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


def _message(name: str, fields: dict):
    cls = type(name, (_Message,), {"__slots__": tuple(f[0] for f in fields.values()),
                                   "_FIELDS": fields})
    return cls


StringStringEntryProto = _message("StringStringEntryProto",
                                  {1: ("key", _STR, False, None),
                                   2: ("value", _STR, False, None)})
OperatorSetIdProto = _message("OperatorSetIdProto", {1: ("domain", _STR, False, None),
                                                     2: ("version", _INT, False, None)})
Dimension = _message("Dimension", {1: ("dim_value", _INT, False, None),
                                   2: ("dim_param", _STR, False, None),
                                   3: ("denotation", _STR, False, None)})
TensorShapeProto = _message("TensorShapeProto", {1: ("dim", _MSG, True, Dimension)})
TensorTypeProto = _message("TensorTypeProto", {1: ("elem_type", _INT, False, None),
                                               2: ("shape", _MSG, False, TensorShapeProto)})
TypeProto = _message("TypeProto", {1: ("tensor_type", _MSG, False, TensorTypeProto),
                                   6: ("denotation", _STR, False, None)})
ValueInfoProto = _message("ValueInfoProto", {1: ("name", _STR, False, None),
                                             2: ("type", _MSG, False, TypeProto),
                                             3: ("doc_string", _STR, False, None)})
TensorProto = _message("TensorProto", {
    1: ("dims", _INT, True, None), 2: ("data_type", _INT, False, None),
    4: ("float_data", _FLOAT, True, None), 5: ("int32_data", _INT, True, None),
    6: ("string_data", _BYTES, True, None), 7: ("int64_data", _INT, True, None),
    8: ("name", _STR, False, None), 9: ("raw_data", _BYTES, False, None),
    10: ("double_data", _DOUBLE, True, None), 11: ("uint64_data", _UINT, True, None),
    12: ("doc_string", _STR, False, None),
    13: ("external_data", _MSG, True, StringStringEntryProto),
    14: ("data_location", _INT, False, None)})
AttributeProto = _message("AttributeProto", {
    1: ("name", _STR, False, None), 2: ("f", _FLOAT, False, None), 3: ("i", _INT, False, None),
    4: ("s", _BYTES, False, None), 5: ("t", _MSG, False, TensorProto),
    6: ("g", _MSG, False, None),  # GraphProto, set below (the types refer to each other)
    7: ("floats", _FLOAT, True, None), 8: ("ints", _INT, True, None),
    9: ("strings", _BYTES, True, None), 10: ("tensors", _MSG, True, TensorProto),
    11: ("graphs", _MSG, True, None), 13: ("doc_string", _STR, False, None),
    20: ("type", _INT, False, None), 21: ("ref_attr_name", _STR, False, None)})
NodeProto = _message("NodeProto", {
    1: ("input", _STR, True, None), 2: ("output", _STR, True, None),
    3: ("name", _STR, False, None), 4: ("op_type", _STR, False, None),
    5: ("attribute", _MSG, True, AttributeProto), 6: ("doc_string", _STR, False, None),
    7: ("domain", _STR, False, None)})
GraphProto = _message("GraphProto", {
    1: ("node", _MSG, True, NodeProto), 2: ("name", _STR, False, None),
    5: ("initializer", _MSG, True, TensorProto), 10: ("doc_string", _STR, False, None),
    11: ("input", _MSG, True, ValueInfoProto), 12: ("output", _MSG, True, ValueInfoProto),
    13: ("value_info", _MSG, True, ValueInfoProto),
    15: ("sparse_initializer", _BYTES, True, None)})  # kept raw: only counted (unsupported)
AttributeProto._FIELDS[6] = ("g", _MSG, False, GraphProto)
AttributeProto._FIELDS[11] = ("graphs", _MSG, True, GraphProto)
ModelProto = _message("ModelProto", {
    1: ("ir_version", _INT, False, None), 2: ("producer_name", _STR, False, None),
    3: ("producer_version", _STR, False, None), 4: ("domain", _STR, False, None),
    5: ("model_version", _INT, False, None), 6: ("doc_string", _STR, False, None),
    7: ("graph", _MSG, False, GraphProto),
    8: ("opset_import", _MSG, True, OperatorSetIdProto),
    14: ("metadata_props", _MSG, True, StringStringEntryProto)})


# ----- decoding -----------------------------------------------------------------------------


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise DecodeError("varint longer than 10 bytes")


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _packed_varints(data: bytes, signed: bool) -> np.ndarray:
    """Every varint in ``data``, vectorised: a varint ends at each byte below 0x80."""
    b = np.frombuffer(data, np.uint8)
    if b.size == 0:
        return np.zeros(0, np.int64 if signed else np.uint64)
    ends = b < 0x80
    if not ends[-1]:
        raise DecodeError("truncated packed varints")
    starts = np.concatenate([[0], np.flatnonzero(ends)[:-1] + 1])
    pos = np.arange(b.size) - np.repeat(starts, np.diff(np.append(starts, b.size)))
    if pos.max() > 9:
        raise DecodeError("varint longer than 10 bytes")
    parts = (b & 0x7F).astype(np.uint64) << (7 * pos).astype(np.uint64)
    vals = np.add.reduceat(parts, starts)
    return vals.view(np.int64) if signed else vals


def _parse(cls, buf, start: int, end: int, depth: int = 0):
    if depth > 64:
        raise DecodeError("messages nested too deeply")
    msg = cls()
    fields = cls._FIELDS
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        spec = fields.get(number)
        if wire == 0:
            raw, pos = _varint(buf, pos, end)
            if spec is None:
                continue
            name, kind, repeated, _ = spec
            if kind not in (_INT, _UINT):
                raise DecodeError(f"{cls.__name__}.{name}: unexpected varint")
            val = raw if kind == _UINT else _signed(raw)
        elif wire == 1 or wire == 5:
            n = 8 if wire == 1 else 4
            if pos + n > end:
                raise DecodeError("truncated fixed-width field")
            chunk = bytes(buf[pos:pos + n])
            pos += n
            if spec is None:
                continue
            name, kind, repeated, _ = spec
            if kind == _FLOAT and wire == 5:
                val = struct.unpack("<f", chunk)[0]
            elif kind == _DOUBLE and wire == 1:
                val = struct.unpack("<d", chunk)[0]
            else:
                raise DecodeError(f"{cls.__name__}.{name}: unexpected fixed-width value")
        elif wire == 2:
            n, pos = _varint(buf, pos, end)
            if pos + n > end:
                raise DecodeError(f"{cls.__name__}: a length-delimited field runs {n} bytes "
                                  f"past the end of its message")
            s, pos = pos, pos + n
            if spec is None:
                continue
            name, kind, repeated, sub = spec
            if kind == _MSG:
                val = _parse(sub, buf, s, pos, depth + 1)
            elif kind == _STR:
                try:
                    val = bytes(buf[s:pos]).decode("utf-8")
                except UnicodeDecodeError:
                    raise DecodeError(f"{cls.__name__}.{name}: invalid UTF-8") from None
            elif kind == _BYTES:
                val = bytes(buf[s:pos])
            elif repeated:  # packed numbers: extend the list at once
                data = bytes(buf[s:pos])
                if kind == _FLOAT:
                    arr = np.frombuffer(data, "<f4").astype(np.float32)
                elif kind == _DOUBLE:
                    arr = np.frombuffer(data, "<f8").astype(np.float64)
                else:
                    arr = _packed_varints(data, kind == _INT)
                cur = getattr(msg, name)
                object.__setattr__(msg, name, arr if len(cur) == 0 else
                                   np.concatenate([np.asarray(cur, arr.dtype), arr]))
                continue
            else:
                raise DecodeError(f"{cls.__name__}.{name}: unexpected length-delimited value")
        else:
            raise DecodeError(f"{cls.__name__}: unsupported wire type {wire} (field {number})")
        if repeated:
            lst = getattr(msg, name)
            if isinstance(lst, np.ndarray):
                lst = list(lst)
                object.__setattr__(msg, name, lst)
            lst.append(val)
        else:
            object.__setattr__(msg, name, val)
    if pos != end:
        raise DecodeError(f"{cls.__name__}: the last field runs past the end of the message")
    return msg


def parse_model(data) -> "ModelProto":
    """Decode the bytes of an ``.onnx`` file into a :class:`ModelProto`-like object."""
    buf = memoryview(bytes(data) if not isinstance(data, (bytes, bytearray)) else data)
    try:
        model = _parse(ModelProto, buf, 0, len(buf))
    except DecodeError as e:
        raise DecodeError(f"not a valid ONNX model ({len(buf)} bytes): {e}") from None
    except RecursionError:
        raise DecodeError("not a valid ONNX model: messages nested too deeply") from None
    if model.graph is None:
        raise DecodeError(f"not a valid ONNX model ({len(buf)} bytes): it has no graph")
    return model
