"""A recipe's training step on the CPU, built as the pretrain stage builds it, for tests of methods."""

from __future__ import annotations

import torch
from pydantic import BaseModel

from contrastive_core import Registry
from contrastive_core.engine import (
    TrainingParts,
    TrainingStep,
    augmentation_generator,
    build_training_parts,
    get_accelerator,
)


def cpu_training_step(
    recipe: BaseModel, registry: Registry, *, batch_size: int = 8, total_steps: int = 3
) -> tuple[TrainingParts, TrainingStep]:
    """The recipe's parts (weights seeded with 0) and the step over them, one epoch of ``total_steps``."""
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
    )
    return parts, step
