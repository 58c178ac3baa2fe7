"""The parts of a contrastive training step, built from a recipe in one place.

The ``pretrain`` stage and ``contrastive bench`` both build them here, so the benchmark measures exactly
the method (its networks, state and loss), view pipelines, optimizer and schedule that training runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel

from ..components.method import Method, MethodParts
from ..distributed.global_batch_norm import convert_to_global_batchnorm
from ..errors import ContrastiveError
from ..recipes.view_groups import resolve_view_groups
from ..registration.build import build
from ..registration.registry import Registry
from .activation_checkpointing import checkpoint_blocks
from .augmentation_pipeline import AugmentationPipeline, build_view_pipeline


@dataclass
class TrainingParts:
    """What one training step uses, on the training device (not yet prepared by Accelerate).

    ``views``: one augmentation pipeline per view group of the method, in the method's group order.
    """

    method: Method
    views: dict[str, AugmentationPipeline]
    optimizer: torch.optim.Optimizer
    scheduler: Any | None

    @property
    def views_per_image(self) -> int:
        """Views made of every image per step, over all groups (what throughput counts)."""
        return sum(pipeline.view_count for pipeline in self.views.values())


def training_stage(recipe: BaseModel, registry: Registry) -> BaseModel | None:
    """The params of the recipe's first stage that trains its method (the stage's class sets
    ``trains_method``, as ``pretrain`` does), or None: the stage whose settings (batch size, precision,
    split, fused augmentations) ``contrastive bench`` measures and ``contrastive preview`` follows."""
    return next(
        (
            stage
            for stage in recipe.stages
            if getattr(registry.get("stage", stage.type), "trains_method", False)
        ),
        None,
    )


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
    augmentation: AugmentationArithmetic | None = None,
    warn: Callable[[str], None] = lambda text: None,
) -> TrainingParts:
    """Build the recipe's method (with its encoder, head, predictor and loss), view pipelines, optimizer
    and schedule.

    The components are built in a fixed order (encoder, head, predictor, loss, method) after the caller
    seeds torch, so every process starts from the same weights. ``batch_size`` is the global batch (for
    learning-rate scaling); ``global_batchnorm`` converts every BatchNorm layer, momentum targets'
    included, to its cross-process version (callers pass it only with several processes).
    ``augmentation`` (see :func:`augmentation_arithmetic`; float32 when None) is used by pipelines that
    support reduced precision; the op-by-op pipeline stays in float32. Compiling is left to the caller,
    after any check that runs the model once.
    """
    encoder = build("encoder", recipe.model.encoder, registry=registry)
    head = predictor = loss = None
    if recipe.model.head is not None:
        head = build("head", recipe.model.head, registry=registry, in_dim=encoder.feature_dim)
    if recipe.model.predictor is not None:
        predictor = build("head", recipe.model.predictor, registry=registry, in_dim=head.out_dim)
    if recipe.loss is not None:
        loss = build("loss", recipe.loss, registry=registry)
    method = build(
        "method",
        recipe.method,
        registry=registry,
        parts=MethodParts(encoder=encoder, head=head, predictor=predictor, loss=loss),
    )
    if global_batchnorm:
        method = convert_to_global_batchnorm(method, device)
    if activation_checkpointing and checkpoint_blocks(method.encoder) == 0:
        warn(f"activation checkpointing: encoder {encoder.name!r} has no blocks to checkpoint")
    method.to(device)
    if channels_last:
        method.to(memory_format=torch.channels_last)
    views: dict[str, AugmentationPipeline] = {}
    for group in resolve_view_groups(recipe, registry):
        pipeline = build_view_pipeline(group.per_view, registry, fused=fused_augmentations).to(device)
        if augmentation is not None and pipeline.supports_reduced_precision:
            pipeline.set_compute_dtype(augmentation.dtype, min_values=augmentation.min_values)
        views[group.name] = pipeline
    optimizer = build(
        "optimizer", recipe.optimizer, registry=registry, model=method.trainable(), batch_size=batch_size
    )
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
    return TrainingParts(method, views, optimizer, scheduler)


#: With ``augmentation_precision = "auto"``, batches of views with fewer values than this stay in float32.
#: Measured on an H100 (docs/performance.md): 512 views at 224 px (77M values) gain from float16 (the
#: full step at 0.92 of the bare step instead of 0.89), 1024 views at 32 px (3.1M values) lose (0.83
#: instead of 0.91): small batches are bound by kernel launches, not memory traffic.
AUTO_FLOAT16_MIN_VALUES = 2**24


@dataclass(frozen=True)
class AugmentationArithmetic:
    """The dtype of the fused augmentations' arithmetic, for batches of at least ``min_values`` values."""

    dtype: torch.dtype
    min_values: int = 0


def augmentation_arithmetic(choice: str, device: torch.device, precision: str) -> AugmentationArithmetic:
    """What a pretrain stage's ``augmentation_precision`` means on ``device`` with ``run.precision``.

    ``"auto"``: float16 on CUDA when the run trains in bf16 or fp16 (the encoder rounds its input to
    that precision at its first layer anyway, and half-width pixels halve the memory traffic), for
    batches of views of at least :data:`AUTO_FLOAT16_MIN_VALUES` values; float32 otherwise (CPUs gain
    nothing from float16 arithmetic). ``"fp16"`` asks for float16 for every batch, anywhere, which needs
    mixed precision: a float32 model cannot take float16 views. ``"fp32"``: float32.
    """
    if choice == "fp32":
        return AugmentationArithmetic(torch.float32)
    if choice == "fp16":
        if precision == "no":
            raise ContrastiveError(
                "augmentation_precision = 'fp16' needs run.precision = 'bf16' or 'fp16' (a float32 model "
                "cannot take float16 views); use 'auto' or 'fp32'"
            )
        return AugmentationArithmetic(torch.float16)
    if choice == "auto":
        if device.type == "cuda" and precision in ("bf16", "fp16"):
            return AugmentationArithmetic(torch.float16, AUTO_FLOAT16_MIN_VALUES)
        return AugmentationArithmetic(torch.float32)
    raise ValueError(f"unknown augmentation_precision {choice!r}")
