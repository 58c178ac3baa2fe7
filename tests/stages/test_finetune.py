"""finetune: trains encoder and classifier, reports the random-init baseline, resumes exactly."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file as load_safetensors

from contrastive_core.engine import CheckpointManager, load_file
from contrastive_plugins.stages.pretrain import NonFiniteLossError
from tests.stages.conftest import recipe, run

SYNTHETIC = {"type": "synthetic_classes", "num_classes": 3}
FAST = {"epochs": 2, "batch_size": 8, "data": SYNTHETIC}


def test_finetune_reports_both_encoders_and_checkpoints_each(registry, exported, tmp_path):
    stage = {"type": "finetune", "encoder": str(exported), "random_init_baseline": True, **FAST}
    results, output = run(registry, recipe(stage), tmp_path / "run")
    metrics = results["finetune"]
    assert set(metrics) == {"top1", "top5", "random_init_top1", "random_init_top5"}
    assert all(0 <= value <= 1 for value in metrics.values())
    assert "finetune epoch 2/2" in output and "finetune (random init) epoch 2/2" in output
    # 24 training images in batches of 8: 3 steps per epoch, a checkpoint at the end of each epoch.
    for variant in ("encoder", "random_init"):
        latest = CheckpointManager(tmp_path / "run" / "finetune" / "checkpoints" / variant).latest()
        assert latest is not None and latest.name == "step-00000006"


def test_fine_tuning_changes_the_encoder_and_learns(registry, exported, tmp_path):
    stage = {"type": "finetune", "encoder": str(exported), "augment": False, **FAST, "epochs": 8, "lr": 0.1}
    results, _ = run(registry, recipe(stage), tmp_path / "run")
    state = load_file(
        CheckpointManager(tmp_path / "run" / "finetune" / "checkpoints" / "encoder").latest() / "state.pt"
    )
    start = load_safetensors(exported / "encoder.safetensors")
    changed = [
        name for name, value in start.items() if not torch.equal(state["model"][f"encoder.{name}"], value)
    ]
    assert changed, "fine-tuning must train the encoder, not only the classifier"
    assert results["finetune"]["top1"] > 1 / 3  # better than chance on 3 separable classes


def test_an_interrupted_finetune_resumes_to_the_same_result(registry, exported, tmp_path, monkeypatch):
    stage = {"type": "finetune", "encoder": str(exported), **FAST}
    reference, _ = run(registry, recipe(stage), tmp_path / "uninterrupted")

    original_save = CheckpointManager.save

    def crash_after_first_save(self, step, state, rng_state):
        original_save(self, step, state, rng_state)
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(CheckpointManager, "save", crash_after_first_save)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(registry, recipe(stage), tmp_path / "resumed")
    monkeypatch.setattr(CheckpointManager, "save", original_save)
    resumed, output = run(registry, recipe(stage), tmp_path / "resumed")
    assert "resuming from" in output and "step 3 of 6" in output
    assert resumed == reference
    final = {
        name: load_file(
            CheckpointManager(tmp_path / name / "finetune" / "checkpoints" / "encoder").latest() / "state.pt"
        )
        for name in ("uninterrupted", "resumed")
    }
    for key, value in final["uninterrupted"]["model"].items():
        assert torch.equal(value, final["resumed"]["model"][key]), key


def test_a_diverging_run_stops_before_checkpointing_the_bad_state(registry, exported, tmp_path):
    stage = {"type": "finetune", "encoder": str(exported), **FAST, "lr": 1e30, "augment": False}
    with pytest.raises(NonFiniteLossError, match="NaN or infinite in epoch 1"):
        run(registry, recipe(stage), tmp_path / "run")
    assert CheckpointManager(tmp_path / "run" / "finetune" / "checkpoints" / "encoder").latest() is None
