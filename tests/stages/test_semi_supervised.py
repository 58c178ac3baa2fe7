"""semi_supervised: fine-tuning on the class-balanced label fraction, and only on it."""

from __future__ import annotations

import pytest
import torch

from contrastive_core import build
from contrastive_core.errors import ContrastiveError
from contrastive_plugins.datasets.label_fraction import balanced_subset
from contrastive_plugins.stages import finetune
from tests.stages.conftest import recipe, run

SYNTHETIC = {"type": "synthetic_classes", "num_classes": 3, "train_per_class": 10}


def test_trains_on_the_balanced_subset(registry, exported, tmp_path, monkeypatch):
    seen = []
    original = finetune.train_classifier

    def spy(*args, train_indices=None, **kwargs):
        seen.append(train_indices)
        return original(*args, train_indices=train_indices, **kwargs)

    monkeypatch.setattr(finetune, "train_classifier", spy)
    stage = {
        "type": "semi_supervised",
        "encoder": str(exported),
        "label_fraction": 0.4,
        "subset_seed": 3,
        "epochs": 1,
        "batch_size": 4,
        "data": SYNTHETIC,
    }
    results, output = run(registry, recipe(stage), tmp_path / "run")

    labels = build("dataset", SYNTHETIC, registry=registry).tensors("train")[1]
    (indices,) = seen
    assert torch.equal(indices, balanced_subset(labels, 0.4, seed=3))
    # 40% of 30 labels over 3 classes: 4 per class.
    assert torch.bincount(labels[indices]).tolist() == [4, 4, 4]
    assert results["semi_supervised"]["labelled_examples"] == 12
    assert "fine-tuned on 12 labelled examples" in output
    assert 0 <= results["semi_supervised"]["top1"] <= 1


def test_a_fraction_a_class_cannot_fill_is_a_clear_error(registry, exported, tmp_path):
    """The fixture's 64 training labels hold only 3 images of class 1: 50% needs round(0.5 * 64 / 10) = 3
    per class (fine), 60% needs 4 (impossible)."""
    stage = {"type": "semi_supervised", "encoder": str(exported), "epochs": 1, "batch_size": 8}
    results, _ = run(registry, recipe({**stage, "label_fraction": 0.5}), tmp_path / "ok")
    assert results["semi_supervised"]["labelled_examples"] == 30
    with pytest.raises(ContrastiveError, match=r"stages\[0\].*label_fraction 0.6.*class 1 has 3 examples"):
        run(registry, recipe({**stage, "label_fraction": 0.6}), tmp_path / "bad")
