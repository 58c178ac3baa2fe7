"""A recipe's training step on the CPU, built as the pretrain stage builds it, for tests of methods."""

from __future__ import annotations

import torch
from pydantic import BaseModel

from contrastive_core import Method, Registry
from contrastive_core.engine import (
    TrainingParts,
    TrainingStep,
    augmentation_generator,
    build_training_parts,
    get_accelerator,
)
from tests.engine.recipes import FIXTURE

CROP = [{"type": "random_resized_crop", "size": 28, "scale": [0.3, 1.0]}, {"type": "horizontal_flip"}]
MLP = {"type": "mlp", "hidden_dim": 32, "out_dim": 16}


def cpu_training_step(
    recipe: BaseModel,
    registry: Registry,
    *,
    batch_size: int = 8,
    total_steps: int = 3,
    micro_batch_size: int | None = None,
) -> tuple[TrainingParts, TrainingStep]:
    """The recipe's parts (weights seeded with 0) and the step over them, one epoch of ``total_steps``
    (by gradient caching with ``micro_batch_size``)."""
    torch.manual_seed(0)
    parts = build_training_parts(
        recipe,
        registry,
        device=torch.device("cpu"),
        batch_size=batch_size,
        total_steps=total_steps,
        steps_per_epoch=total_steps,
    )
    accelerator = get_accelerator(recipe.run)
    method, optimizer = accelerator.prepare(parts.method, parts.optimizer)
    step = TrainingStep(
        parts.views,
        method,
        parts.method,
        optimizer,
        parts.scheduler,
        accelerator,
        augmentation_generator(0, "cpu"),
        micro_batch_size=micro_batch_size,
    )
    return parts, step


def recipe_for(method: type[Method]) -> dict:
    """The smallest recipe for ``method``: the sections it requires, a view group per group it declares."""
    data = {
        "run": {"seed": 0, "device": "cpu"},
        "data": {"type": "fashion_mnist", "root": str(FIXTURE)},
        "method": {"type": method.name},
        "views": [
            {"name": group.name, "count": group.count or 2, "augmentations": CROP} for group in method.views
        ],
        "model": {"encoder": {"type": "small_cnn", "in_channels": 1, "widths": [8, 16], "feature_dim": 16}},
        "optimizer": {"type": "sgd", "lr": 0.1},
        "stages": [{"type": "pretrain", "epochs": 1, "batch_size": 8, "max_steps": 3}],
    }
    if "model.head" in method.requires:
        data["model"]["head"] = MLP
    if "model.predictor" in method.requires:
        data["model"]["predictor"] = MLP
    if "loss" in method.requires:
        data["loss"] = {"type": "nt_xent", "temperature": 0.5}
    return data
