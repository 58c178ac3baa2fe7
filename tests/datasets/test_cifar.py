"""cifar10 and cifar100 on the binary-format fixtures: pixel planes, label bytes, missing and bad files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from contrastive_core import RecipeError
from contrastive_plugins.datasets.errors import DatasetFormatError, DatasetNotFoundError

from .reference import FIXTURES, fashion, rgb32


def expected(split: str, count: int) -> tuple[torch.Tensor, np.ndarray]:
    images, labels = fashion(split)
    return torch.from_numpy(np.stack([rgb32(image) for image in images[:count]])), labels[:count]


@pytest.mark.parametrize(("split", "count"), [("train", 40), ("test", 16)])
def test_cifar10_reads_all_batches_in_order(make_dataset, split, count):
    dataset = make_dataset(type="cifar10", root=str(FIXTURES / "cifar10"))
    images, labels = dataset.tensors(split)
    expected_images, expected_labels = expected(split, count)
    assert images.dtype == torch.uint8 and images.shape == (count, 3, 32, 32)
    assert labels.dtype == torch.int64
    assert torch.equal(images, expected_images)
    assert labels.tolist() == expected_labels.tolist()
    assert dataset.num_classes == 10
    image, label = dataset.split(split)[count - 1]
    assert torch.equal(image, expected_images[-1]) and label == int(expected_labels[-1])


@pytest.mark.parametrize(("label", "num_classes"), [("fine", 100), ("coarse", 20)])
@pytest.mark.parametrize(("split", "count"), [("train", 64), ("test", 32)])
def test_cifar100_reads_the_fine_or_coarse_label_byte(make_dataset, label, num_classes, split, count):
    dataset = make_dataset(type="cifar100", root=str(FIXTURES / "cifar100"), label=label)
    images, labels = dataset.tensors(split)
    expected_images, fashion_labels = expected(split, count)
    fine = fashion_labels.astype(np.int64) * 10 + np.arange(count) % 10
    assert torch.equal(images, expected_images)
    assert labels.tolist() == (fine if label == "fine" else fine // 5).tolist()
    assert dataset.num_classes == num_classes


def test_cifar100_label_must_be_fine_or_coarse(make_dataset):
    with pytest.raises(RecipeError, match="label"):
        make_dataset(type="cifar100", root="x", label="superclass")


@pytest.mark.parametrize(
    ("name", "files", "archive"),
    [
        (
            "cifar10",
            ["cifar-10-batches-bin/data_batch_1.bin", "cifar-10-batches-bin/data_batch_5.bin"],
            "cifar-10-binary.tar.gz",
        ),
        ("cifar100", ["cifar-100-binary/train.bin"], "cifar-100-binary.tar.gz"),
    ],
)
def test_missing_files_are_named_with_the_binary_archive_url(make_dataset, tmp_path, name, files, archive):
    with pytest.raises(DatasetNotFoundError) as caught:
        make_dataset(type=name, root=str(tmp_path)).tensors("train")
    message = str(caught.value)
    for file in files:
        assert str(tmp_path / file) in caught.value.looked_for
    assert f"https://www.cs.toronto.edu/~kriz/{archive}" in message
    assert "or set download = true" in message
    assert "python version is not read" in message and "binary version is needed" in message


def test_a_python_version_next_to_root_is_pointed_out(make_dataset, tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"a pickle")
    with pytest.raises(
        DatasetNotFoundError, match=r"python version \(.*cifar-10-batches-py is there\) is not read"
    ):
        make_dataset(type="cifar10", root=str(tmp_path)).tensors("test")


def copy_cifar10(tmp_path):
    shutil.copytree(FIXTURES / "cifar10", tmp_path, dirs_exist_ok=True)
    return tmp_path / "cifar-10-batches-bin" / "test_batch.bin"


def test_a_partial_record_is_reported(make_dataset, tmp_path):
    test_batch = copy_cifar10(tmp_path)
    test_batch.write_bytes(test_batch.read_bytes()[:-1])
    with pytest.raises(
        DatasetFormatError, match="test_batch.bin: size 49167 bytes is not a positive multiple of the 3073"
    ):
        make_dataset(type="cifar10", root=str(tmp_path)).tensors("test")


def test_a_label_byte_out_of_range_is_reported(make_dataset, tmp_path):
    test_batch = copy_cifar10(tmp_path)
    data = bytearray(test_batch.read_bytes())
    data[3 * 3073] = 10  # the label byte of record 3
    test_batch.write_bytes(bytes(data))
    with pytest.raises(DatasetFormatError, match="record 3 has label byte 10 outside 0..9"):
        make_dataset(type="cifar10", root=str(tmp_path)).tensors("test")
