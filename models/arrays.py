"""PostgreSQL's binary ``real[]`` format (what ``array_send`` returns), decoded by numpy.

Snapshot vectors are read this way so that a 288 × 1000 heatmap never becomes Python floats one
by one.
"""

from __future__ import annotations

import struct

import numpy as np

_HEADER = struct.Struct(">iii")  # ndim, has-nulls flag, element type oid
_DIM = struct.Struct(">ii")  # length, lower bound
_FLOAT4_OID = 700
_ELEMENT = np.dtype([("length", ">i4"), ("value", ">f4")])


def decode_float4_array(buffer: bytes) -> np.ndarray:
    """Decode PostgreSQL's binary ``real[]`` format (``array_send``) into float32, no Python loop.

    NULL elements become NaN.
    """
    ndim, _flags, oid = _HEADER.unpack_from(buffer, 0)
    if ndim == 0:
        return np.zeros(0, np.float32)
    if ndim != 1 or oid != _FLOAT4_OID:
        raise ValueError(f"expected a 1-d real[] (got ndim={ndim}, oid={oid})")
    length, _lower = _DIM.unpack_from(buffer, _HEADER.size)
    body = memoryview(buffer)[_HEADER.size + _DIM.size :]
    if len(body) == length * _ELEMENT.itemsize:  # no NULLs: fixed-width records
        elements = np.frombuffer(body, dtype=_ELEMENT, count=length)
        return elements["value"].astype(np.float32)
    out = np.full(length, np.nan, np.float32)  # NULLs present: walk the variable records
    offset = 0
    for i in range(length):
        (size,) = struct.unpack_from(">i", body, offset)
        offset += 4
        if size >= 0:
            (out[i],) = struct.unpack_from(">f", body, offset)
            offset += size
    return out
