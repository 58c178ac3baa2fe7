"""Recipes as users write them: pretrain then evaluate, evaluation only from an exported encoder, and
evaluation only at random initialisation."""

from __future__ import annotations

import json

import pytest

from tests.stages.conftest import TINY_ENCODER, recipe, run

PRETRAIN_SECTIONS = {
    "augmentations": [
        {"type": "random_resized_crop", "size": 28, "scale": [0.3, 1.0]},
        {"type": "normalize", "mean": [0.3], "std": [0.3]},
    ],
    "model": {"encoder": TINY_ENCODER, "head": {"type": "mlp", "hidden_dim": 8, "out_dim": 8}},
    "method": {"type": "simclr"},
    "loss": {"type": "nt_xent", "temperature": 0.5},
    "optimizer": {"type": "sgd", "lr": 0.1},
}


def test_evaluation_stages_use_the_pretrained_encoder_and_resume(registry, tmp_path):
    stages = [
        {"type": "pretrain", "epochs": 1, "batch_size": 16, "max_steps": 2},
        {"type": "knn_eval", "k": 10, "random_init_baseline": True},
        {"type": "alignment", "encoder": "pretrain", "target": "pretrain"},
    ]
    data = recipe(*stages, **PRETRAIN_SECTIONS)
    results, output = run(registry, data, tmp_path / "run")
    assert "knn_eval: encoder exported by stage 'pretrain'" in output
    assert "alignment: target encoder exported by stage 'pretrain'" in output
    assert results["alignment"]["alignment"] == pytest.approx(1.0, abs=1e-6)
    assert set(results["knn_eval"]) == {"top1", "top5", "random_init_top1", "random_init_top5"}
    assert json.loads((tmp_path / "run" / "results.json").read_text()) == results
    # Running the same recipe again skips every finished stage.
    again, output = run(registry, data, tmp_path / "run")
    assert again == results and output.count("finished earlier, skipped") == 3


def test_evaluation_only_recipe_with_an_encoder_path(registry, exported, tmp_path):
    """No [model], no pretrain stage: the encoder comes from its exported directory."""
    stages = [
        {"type": "knn_eval", "encoder": str(exported)},
        {"type": "linear_eval", "encoder": str(exported), "epochs": 5, "batch_size": 16},
    ]
    results, output = run(registry, recipe(*stages), tmp_path / "run")
    assert f"knn_eval: encoder loaded from {exported}" in output
    assert set(results) == {"knn_eval", "linear_eval"}
    assert results["linear_eval"].pop("protocol") == "precomputed"
    assert all(0 <= value <= 1 for metrics in results.values() for value in metrics.values())


def test_without_a_pretrained_encoder_the_random_init_is_evaluated_and_said(registry, tmp_path):
    stage = {"type": "knn_eval", "k": 10, "random_init_baseline": True}
    results, output = run(registry, recipe(stage, with_model=True), tmp_path / "run")
    assert "model.encoder] (small_cnn) at RANDOM INITIALISATION (seed 0)" in output
    # The evaluated encoder IS the seeded random initialisation, so both report the same.
    metrics = results["knn_eval"]
    assert (metrics["top1"], metrics["top5"]) == (metrics["random_init_top1"], metrics["random_init_top5"])
