"""The plugin registers every dataset with valid, documented params, as the registry requires."""

from __future__ import annotations

import pytest

from contrastive_core import Dataset, RecipeError


def test_all_datasets_are_registered(dataset_registry):
    assert dataset_registry.names("dataset") == [
        "cifar10",
        "cifar100",
        "fashion_mnist",
        "image_folder",
        "mnist",
        "stl10",
    ]
    for registration in dataset_registry.registrations("dataset"):
        assert issubclass(registration.cls, Dataset)
        assert registration.cls.summary()


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100", "stl10", "image_folder"])
def test_root_is_required_where_no_system_copy_exists(make_dataset, name):
    with pytest.raises(RecipeError, match="root"):
        make_dataset(type=name)


def test_unknown_keys_are_refused(make_dataset):
    with pytest.raises(RecipeError, match="rot"):
        make_dataset(type="cifar10", rot="/data")


def test_building_reads_nothing(make_dataset, tmp_path):
    # Missing data only matters when a split is used, so recipes validate without the data present.
    dataset = make_dataset(type="stl10", root=str(tmp_path / "nowhere"), download=False)
    assert dataset.num_classes == 10 and dataset.splits == ("train", "test", "unlabeled")
