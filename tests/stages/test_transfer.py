"""The ``data`` param: evaluating on another dataset than the recipe's, and its errors."""

from __future__ import annotations

import pytest

from contrastive_core import build
from contrastive_core.errors import RecipeError
from contrastive_plugins.stages.dataset_source import NoDatasetError
from contrastive_plugins.stages.labelled_split import UnlabelledSplitError
from tests.stages.conftest import recipe, run
from tests.stages.reference import plain_features, plain_knn_votes, plain_top_k

SYNTHETIC = {"type": "synthetic_classes", "num_classes": 4, "size": 10}


def test_a_stage_evaluates_its_own_dataset(registry, exported, tmp_path):
    """The recipe's data is Fashion-MNIST (10 classes, 28x28); the stage's is synthetic (4 classes)."""
    stage = {"type": "knn_eval", "encoder": str(exported), "k": 3, "data": SYNTHETIC}
    results, _ = run(registry, recipe(stage), tmp_path / "run")

    dataset = build("dataset", SYNTHETIC, registry=registry)
    (train_images, train_labels), (test_images, test_labels) = (
        dataset.tensors("train"),
        dataset.tensors("test"),
    )
    train = plain_features(registry, exported, train_images)
    test = plain_features(registry, exported, test_images)
    votes = plain_knn_votes(train, train_labels.numpy(), test, 4, k=3, temperature=0.1)
    assert results["knn_eval"]["top1"] == pytest.approx(plain_top_k(votes, test_labels.numpy(), 1))
    assert results["knn_eval"]["top5"] == 1.0  # 4 classes: every label is in the top 5


def test_an_invalid_data_table_names_the_stage_key_path(registry, exported, tmp_path):
    bad_value = {"type": "knn_eval", "encoder": str(exported), "data": {**SYNTHETIC, "num_classes": 0}}
    with pytest.raises(RecipeError, match=r"stages\[1\]\.data\.num_classes: .*greater than or equal to 1"):
        run(registry, recipe({"type": "knn_eval", "encoder": str(exported)}, bad_value), tmp_path / "a")
    unknown = {"type": "knn_eval", "encoder": str(exported), "data": {"type": "fashoin_mnist"}}
    with pytest.raises(
        RecipeError, match=r"stages\[0\]\.data\.type: unknown dataset 'fashoin_mnist'; did you mean"
    ):
        run(registry, recipe(unknown), tmp_path / "b")


def test_no_dataset_at_all_is_a_clear_error(registry, exported, tmp_path):
    no_data = recipe({"type": "knn_eval", "encoder": str(exported)})
    del no_data["data"]
    with pytest.raises(NoDatasetError, match=r"stages\[0\] \(knn_eval\): no dataset .* no \[data\] section"):
        run(registry, no_data, tmp_path / "run")


def test_an_unlabelled_split_is_refused(registry, exported, tmp_path):
    stage = {"type": "knn_eval", "encoder": str(exported), "data": SYNTHETIC, "train_split": "unlabeled"}
    with pytest.raises(
        UnlabelledSplitError, match="split 'unlabeled' of dataset 'synthetic_classes' has no labels"
    ):
        run(registry, recipe(stage), tmp_path / "run")
