"""Raw tensor bytes, shared by the REST binary extension and gRPC's raw contents.

Fixed-size elements are little-endian and row-major (read without a copy through
``np.frombuffer``); BYTES elements are each a 4-byte little-endian length and the bytes.
Sizes are checked before anything is read, so a lying size never over-reads.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence

import numpy as np

from maas.errors import InvalidInputError
from maas.protocol.datatypes import numpy_dtype

__all__ = ["array_from_raw", "raw_from_array"]

_LENGTH = struct.Struct("<I")


def array_from_raw(
    raw: bytes | memoryview, datatype: str, shape: Sequence[int], where: str
) -> np.ndarray:
    """The tensor of ``shape`` held in ``raw``; ``InvalidInputError`` naming ``where`` if not."""
    count = 1
    for dim in shape:
        count *= dim
    if datatype == "BYTES":
        return _bytes_array(raw, count, list(shape), where).reshape(shape)
    dtype = numpy_dtype(datatype).newbyteorder("<")
    expected = count * dtype.itemsize
    if len(raw) != expected:
        raise InvalidInputError(
            f"{where}: shape {list(shape)} of {datatype} needs {expected} bytes, {len(raw)} given"
        )
    array = np.frombuffer(raw, dtype=dtype)
    if datatype == "BOOL" and array.size and array.view(np.uint8).max() > 1:
        raise InvalidInputError(f"{where}: BOOL bytes must be 0 or 1")
    return array.reshape(shape)


def _bytes_array(raw: bytes | memoryview, count: int, shape: list[int], where: str) -> np.ndarray:
    offset, end = 0, len(raw)
    if count * _LENGTH.size > end:  # before allocating: a shape must not size the array alone
        raise InvalidInputError(
            f"{where}: shape {shape} needs {count} BYTES elements, each with a 4-byte length "
            f"prefix, but the tensor has {end} bytes"
        )
    array = np.empty(count, dtype=object)
    for index in range(count):
        if offset + 4 > end:
            raise InvalidInputError(
                f"{where}: shape {shape} needs {count} BYTES elements; "
                f"element {index} has no complete 4-byte length prefix"
            )
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInputError(
                f"{where}: BYTES element {index} of {length} bytes runs past the tensor's "
                f"{end} bytes"
            )
        array[index] = bytes(raw[offset : offset + length])
        offset += length
    if offset != end:
        raise InvalidInputError(
            f"{where}: {end - offset} bytes follow the {count} BYTES elements of shape {shape}"
        )
    return array


def raw_from_array(data: np.ndarray, datatype: str) -> bytes | np.ndarray:
    """The wire bytes of a tensor: a C-contiguous little-endian array, or length-prefixed
    BYTES (str elements as UTF-8). An array is returned as is, so a join copies it once."""
    if datatype == "BYTES":
        return b"".join(_length_prefixed(data.ravel()))
    dtype = numpy_dtype(datatype).newbyteorder("<")
    return np.ascontiguousarray(data, dtype=dtype)


def _length_prefixed(elements: np.ndarray) -> Iterator[bytes]:
    for element in elements:
        value = element.encode("utf-8") if isinstance(element, str) else bytes(element)
        yield _LENGTH.pack(len(value))
        yield value
