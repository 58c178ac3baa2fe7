"""fashion_mnist and mnist on the IDX fixtures: contents, caching, splits and missing or bad files."""

from __future__ import annotations

import shutil

import pytest
import torch

from contrastive_plugins.datasets.errors import DatasetFormatError, DatasetNotFoundError, UnknownSplitError

from .reference import FIXTURES, fashion

FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
@pytest.mark.parametrize("storage", ["plain", "gzip"])
@pytest.mark.parametrize(("split", "count"), [("train", 64), ("test", 32)])
def test_splits_hold_the_idx_images_and_labels(make_dataset, name, storage, split, count):
    dataset = make_dataset(type=name, root=str(FIXTURES / "fashion_mnist" / storage))
    images, labels = dataset.tensors(split)
    expected_images, expected_labels = fashion(split)
    assert images.dtype == torch.uint8 and images.shape == (count, 1, 28, 28)
    assert labels.dtype == torch.int64 and labels.shape == (count,)
    assert torch.equal(images[:, 0], torch.from_numpy(expected_images.copy()))
    assert labels.tolist() == expected_labels.tolist()
    assert dataset.num_classes == 10
    assert dataset.splits == ("train", "test")


def test_split_items_are_chw_images_with_int_labels_and_tensors_are_cached(make_dataset):
    dataset = make_dataset(type="fashion_mnist", root=str(FIXTURES / "fashion_mnist" / "gzip"))
    split = dataset.split("test")
    image, label = split[5]
    expected_images, expected_labels = fashion("test")
    assert len(split) == 32
    assert image.shape == (1, 28, 28) and image.dtype == torch.uint8
    assert type(label) is int and label == int(expected_labels[5])
    assert torch.equal(image[0], torch.from_numpy(expected_images[5].copy()))
    assert dataset.tensors("test")[0] is dataset.tensors("test")[0]


def test_unknown_split_lists_the_valid_ones(make_dataset):
    dataset = make_dataset(type="fashion_mnist", root=str(FIXTURES / "fashion_mnist" / "plain"))
    with pytest.raises(
        UnknownSplitError, match=r"has no split 'tset'; did you mean 'test'\? Valid splits: train, test"
    ):
        dataset.split("tset")


def test_fashion_mnist_defaults_to_the_debian_package_folder(make_dataset):
    assert str(make_dataset(type="fashion_mnist").root) == "/usr/share/datasets/fashion-mnist"


def test_missing_fashion_mnist_names_each_file_and_the_debian_package(make_dataset, tmp_path):
    dataset = make_dataset(type="fashion_mnist", root=str(tmp_path))
    with pytest.raises(DatasetNotFoundError) as caught:
        dataset.tensors("train")
    message = str(caught.value)
    for stem in FILES[:2]:
        assert f"{tmp_path / stem} or {tmp_path / stem}.gz" in message
    assert "t10k" not in message  # only the files of the requested split
    assert "apt install dataset-fashion-mnist" in message
    assert "download = true" in message


def test_missing_mnist_names_the_url_and_download_option(make_dataset, tmp_path):
    shutil.copy(FIXTURES / "fashion_mnist" / "plain" / "t10k-images-idx3-ubyte", tmp_path)
    dataset = make_dataset(type="mnist", root=str(tmp_path), download=False)
    with pytest.raises(DatasetNotFoundError) as caught:
        dataset.split("test")
    assert caught.value.looked_for == [
        f"{tmp_path}/t10k-labels-idx1-ubyte or {tmp_path}/t10k-labels-idx1-ubyte.gz"
    ]
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in str(caught.value)
    assert "or set download = true" in str(caught.value)


def test_labels_of_another_split_are_reported(make_dataset, tmp_path):
    plain = FIXTURES / "fashion_mnist" / "plain"
    shutil.copy(plain / "train-images-idx3-ubyte", tmp_path)
    shutil.copy(plain / "t10k-labels-idx1-ubyte", tmp_path / "train-labels-idx1-ubyte")
    with pytest.raises(DatasetFormatError, match="32 labels for the 64 images of train-images-idx3-ubyte"):
        make_dataset(type="mnist", root=str(tmp_path)).tensors("train")


def test_a_label_file_in_place_of_the_images_is_reported(make_dataset, tmp_path):
    plain = FIXTURES / "fashion_mnist" / "plain"
    shutil.copy(plain / "train-labels-idx1-ubyte", tmp_path / "train-images-idx3-ubyte")
    shutil.copy(plain / "train-labels-idx1-ubyte", tmp_path)
    with pytest.raises(
        DatasetFormatError, match=r"expected uint8 images of shape \(N, 28, 28\), found torch.uint8 \(64,\)"
    ):
        make_dataset(type="mnist", root=str(tmp_path)).tensors("train")


def test_a_truncated_image_file_is_reported_with_its_path(make_dataset, tmp_path):
    plain = FIXTURES / "fashion_mnist" / "plain"
    data = (plain / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(data[:-100])
    shutil.copy(plain / "t10k-labels-idx1-ubyte", tmp_path)
    with pytest.raises(DatasetFormatError, match=f"{tmp_path}/t10k-images-idx3-ubyte: truncated"):
        make_dataset(type="fashion_mnist", root=str(tmp_path)).tensors("test")
