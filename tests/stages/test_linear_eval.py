"""linear_eval: its accuracy recomputed from the saved classifier, the standardisation, learning,
the L2 penalty, and the frozen-encoder check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from contrastive_core import build
from contrastive_plugins.stages import features
from contrastive_plugins.stages.frozen_encoder import EncoderChangedError
from contrastive_plugins.stages.linear_eval import train_linear_classifier
from tests.stages.conftest import fashion_data, recipe, run
from tests.stages.reference import plain_features, plain_top_k

FAST = {"epochs": 20, "batch_size": 16}


def test_reported_accuracy_is_that_of_the_saved_classifier(registry, exported, tmp_path):
    results, _ = run(
        registry, recipe({"type": "linear_eval", "encoder": str(exported), **FAST}), tmp_path / "run"
    )
    saved = tmp_path / "run" / "linear_eval" / "classifier.safetensors"
    tensors = load_file(saved)
    with safe_open(saved, "pt") as handle:
        assert handle.metadata() == {"feature_norm": "standardize"}

    dataset = build("dataset", fashion_data(), registry=registry)
    train = plain_features(registry, exported, dataset.tensors("train")[0])
    test_images, test_labels = dataset.tensors("test")
    test = plain_features(registry, exported, test_images)
    # "standardize" uses the training features' mean and (unbiased) std per dimension.
    np.testing.assert_allclose(tensors["feature_mean"].numpy(), train.mean(axis=0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        tensors["feature_std"].numpy(), train.std(axis=0, ddof=1), rtol=1e-4, atol=1e-5
    )
    standardized = (test - tensors["feature_mean"].double().numpy()) / tensors["feature_std"].double().numpy()
    logits = standardized @ tensors["weight"].double().numpy().T + tensors["bias"].double().numpy()
    assert results["linear_eval"]["top1"] == pytest.approx(plain_top_k(logits, test_labels.numpy(), 1))
    assert results["linear_eval"]["top5"] == pytest.approx(plain_top_k(logits, test_labels.numpy(), 5))


def test_separable_classes_are_learned_and_random_init_is_reported(registry, exported, tmp_path):
    data = {"type": "synthetic_classes", "num_classes": 3}
    stage = {
        "type": "linear_eval",
        "encoder": str(exported),
        "random_init_baseline": True,
        "data": data,
        **FAST,
    }
    results, _ = run(registry, recipe(stage), tmp_path / "run")
    metrics = results["linear_eval"]
    assert set(metrics) == {"top1", "top5", "random_init_top1", "random_init_top5", "protocol"}
    assert metrics["protocol"] == "precomputed"
    assert metrics["top1"] == 1.0
    assert (tmp_path / "run" / "linear_eval" / "random_init_classifier.safetensors").is_file()
    done = (tmp_path / "run" / "linear_eval" / "stage.json").read_text()
    assert '"classifier": "classifier.safetensors"' in done and "random_init_classifier" in done


def test_weight_decay_is_the_l2_penalty_on_the_weights():
    generator = torch.Generator().manual_seed(0)
    features_ = torch.randn(64, 5, generator=generator)
    labels = (features_[:, 0] > 0).long()
    options = {"epochs": 30, "batch_size": 16, "lr": 0.1, "momentum": 0.9, "seed": 0}
    free = train_linear_classifier(features_, labels, 2, weight_decay=0.0, **options)
    penalised = train_linear_classifier(features_, labels, 2, weight_decay=1.0, **options)
    assert penalised.weight.norm() < 0.2 * free.weight.norm()
    # Same seed, same settings: the same classifier (the shuffles and initialisation are seeded).
    again = train_linear_classifier(features_, labels, 2, weight_decay=0.0, **options)
    assert torch.equal(free.weight, again.weight)


def test_a_changed_encoder_fails_loudly(registry, exported, tmp_path, monkeypatch):
    original = features.compute_features

    def perturbing(encoder, *args, **kwargs):
        result = original(encoder, *args, **kwargs)
        batch_norm = next(m for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
        batch_norm.running_mean += 0.01  # what a forward pass in training mode would do
        return result

    monkeypatch.setattr(features, "compute_features", perturbing)
    with pytest.raises(EncoderChangedError, match=r"running_mean"):
        run(registry, recipe({"type": "linear_eval", "encoder": str(exported), **FAST}), tmp_path / "run")
