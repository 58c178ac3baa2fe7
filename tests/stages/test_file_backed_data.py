"""Datasets read from files (image folders) go through DataLoader workers instead of device tensors;
and the run's precision (bf16 autocast on the CPU) reaches evaluation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from contrastive_core import ContrastiveError, build
from tests.stages.conftest import export_random_encoder, recipe, run
from tests.stages.reference import plain_features, plain_knn_votes, plain_top_k

FOLDER = {
    "type": "image_folder",
    "root": str(Path(__file__).resolve().parents[1] / "fixtures" / "image_folder"),
    "image_size": 16,
}
RGB = {"type": "small_cnn", "in_channels": 3, "widths": [4], "feature_dim": 8}


@pytest.fixture
def rgb_encoder(registry, tmp_path):
    return export_random_encoder(registry, tmp_path / "rgb", seed=4, params=RGB)


def test_knn_on_an_image_folder_matches_the_plain_vote(registry, rgb_encoder, tmp_path):
    stage = {"type": "knn_eval", "encoder": str(rgb_encoder), "k": 3, "num_workers": 0, "eval_batch_size": 4}
    results, _ = run(registry, recipe(stage, data=FOLDER), tmp_path / "run")

    dataset = build("dataset", FOLDER, registry=registry)
    splits = {}
    for name in ("train", "test"):
        items = [dataset.split(name)[i] for i in range(len(dataset.split(name)))]
        splits[name] = (
            torch.stack([image for image, _ in items]),
            torch.tensor([label for _, label in items]),
        )
    train = plain_features(registry, rgb_encoder, splits["train"][0])
    test = plain_features(registry, rgb_encoder, splits["test"][0])
    votes = plain_knn_votes(train, splits["train"][1].numpy(), test, 3, k=3, temperature=0.1)
    assert results["knn_eval"]["top1"] == pytest.approx(plain_top_k(votes, splits["test"][1].numpy(), 1))


def test_a_split_without_tensors_or_labels_attribute_gives_the_same_result(registry, exported, tmp_path):
    data = {"type": "synthetic_classes", "num_classes": 3}
    stage = {"type": "knn_eval", "encoder": str(exported), "k": 5, "num_workers": 0, "data": data}
    in_memory, _ = run(registry, recipe(stage), tmp_path / "a")
    item_by_item, _ = run(registry, recipe({**stage, "data": {**data, "in_memory": False}}), tmp_path / "b")
    assert item_by_item == in_memory


def test_finetune_reads_batches_through_workers(registry, rgb_encoder, tmp_path):
    stage = {"type": "finetune", "encoder": str(rgb_encoder), "epochs": 2, "batch_size": 4, "num_workers": 0}
    results, output = run(registry, recipe(stage, data=FOLDER), tmp_path / "run")
    assert "finetune epoch 2/2" in output and 0 <= results["finetune"]["top1"] <= 1


def test_bf16_precision_runs_every_kind_of_evaluation(registry, exported, tmp_path):
    data = {"type": "synthetic_classes", "num_classes": 3}
    stages = [
        {"type": "knn_eval", "encoder": str(exported), "data": data},
        {"type": "linear_eval", "encoder": str(exported), "epochs": 5, "batch_size": 8, "data": data},
        {"type": "finetune", "encoder": str(exported), "epochs": 1, "batch_size": 8, "data": data},
    ]
    document = recipe(*stages)
    document["run"]["precision"] = "bf16"
    results, _ = run(registry, document, tmp_path / "run")
    assert all(0 <= metrics["top1"] <= 1 for metrics in results.values())


@pytest.mark.parametrize("decode", ["workers", "device"])
def test_an_unreadable_image_in_an_evaluation_split_is_a_clean_error_from_workers(
    registry, rgb_encoder, tmp_path, decode
):
    """Evaluation reads image folders as pretraining does: an unreadable file met by a loader worker
    stops the stage with the dataset's own error naming the file, not a DataLoader worker traceback."""
    from contrastive_plugins.datasets.errors import BadImageError

    bad = {**FOLDER, "root": FOLDER["root"] + "_bad", "test_dir": "train", "decode": decode}
    stage = {"type": "knn_eval", "encoder": str(rgb_encoder), "k": 1, "num_workers": 2, "eval_batch_size": 4}
    stage["data"] = bad
    with pytest.raises(ContrastiveError) as raised:
        run(registry, recipe(stage, data=FOLDER), tmp_path / "run")
    assert not isinstance(raised.value, RuntimeError)
    assert "image_folder_bad/train/bag/" in str(raised.value)
    assert isinstance(raised.value, BadImageError) or "worker" not in str(raised.value).lower()
