"""Expected values for the dataset tests, computed independently of the plugin's readers.

The fixtures (tests/fixtures/README.md) are derived from the Fashion-MNIST IDX fixture files; these
helpers read those files with plain ``struct``/``gzip``/numpy and redo the documented colour conversion,
so a test compares a loader with a second, separate implementation of the format.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FASHION_PLAIN = FIXTURES / "fashion_mnist" / "plain"


def read_uint8_idx(path: Path) -> np.ndarray:
    """A uint8 IDX file (plain or .gz) parsed with struct: magic 0x00000803/0x00000801, then dims."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0 and type_code == 0x08
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim :], dtype=np.uint8).reshape(shape)


def fashion(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The fixture's Fashion-MNIST images (N, 28, 28) and labels (N,) of ``split`` ("train"/"test")."""
    prefix = "train" if split == "train" else "t10k"
    return (
        read_uint8_idx(FASHION_PLAIN / f"{prefix}-images-idx3-ubyte"),
        read_uint8_idx(FASHION_PLAIN / f"{prefix}-labels-idx1-ubyte"),
    )


def rgb32(image: np.ndarray) -> np.ndarray:
    """(3, 32, 32): padded by 2; planes image, 255 - image, image transposed (the fixture rule)."""
    padded = np.zeros((32, 32), dtype=np.uint8)
    padded[2:30, 2:30] = image
    return np.stack([padded, 255 - padded, padded.T])


def rgb96(image: np.ndarray) -> np.ndarray:
    """(3, 96, 96): :func:`rgb32` with every pixel repeated 3x3."""
    return np.kron(rgb32(image), np.ones((1, 3, 3), dtype=np.uint8))
