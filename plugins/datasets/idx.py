"""Reader of the IDX file format of MNIST and Fashion-MNIST, plain or gzip-compressed.

Layout (LeCun et al., "The MNIST database of handwritten digits"; all integers big-endian)::

    bytes 0-1   0x00 0x00
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions D
    4*D bytes   the size of each dimension, uint32 big-endian
    then        prod(sizes) elements, row-major (last index fastest), big-endian

``train-images-idx3-ubyte`` is (60000, 28, 28) uint8 and ``train-labels-idx1-ubyte`` is (60000,) uint8.
Every inconsistency (wrong magic, unknown type, short header, missing or extra data bytes, broken gzip
stream) raises :class:`DatasetFormatError` naming the file.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from .errors import DatasetFormatError

#: IDX element type code -> big-endian numpy dtype.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: The first two bytes of every gzip stream (RFC 1952).
GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path) -> torch.Tensor:
    """The array stored in the IDX file ``path`` as a tensor of its element type, native byte order.

    The file may be gzip-compressed whatever its name: compression is recognised by the gzip magic
    bytes, not by the ``.gz`` suffix.
    """
    raw = Path(path).read_bytes()
    if raw.startswith(GZIP_MAGIC):
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            # EOFError: the stream stops early (a partial download); OSError/zlib.error: damaged data.
            raise DatasetFormatError(path, f"broken gzip stream ({error})") from None
    return parse_idx(raw, source=str(path))


def parse_idx(data: bytes, *, source: str = "<bytes>") -> torch.Tensor:
    """Decode the uncompressed IDX bytes ``data``; ``source`` names the file in error messages."""
    if len(data) < 4:
        raise DatasetFormatError(source, f"only {len(data)} bytes, shorter than the 4-byte IDX magic number")
    if data[0] != 0 or data[1] != 0:
        raise DatasetFormatError(
            source, f"magic number starts with 0x{data[0]:02x}{data[1]:02x}, not 0x0000: not an IDX file"
        )
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_TYPES:
        known = ", ".join(f"0x{code:02x}" for code in IDX_TYPES)
        raise DatasetFormatError(source, f"unknown IDX element type 0x{type_code:02x} (known: {known})")
    if ndim == 0:
        raise DatasetFormatError(source, "IDX header declares 0 dimensions")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetFormatError(
            source,
            f"header declares {ndim} dimensions ({header_size} bytes) but the file has {len(data)} bytes",
        )
    shape = struct.unpack(f">{ndim}I", data[4:header_size])
    dtype = IDX_TYPES[type_code]
    count = math.prod(shape)
    expected = count * dtype.itemsize
    actual = len(data) - header_size
    if actual != expected:
        kind = "truncated" if actual < expected else "has trailing bytes"
        raise DatasetFormatError(
            source,
            f"{kind}: dimensions {tuple(shape)} of {dtype.name} need {expected} data bytes, the file has {actual}",
        )
    array = np.frombuffer(data, dtype=dtype, count=count, offset=header_size).reshape(shape)
    # astype to the native byte order copies, which also makes the array writable for torch.
    return torch.from_numpy(array.astype(dtype.newbyteorder("=")))
