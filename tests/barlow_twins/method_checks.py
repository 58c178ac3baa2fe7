"""Shared method-level checks of Barlow Twins and VICReg: tiny recipes built and trained on the CPU.

Both methods have the same shape (two global views, encoder and MLP head, loss params on the method), so
the tests of both plugins use these helpers with their own method name, params and metric names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from contrastive_core import StepProgress, default_registry, validate_recipe
from contrastive_core.engine import run_recipe
from contrastive_core.run_directory import read_metrics
from tests.engine.method_steps import cpu_training_step
from tests.engine.recipes import FIXTURE

BATCH = 8
STEPS = 3


def tiny_recipe(method: dict[str, Any], *, steps: int = STEPS) -> dict[str, Any]:
    """A small_cnn and an MLP head without output BN (the papers' projector, scaled down) on the fixture."""
    return {
        "run": {"seed": 0, "device": "cpu"},
        "data": {"type": "fashion_mnist", "root": str(FIXTURE)},
        "method": method,
        "augmentations": [
            {"type": "random_resized_crop", "size": 28, "scale": [0.3, 1.0]},
            {"type": "horizontal_flip"},
        ],
        "model": {
            "encoder": {"type": "small_cnn", "in_channels": 1, "widths": [8, 16], "feature_dim": 16},
            "head": {"type": "mlp", "hidden_dim": 32, "out_dim": 24, "num_layers": 3, "output_norm": "none"},
        },
        "optimizer": {"type": "sgd", "lr": 0.05},
        "stages": [
            {
                "type": "pretrain",
                "epochs": 1,
                "batch_size": BATCH,
                "max_steps": steps,
                "log_every_steps": 1,
                "checkpoint_every_steps": steps,
            }
        ],
    }


def images() -> torch.Tensor:
    return torch.randint(
        0, 256, (BATCH, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def train_steps(method: dict[str, Any]) -> tuple[Any, list[Any]]:
    """The built parts and the outputs of STEPS training steps of the recipe with ``method``."""
    registry = default_registry()
    recipe = validate_recipe(tiny_recipe(method), registry=registry)
    parts, step = cpu_training_step(recipe, registry, batch_size=BATCH, total_steps=STEPS)
    before = [p.detach().clone() for p in parts.method.trainable().parameters()]
    outputs = [step(images(), StepProgress(done, STEPS, STEPS)) for done in range(STEPS)]
    after = list(parts.method.trainable().parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True)), "nothing was trained"
    return parts, outputs


def encoder_batch_sizes(parts: Any) -> list[int]:
    """The batch sizes the encoder sees in one forward of the method (one call per view expected)."""
    seen: list[int] = []
    handle = parts.method.encoder.register_forward_hook(
        lambda module, args, output: seen.append(args[0].shape[0])
    )
    views = {"global": torch.rand(2 * BATCH, 1, 28, 28)}
    try:
        parts.method(views, StepProgress(0, STEPS, STEPS))
    finally:
        handle.remove()
    return seen


def loss_under_bf16_autocast(
    parts: Any, method_module: Any, loss_name: str, monkeypatch: Any
) -> dict[str, Any]:
    """One forward of the method under CPU bf16 autocast, recording its call of the loss function.

    Returns the method's output (``"output"``), the loss function's inputs (``"inputs"``), its result
    (``"terms"``) and whether autocast was on when it ran (``"autocast"``).
    """
    original = getattr(method_module, loss_name)
    call: dict[str, Any] = {}

    def recording(z_a: torch.Tensor, z_b: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        call["inputs"] = (z_a.detach(), z_b.detach())
        call["autocast"] = torch.is_autocast_enabled("cpu")
        call["terms"] = original(z_a, z_b, *args, **kwargs)
        return call["terms"]

    monkeypatch.setattr(method_module, loss_name, recording)
    views = {"global": torch.rand(2 * BATCH, 1, 28, 28)}
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        call["output"] = parts.method(views, StepProgress(0, STEPS, STEPS))
    return call


def logged_records(method: dict[str, Any], run_dir: Path) -> list[dict[str, Any]]:
    """The pretrain stage's metrics.jsonl records of a real 2-step run of the recipe."""
    registry = default_registry()
    recipe = validate_recipe(tiny_recipe(method, steps=2), registry=registry)
    run_recipe(recipe, registry=registry, run_dir=run_dir, console=Console(quiet=True))
    return read_metrics(run_dir / "pretrain" / "metrics.jsonl")
