"""linear_eval with ``protocol = "augmented"`` (the paper's): a fresh crop + flip of every training image
at every step through the frozen encoder, raw features, a zero-initialised classifier, Nesterov SGD."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from contrastive_core import RecipeError, build, validate_recipe
from contrastive_core.engine import load_encoder
from contrastive_plugins.stages import classifier_training
from contrastive_plugins.stages.linear_eval import LinearEvalParams
from tests.stages.conftest import fashion_data, recipe, run
from tests.stages.reference import plain_features, plain_top_k

AUGMENTED = {"type": "linear_eval", "protocol": "augmented", "epochs": 3, "batch_size": 16}


def test_trains_on_fresh_crops_leaves_the_encoder_untouched_and_reports_the_saved_classifier(
    registry, exported, tmp_path, monkeypatch
):
    seen: list[torch.Tensor] = []
    forward = classifier_training.FrozenEncoderClassifier.forward

    def recording(self, images):
        if self.training:
            seen.append(images.detach().clone())
        return forward(self, images)

    monkeypatch.setattr(classifier_training.FrozenEncoderClassifier, "forward", recording)
    before = {
        name: tensor.clone()
        for name, tensor in load_encoder(exported, registry=registry).state_dict().items()
    }
    results, output = run(registry, recipe({**AUGMENTED, "encoder": str(exported)}), tmp_path / "run")
    metrics = results["linear_eval"]
    assert metrics["protocol"] == "augmented"

    # 64 training images, batch 16: 4 steps per epoch; the same images in another order each epoch,
    # and never the fixed eval view: every step's views are new random crops.
    assert len(seen) == 12
    assert all(batch.shape == (16, 1, 28, 28) for batch in seen)
    dataset = build("dataset", fashion_data(), registry=registry)
    train_images = dataset.tensors("train")[0].float() / 255
    views = torch.cat(seen).flatten(1)  # (192, 784)
    # Distance of each view to its nearest training image: 0 only for an uncropped, unflipped view.
    nearest = torch.cdist(views, train_images.flatten(1)).min(dim=1).values
    assert (nearest > 1e-3).float().mean() > 0.9

    # The encoder is exactly the exported one afterwards (the stage checks it too).
    after = load_encoder(exported, registry=registry).state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)

    # Raw features (no standardisation) and the saved classifier give the reported accuracy.
    saved = tmp_path / "run" / "linear_eval" / "classifier.safetensors"
    tensors = load_file(saved)
    assert set(tensors) == {"weight", "bias"}
    with safe_open(saved, "pt") as handle:
        assert handle.metadata() == {"feature_norm": "none"}
    test_images, test_labels = dataset.tensors("test")
    logits = plain_features(registry, exported, test_images) @ tensors["weight"].double().numpy().T
    logits += tensors["bias"].double().numpy()
    assert metrics["top1"] == pytest.approx(plain_top_k(logits, test_labels.numpy(), 1))
    assert metrics["top5"] == pytest.approx(plain_top_k(logits, test_labels.numpy(), 5))
    assert (tmp_path / "run" / "linear_eval" / "checkpoints" / "encoder").is_dir()


def test_the_classifier_starts_at_zero_with_nesterov_and_decays_only_its_weight(registry, exported):
    encoder = load_encoder(exported, registry=registry)
    model = classifier_training.FrozenEncoderClassifier(encoder, 10)
    assert not model.classifier.weight.any() and not model.classifier.bias.any()
    model.train()
    assert model.classifier.training and not model.encoder.training  # BN keeps its running statistics
    assert not any(p.requires_grad for p in model.encoder.parameters())


def test_the_classifier_learns(registry, exported, tmp_path):
    """From zero weights the loss starts at log(10) and falls (a random tiny encoder's raw features)."""
    stage = {**AUGMENTED, "encoder": str(exported), "epochs": 20, "lr": 1.0}
    _, output = run(registry, recipe(stage), tmp_path / "run")
    losses = [float(value) for value in re.findall(r"linear_eval epoch \d+/20 loss ([0-9.]+)", output)]
    assert len(losses) == 20
    assert losses[-1] < min(losses[0], math.log(10)) - 0.05


def test_the_weight_decay_is_lambda_times_the_squared_norm_of_w(registry, exported, tmp_path, monkeypatch):
    """SGD gets 2 lambda on W and nothing on b: the gradient of lambda ||W||^2."""
    made = []
    original = torch.optim.SGD

    def recording(groups, **kwargs):
        optimizer = original(groups, **kwargs)
        made.append(optimizer)
        return optimizer

    monkeypatch.setattr(classifier_training.torch.optim, "SGD", recording)
    stage = {**AUGMENTED, "encoder": str(exported), "epochs": 1, "weight_decay": 0.25}
    run(registry, recipe(stage), tmp_path / "run")
    (optimizer,) = made
    weight_group, bias_group = optimizer.param_groups
    assert weight_group["weight_decay"] == 0.5 and bias_group["weight_decay"] == 0.0
    assert weight_group["nesterov"] and weight_group["momentum"] == 0.9
    assert [p.shape for p in weight_group["params"]] == [torch.Size([10, 8])]


def test_linear_lr_scaling_is_lr_times_batch_over_256():
    params = LinearEvalParams(type="linear_eval", lr=0.1, batch_size=4096, lr_scaling="linear")
    assert params.scaled_lr == pytest.approx(1.6)
    assert LinearEvalParams(type="linear_eval", lr=0.1, batch_size=4096).scaled_lr == 0.1


def test_standardised_features_are_refused_with_the_augmented_protocol(registry):
    bad = recipe({**AUGMENTED, "feature_norm": "standardize"})
    with pytest.raises(RecipeError, match=r'stages\[0\].*feature_norm = "standardize"'):
        validate_recipe(bad, registry=registry)
    assert LinearEvalParams(type="linear_eval").resolved_feature_norm == "standardize"
    assert LinearEvalParams(type="linear_eval", protocol="augmented").resolved_feature_norm == "none"
    np.testing.assert_equal(
        LinearEvalParams(type="linear_eval", feature_norm="l2").resolved_feature_norm, "l2"
    )
