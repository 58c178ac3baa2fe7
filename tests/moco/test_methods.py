"""moco_v2 and moco_v3 built through the registry from a tiny recipe and trained for 3 steps on the CPU."""

from __future__ import annotations

import pytest
import torch

from contrastive_core import StepProgress, default_registry, validate_recipe
from contrastive_plugins.moco.moco_v2 import MoCoV2
from contrastive_plugins.moco.moco_v3 import MoCoV3
from tests.engine.method_steps import cpu_training_step
from tests.engine.recipes import FIXTURE

BATCH, STEPS = 8, 3
CROP = [{"type": "random_resized_crop", "size": 28, "scale": [0.3, 1.0]}, {"type": "horizontal_flip"}]
MLP = {"type": "mlp", "hidden_dim": 32, "out_dim": 16}


def recipe(method: dict) -> dict:
    """The smallest recipe for a MoCo method: small_cnn on the Fashion-MNIST fixture, head (and predictor)."""
    data = {
        "run": {"seed": 0, "device": "cpu"},
        "data": {"type": "fashion_mnist", "root": str(FIXTURE)},
        "method": method,
        "augmentations": CROP,
        "model": {
            "encoder": {"type": "small_cnn", "in_channels": 1, "widths": [8, 16], "feature_dim": 16},
            "head": MLP,
        },
        "optimizer": {"type": "sgd", "lr": 0.1},
        "stages": [{"type": "pretrain", "epochs": 1, "batch_size": BATCH, "max_steps": STEPS}],
    }
    if method["type"] == "moco_v3":
        data["model"]["predictor"] = {**MLP, "output_norm": "none"}
    return data


def trained(method: dict):
    """The method after STEPS training steps, its outputs, and the batch sizes its encoder saw."""
    registry = default_registry()
    parts, step = cpu_training_step(
        validate_recipe(recipe(method), registry=registry), registry, batch_size=BATCH
    )
    before = [p.detach().clone() for p in parts.method.trainable().parameters()]
    seen: list[int] = []
    parts.method.encoder.register_forward_hook(lambda module, args, output: seen.append(args[0].shape[0]))
    images = torch.randint(
        0, 256, (BATCH, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    outputs, fills = [], []
    for done in range(STEPS):
        outputs.append(step(images, StepProgress(done, STEPS, STEPS)))
        if hasattr(parts.method, "queue"):
            fills.append(int(parts.method.queue.fill))
    after = list(parts.method.trainable().parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))  # it trained
    return parts.method, outputs, fills, seen


def assert_the_target_gets_no_gradient(method) -> None:
    for parameter in method.target.parameters():
        assert not parameter.requires_grad and parameter.grad is None
    target_ids = {id(p) for p in method.target.parameters()}
    assert not target_ids & {id(p) for p in method.trainable().parameters()}


def test_moco_v2_trains_and_its_queue_fills_by_the_batch_each_step():
    method, outputs, fills, seen = trained({"type": "moco_v2", "queue_size": 20})
    assert isinstance(method, MoCoV2)
    assert fills == [8, 16, 20]  # capped at K = 20, which is no multiple of the batch
    assert seen == [BATCH] * STEPS  # one pass per view for the queries (the key encoder is a copy)
    # The first step's queue is empty: only the positive is left, the loss is exactly 0.
    assert outputs[0].loss.item() == 0.0
    for output, fill in zip(outputs, fills, strict=True):
        assert output.loss.ndim == 0 and torch.isfinite(output.loss) and not output.loss.requires_grad
        assert set(output.metrics) == {"queue_fill"}
        assert output.metrics["queue_fill"].ndim == 0
        assert output.metrics["queue_fill"].item() == pytest.approx(fill / 20)
    assert outputs[1].loss.item() > 0
    assert not method.queue.keys.requires_grad
    torch.testing.assert_close(method.queue.keys.norm(dim=1), torch.ones(20))  # unit keys, all written
    assert_the_target_gets_no_gradient(method)
    state = method.state_dict()
    assert {"queue.keys", "queue.slot", "queue.fill"} <= set(state)
    assert any(name.startswith("target.network.") for name in state)
    assert method.momentum_updates(StepProgress(1, STEPS, STEPS)) == [(method.target, 0.999)]


def test_symmetric_moco_v2_runs_both_views_and_enqueues_both_key_batches():
    method, outputs, fills, seen = trained({"type": "moco_v2", "queue_size": 40, "symmetric": True})
    assert fills == [16, 32, 40]
    assert seen == [BATCH] * (2 * STEPS)
    assert all(torch.isfinite(output.loss) for output in outputs)
    assert outputs[1].loss.item() > 0


def test_moco_v3_trains_with_a_cosine_momentum():
    method, outputs, _, seen = trained({"type": "moco_v3"})
    assert isinstance(method, MoCoV3)
    assert seen == [BATCH] * (2 * STEPS)
    for output in outputs:
        assert output.loss.ndim == 0 and torch.isfinite(output.loss) and not output.loss.requires_grad
        assert output.loss.item() > 0
    assert_the_target_gets_no_gradient(method)
    momenta = [method.momentum_updates(StepProgress(k, 4, 4))[0][1] for k in range(5)]
    assert momenta[0] == pytest.approx(0.99) and momenta[2] == pytest.approx(0.995) and momenta[4] == 1.0
    assert momenta == sorted(momenta)


def test_a_queue_smaller_than_the_keys_of_a_step_is_refused():
    with pytest.raises(ValueError, match="queue_size"):
        trained({"type": "moco_v2", "queue_size": 4})
