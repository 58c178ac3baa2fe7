"""stl10 on the binary-format fixtures: column-major planes, 1-based labels, the unlabelled split."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from contrastive_plugins.datasets import stl10
from contrastive_plugins.datasets.errors import DatasetFormatError, DatasetNotFoundError

from .reference import FIXTURES, fashion, rgb96


@pytest.mark.parametrize(
    ("split", "source", "indices"), [("train", "train", range(0, 8)), ("test", "test", range(0, 4))]
)
def test_labelled_splits_are_transposed_back_and_labels_start_at_zero(make_dataset, split, source, indices):
    dataset = make_dataset(type="stl10", root=str(FIXTURES / "stl10"))
    images, labels = dataset.tensors(split)
    fashion_images, fashion_labels = fashion(source)
    assert images.dtype == torch.uint8 and images.shape == (len(indices), 3, 96, 96)
    assert torch.equal(images, torch.from_numpy(np.stack([rgb96(fashion_images[i]) for i in indices])))
    assert labels.tolist() == fashion_labels[list(indices)].tolist()
    assert dataset.num_classes == 10


def test_unlabeled_split_has_label_minus_one(make_dataset):
    dataset = make_dataset(type="stl10", root=str(FIXTURES / "stl10"))
    images, labels = dataset.tensors("unlabeled")
    fashion_images, _ = fashion("train")
    assert torch.equal(images, torch.from_numpy(np.stack([rgb96(fashion_images[i]) for i in range(8, 12)])))
    assert labels.dtype == torch.int64 and labels.tolist() == [-1] * 4
    assert dataset.split("unlabeled")[0][1] == -1
    assert dataset.splits == ("train", "test", "unlabeled")


def test_chunked_reading_gives_the_same_images(make_dataset, monkeypatch):
    whole = make_dataset(type="stl10", root=str(FIXTURES / "stl10")).tensors("train")[0]
    monkeypatch.setattr(stl10, "CHUNK_IMAGES", 3)  # 8 images: chunks of 3, 3 and 2
    chunked = make_dataset(type="stl10", root=str(FIXTURES / "stl10")).tensors("train")[0]
    assert torch.equal(chunked, whole)


def test_missing_files_are_named_with_the_archive_url(make_dataset, tmp_path):
    with pytest.raises(DatasetNotFoundError) as caught:
        make_dataset(type="stl10", root=str(tmp_path)).tensors("test")
    assert caught.value.looked_for == [
        str(tmp_path / "stl10_binary" / "test_X.bin"),
        str(tmp_path / "stl10_binary" / "test_y.bin"),
    ]
    assert "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz" in str(caught.value)
    assert "or set download = true" in str(caught.value)


def test_truncated_images_and_wrong_label_counts_are_reported(make_dataset, tmp_path):
    shutil.copytree(FIXTURES / "stl10", tmp_path, dirs_exist_ok=True)
    folder = tmp_path / "stl10_binary"
    (folder / "test_X.bin").write_bytes((folder / "test_X.bin").read_bytes()[:-5])
    with pytest.raises(
        DatasetFormatError, match="test_X.bin: size 110587 bytes is not a positive multiple of the 27648"
    ):
        make_dataset(type="stl10", root=str(tmp_path)).tensors("test")
    (folder / "train_y.bin").write_bytes(bytes([1, 2, 3]))
    with pytest.raises(DatasetFormatError, match="train_y.bin: 3 labels for 8 images"):
        make_dataset(type="stl10", root=str(tmp_path)).tensors("train")
    (folder / "train_y.bin").write_bytes(bytes([0] * 8))
    with pytest.raises(DatasetFormatError, match=r"labels must lie in 1..10, found 0..0"):
        make_dataset(type="stl10", root=str(tmp_path)).tensors("train")
