"""alignment: RA of an encoder with itself, with another encoder (against a plain computation), and
the feature-size check."""

from __future__ import annotations

import numpy as np
import pytest

from contrastive_core import build
from contrastive_core.errors import ContrastiveError
from tests.stages.conftest import export_random_encoder, fashion_data, recipe, run
from tests.stages.reference import plain_features


def test_an_encoder_is_aligned_with_itself(registry, exported, tmp_path):
    stage = {
        "type": "alignment",
        "encoder": str(exported),
        "target": str(exported),
        "random_init_baseline": True,
    }
    results, _ = run(registry, recipe(stage), tmp_path / "run")
    assert results["alignment"]["alignment"] == pytest.approx(1.0, abs=1e-6)
    assert results["alignment"]["random_init_alignment"] < 0.999


def test_alignment_with_another_encoder_is_the_mean_cosine(registry, exported, tmp_path):
    target = export_random_encoder(registry, tmp_path / "target", seed=7)
    stage = {"type": "alignment", "encoder": str(exported), "target": str(target), "split": "train"}
    results, _ = run(registry, recipe(stage), tmp_path / "run")

    images = build("dataset", fashion_data(), registry=registry).tensors("train")[0]
    own, other = plain_features(registry, exported, images), plain_features(registry, target, images)
    cosines = [a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for a, b in zip(own, other, strict=True)]
    assert results["alignment"]["alignment"] == pytest.approx(float(np.mean(cosines)), abs=1e-5)
    assert results["alignment"]["alignment"] < 0.999


def test_encoders_of_different_feature_size_are_refused(registry, exported, tmp_path):
    wide = {"type": "small_cnn", "in_channels": 1, "widths": [4], "feature_dim": 6}
    target = export_random_encoder(registry, tmp_path / "wide", seed=1, params=wide)
    stage = {"type": "alignment", "encoder": str(exported), "target": str(target)}
    with pytest.raises(ContrastiveError, match="8 features but the target has 6"):
        run(registry, recipe(stage), tmp_path / "run")
