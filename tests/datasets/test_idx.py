"""The IDX reader: plain and gzip files, every element type, and clear errors for damaged files."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch

from contrastive_plugins.datasets.errors import DatasetFormatError
from contrastive_plugins.datasets.idx import parse_idx, read_idx

from .reference import FIXTURES, read_uint8_idx

STEMS = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


@pytest.mark.parametrize("stem", STEMS)
def test_plain_and_gzip_files_read_the_same_as_a_struct_parser(stem):
    plain = read_idx(FIXTURES / "fashion_mnist" / "plain" / stem)
    compressed = read_idx(FIXTURES / "fashion_mnist" / "gzip" / f"{stem}.gz")
    expected = read_uint8_idx(FIXTURES / "fashion_mnist" / "plain" / stem)
    assert plain.dtype == torch.uint8
    assert tuple(plain.shape) == expected.shape
    assert torch.equal(plain, torch.from_numpy(expected.copy()))
    assert torch.equal(compressed, plain)


def idx(type_code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


@pytest.mark.parametrize(
    ("type_code", "big_endian", "torch_dtype"),
    [
        (0x08, ">u1", torch.uint8),
        (0x09, ">i1", torch.int8),
        (0x0B, ">i2", torch.int16),
        (0x0C, ">i4", torch.int32),
        (0x0D, ">f4", torch.float32),
        (0x0E, ">f8", torch.float64),
    ],
)
def test_every_element_type_is_decoded_from_big_endian(type_code, big_endian, torch_dtype):
    values = (
        np.array([[-3, 1, 100], [7, 0, 120]]) if "u" not in big_endian else np.array([[3, 1, 250], [7, 0, 9]])
    )
    data = idx(type_code, (2, 3), values.astype(big_endian).tobytes())
    tensor = parse_idx(data)
    assert tensor.dtype == torch_dtype
    assert tensor.tolist() == values.tolist()


def test_gzip_is_recognised_by_content_not_by_name(tmp_path):
    path = tmp_path / "labels-without-suffix"
    path.write_bytes(gzip.compress(idx(0x08, (3,), bytes([4, 5, 6]))))
    assert read_idx(path).tolist() == [4, 5, 6]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "shorter than the 4-byte IDX magic number"),
        (b"\x1f\x00\x08\x01" + bytes(8), "not an IDX file"),
        (b"\x00\x00\x07\x01" + bytes(8), "unknown IDX element type 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (
            b"\x00\x00\x08\x03" + struct.pack(">I", 2),
            "declares 3 dimensions (16 bytes) but the file has 8 bytes",
        ),
        (
            idx(0x08, (2, 28, 28), bytes(1000)),
            "truncated: dimensions (2, 28, 28) of uint8 need 1568 data bytes, the file has 1000",
        ),
        (idx(0x0B, (3,), bytes(8)), "has trailing bytes"),
    ],
)
def test_damaged_files_raise_a_format_error_naming_the_file(tmp_path, data, message):
    path = tmp_path / "damaged-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(DatasetFormatError, match="damaged-idx3-ubyte") as caught:
        read_idx(path)
    assert message in str(caught.value)


def test_a_partially_downloaded_gzip_file_is_reported(tmp_path):
    source = (FIXTURES / "fashion_mnist" / "gzip" / "train-images-idx3-ubyte.gz").read_bytes()
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(source[: len(source) // 2])
    with pytest.raises(DatasetFormatError, match=r"train-images-idx3-ubyte\.gz: broken gzip stream"):
        read_idx(path)
