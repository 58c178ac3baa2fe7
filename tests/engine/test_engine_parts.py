"""The engine's parts on their own: checkpoints, batch order, activation checkpointing, metrics log."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from torch import nn

from contrastive_core.engine import (
    CheckpointError,
    CheckpointManager,
    DeviceBatches,
    GlobalBatchOrder,
    MetricsLog,
    checkpoint_blocks,
    load_file,
)
from contrastive_core.run_directory import read_metrics


def test_checkpoints_are_kept_pruned_and_loaded(tmp_path):
    manager = CheckpointManager(tmp_path / "ckpt", keep_last=2)
    for step in (1, 2, 3):
        manager.save(
            step, {"step": step, "w": torch.full((2,), float(step))}, {"torch": torch.get_rng_state()}
        )
    assert [p.name for p in manager.completed()] == ["step-00000002", "step-00000003"]
    state, rng = manager.load(manager.latest())
    assert state["step"] == 3 and torch.equal(state["w"], torch.full((2,), 3.0))
    assert torch.equal(rng["torch"], torch.get_rng_state())


def test_half_written_checkpoints_are_ignored_and_cleaned(tmp_path):
    manager = CheckpointManager(tmp_path / "ckpt")
    manager.save(1, {"step": 1}, {})
    stale = tmp_path / "ckpt" / ".step-00000002.tmp"
    stale.mkdir()
    (stale / "state.pt").write_bytes(b"cut sh")
    assert manager.latest().name == "step-00000001"
    manager.remove_stale_temporaries()
    assert not stale.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_write_failure_keeps_previous_checkpoint(tmp_path):  # pragma: no cover - CI runs as root
    manager = CheckpointManager(tmp_path / "ckpt")
    manager.save(1, {"step": 1}, {})
    os.chmod(tmp_path / "ckpt", 0o500)
    try:
        with pytest.raises(CheckpointError, match="previous checkpoint .*step-00000001 is intact"):
            manager.save(2, {"step": 2}, {})
    finally:
        os.chmod(tmp_path / "ckpt", 0o700)


def test_write_failure_keeps_previous_checkpoint_when_disk_fills(tmp_path, monkeypatch):
    manager = CheckpointManager(tmp_path / "ckpt")
    manager.save(1, {"step": 1}, {})

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(
        CheckpointError, match=r"No space left on device\. The previous checkpoint .*step-00000001 is intact"
    ):
        manager.save(2, {"step": 2}, {})
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["step-00000001"]
    assert manager.load(manager.latest())[0]["step"] == 1


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_a_crafted_pickle_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "state.pt"
    with open(path, "wb") as handle:
        pickle.dump({"step": _RunsCode()}, handle)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_file(path)
    assert not (tmp_path / "pwned").exists()


def _three_checkpoints(tmp_path):
    manager = CheckpointManager(tmp_path / "ckpt", keep_last=3)
    for step in (1, 2, 3):
        manager.save(
            step, {"step": step, "w": torch.full((2,), float(step))}, {"torch": torch.get_rng_state()}
        )
    return manager


def _rewrite_step(path, step):
    state = torch.load(path / "state.pt", weights_only=True)
    state["step"] = step
    torch.save(state, path / "state.pt")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (
            lambda path: (path / "state.pt").write_bytes(b"\x00" * 64),
            "is damaged or was changed after it was written",
        ),
        (lambda path: _rewrite_step(path, 999), "is damaged or was changed after it was written"),
        (lambda path: (path / "checksums.json").write_text("{"), "checksums.json is damaged"),
    ],
    ids=["zeroed", "step-rewritten", "checksums-damaged"],
)
def test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, damage, reason):
    manager = _three_checkpoints(tmp_path)
    damage(manager.latest())
    said: list[str] = []
    path, state, _ = manager.load_latest(say=said.append)
    assert path.name == "step-00000002" and state["step"] == 2
    assert reason in said[0] and "step-00000003" in said[0] and "trying the previous checkpoint" in said[0]
    assert said[1] == f"resuming from {path}, the newest checkpoint that loads"


def test_a_step_that_disagrees_with_the_checkpoints_name_is_refused(tmp_path):
    """Even where no checksum guards it (a checkpoint written before checksums were)."""
    manager = _three_checkpoints(tmp_path)
    latest = manager.latest()
    (latest / "checksums.json").unlink()
    _rewrite_step(latest, 999)
    with pytest.raises(CheckpointError, match="says step 999, but it is the checkpoint of step 3"):
        manager.load(latest)


def test_when_no_checkpoint_loads_the_error_names_each_and_what_to_do(tmp_path):
    manager = _three_checkpoints(tmp_path)
    for path in manager.completed():
        (path / "state.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError) as raised:
        manager.load_latest()
    message = str(raised.value)
    assert all(f"step-0000000{step}" in message for step in (1, 2, 3))
    assert f"Delete {manager.directory} to train this stage from its start" in message


def test_batch_order_does_not_depend_on_the_number_of_processes():
    order = GlobalBatchOrder(num_examples=50, global_batch=12, seed=4)
    assert order.steps_per_epoch == 4
    for epoch in (0, 1):
        for step in range(4):
            whole = order.local_indices(epoch, step, rank=0, world_size=1)
            parts = torch.cat([order.local_indices(epoch, step, rank, 3) for rank in range(3)])
            assert torch.equal(whole, parts) and len(whole) == 12
        seen = torch.cat([order.local_indices(epoch, step, 0, 1) for step in range(4)])
        assert len(set(seen.tolist())) == 48  # no repeats within an epoch
    assert not torch.equal(order.permutation(0), order.permutation(1))
    images = torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1)
    resumed = list(DeviceBatches(images, order, 0, 1).epoch(1, start_step=2))
    assert all(batch.sizes is None for batch in resumed)  # in-memory images fill their batch
    assert [batch.pixels.flatten().tolist() for batch in resumed] == [
        order.local_indices(1, step, 0, 1).tolist() for step in (2, 3)
    ]
    with pytest.raises(Exception, match="larger than the dataset"):
        GlobalBatchOrder(10, 16, 0)


def test_activation_checkpointing_keeps_gradients_and_batchnorm_statistics():
    def model():
        torch.manual_seed(0)
        return nn.Sequential(
            nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()),
            nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.ReLU()),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    x = torch.randn(6, 1, 9, 9)
    plain, checkpointed = model(), model()
    assert checkpoint_blocks(checkpointed) == 2
    assert set(plain.state_dict()) == set(checkpointed.state_dict())
    plain(x).square().sum().backward()
    checkpointed(x).square().sum().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), checkpointed.named_parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, msg=name)
    for (name, a), (_, b) in zip(plain.named_buffers(), checkpointed.named_buffers(), strict=True):
        torch.testing.assert_close(a, b, msg=name)  # running stats updated once, not twice


def test_metrics_log_drops_lines_after_the_resumed_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    log = MetricsLog(path)
    for step in (1, 2, 3, 4):
        log.write({"step": step, "loss": float(step)})
    log.close()
    with open(path, "a") as handle:
        handle.write('{"step": 5, "lo')  # a line cut short by a crash
    log = MetricsLog(path, resume_step=2)
    log.write({"step": 3, "loss": 30.0})
    log.close()
    assert [record["loss"] for record in read_metrics(path)] == [1.0, 2.0, 30.0]
    assert all(json.loads(line) for line in path.read_text().splitlines())


@pytest.mark.parametrize(("encoder", "blocks"), [("resnet18", 4), ("small_cnn", 4)])
def test_activation_checkpointing_finds_the_blocks_of_the_builtin_encoders(encoder, blocks):
    from contrastive_core import build

    model = build("encoder", {"type": encoder})
    names = set(model.state_dict())
    assert checkpoint_blocks(model) == blocks
    assert set(model.state_dict()) == names
    model(torch.randn(2, 3, 32, 32)).sum().backward()


def test_augmentation_precision_auto_is_float16_only_for_large_mixed_precision_batches_on_cuda():
    from contrastive_core.engine import build_pipeline, set_augmentation_precision
    from contrastive_core.errors import ContrastiveError
    from contrastive_plugins.simclr.fused_pipeline import AUTO_FLOAT16_MIN_VALUES

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    ops = [{"type": "random_resized_crop", "size": 8}, {"type": "horizontal_flip"}]

    def chosen(choice: str, device: torch.device, precision: str, fused: bool = True):
        pipeline = build_pipeline(ops, fused=fused)
        set_augmentation_precision(pipeline, choice, device, precision)
        return pipeline.compute_dtype, pipeline.compute_dtype_min_values

    # The rule is the fused pipeline's own (measured on a GPU), not the engine's.
    assert chosen("auto", cuda, "bf16") == (torch.float16, AUTO_FLOAT16_MIN_VALUES)
    assert chosen("auto", cuda, "fp16") == (torch.float16, AUTO_FLOAT16_MIN_VALUES)
    assert chosen("auto", cuda, "no") == (None, 0)
    assert chosen("auto", cpu, "bf16") == (None, 0)
    assert chosen("fp32", cuda, "bf16") == (None, 0)
    assert chosen("fp16", cpu, "bf16") == (torch.float16, 0)
    # The op-by-op reference computes in float32 whatever the choice.
    assert chosen("fp16", cpu, "bf16", fused=False) == (None, 0)
    assert chosen("auto", cuda, "bf16", fused=False) == (None, 0)
    with pytest.raises(ContrastiveError, match="needs run.precision"):
        chosen("fp16", cuda, "no")
    with pytest.raises(ValueError, match="unknown augmentation_precision"):
        chosen("fp8", cuda, "bf16")
    # the two measured settings fall on either side of the threshold
    assert 512 * 3 * 224 * 224 >= AUTO_FLOAT16_MIN_VALUES > 1024 * 3 * 32 * 32
