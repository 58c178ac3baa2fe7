"""The parts of a contrastive training step, built from a recipe in one place.

The ``pretrain`` stage and ``contrastive bench`` both build them here, so the benchmark measures exactly
the model, augmentation pipeline, loss, optimizer and schedule that training runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from .activation_checkpointing import checkpoint_blocks
from .augmentation_pipeline import AugmentationPipeline, build_pipeline
from .build import build
from .global_batch_norm import convert_to_global_batchnorm
from .registry import Registry


class EncoderWithHead(nn.Module):
    """z = g(f(x)): the encoder f followed by the projection head g; ``(B, C, H, W) -> (B, out_dim)``."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images))


@dataclass
class TrainingParts:
    """What one training step uses, on the training device (not yet prepared by Accelerate)."""

    model: EncoderWithHead
    pipeline: AugmentationPipeline
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any | None


def build_training_parts(
    recipe: BaseModel,
    registry: Registry,
    *,
    device: torch.device,
    batch_size: int,
    total_steps: int,
    steps_per_epoch: int,
    fused_augmentations: bool = True,
    channels_last: bool = False,
    activation_checkpointing: bool = False,
    global_batchnorm: bool = False,
    warn: Callable[[str], None] = lambda text: None,
) -> TrainingParts:
    """Build the recipe's encoder + head, augmentation pipeline, loss, optimizer and schedule.

    ``batch_size`` is the global batch (for learning-rate scaling); ``global_batchnorm`` converts every
    BatchNorm layer to its cross-process version (callers pass it only with several processes).
    Compiling is left to the caller, after any check that runs the model once.
    """
    encoder = build("encoder", recipe.model.encoder, registry=registry)
    head = build("head", recipe.model.head, registry=registry, in_dim=encoder.feature_dim)
    model = EncoderWithHead(encoder, head)
    if global_batchnorm:
        model = convert_to_global_batchnorm(model, device)
    if activation_checkpointing and checkpoint_blocks(model.encoder) == 0:
        warn(f"activation checkpointing: encoder {encoder.name!r} has no blocks to checkpoint")
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    pipeline = build_pipeline(recipe.augmentations, registry=registry, fused=fused_augmentations).to(device)
    loss_fn = build("loss", recipe.loss, registry=registry).to(device)
    optimizer = build("optimizer", recipe.optimizer, registry=registry, model=model, batch_size=batch_size)
    scheduler = None
    if recipe.scheduler is not None:
        scheduler = build(
            "scheduler",
            recipe.scheduler,
            registry=registry,
            optimizer=optimizer,
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
        )
    return TrainingParts(model, pipeline, loss_fn, optimizer, scheduler)
