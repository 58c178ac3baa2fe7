"""The parts of a contrastive training step, built from a recipe in one place.

The ``pretrain`` stage and ``contrastive bench`` both build them here, so the benchmark measures exactly
the method (its networks, state and loss), view pipelines, optimizer and schedule that training runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.utils.data
from pydantic import BaseModel

from ..components.dataset import VariableSizeSplit
from ..components.encoder import Encoder
from ..components.method import Method, MethodParts
from ..distributed.global_batch_norm import convert_to_global_batchnorm
from ..errors import ContrastiveError, Problem, RecipeError
from ..recipes.view_groups import resolve_view_groups
from ..registration.build import build
from ..registration.registry import Registry
from .activation_checkpointing import checkpoint_blocks
from .augmentation_pipeline import AugmentationPipeline, PerViewAugmentationPipeline, build_view_pipeline
from .encoder_init import build_encoder


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
    augmentation_precision: str = "fp32",
    run_precision: str = "no",
    warn: Callable[[str], None] = lambda text: None,
) -> TrainingParts:
    """Build the recipe's method (with its encoder, head, predictor and loss), view pipelines, optimizer
    and schedule.

    The components are built in a fixed order (encoder, head, predictor, loss, method) after the caller
    seeds torch, so every process starts from the same weights; an encoder with an ``init`` file is
    loaded from it (:func:`~.encoder_init.build_encoder`; ``warn`` receives what was loaded).
    ``batch_size`` is the global batch (for learning-rate scaling); ``global_batchnorm`` converts every
    BatchNorm layer, momentum targets' included, to its cross-process version (callers pass it only
    with several processes).
    ``augmentation_precision`` (a pretrain stage's setting, with the run's ``run_precision``) is applied
    to every view pipeline by :func:`set_augmentation_precision`. Compiling is left to the caller, after
    any check that runs the model once.
    """
    # From its init file when [model.encoder] names one (loading draws no random numbers, so the head
    # and the rest are initialised as without it).
    encoder = build_encoder(recipe.model.encoder, registry, where="model.encoder", report=warn)
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
    exported = method.exported_encoder()
    if not isinstance(exported, Encoder):
        raise ContrastiveError(
            f"method {recipe.method.type!r}: exported_encoder() returned {type(exported).__name__}, not an "
            "Encoder (the component later stages load and evaluate); return the encoder module itself, e.g. "
            "the target network's copy of the encoder"
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
        set_augmentation_precision(pipeline, augmentation_precision, device, run_precision)
        if fused_augmentations and isinstance(pipeline, PerViewAugmentationPipeline):
            warn(
                f"view group {group.name!r}: its views' augmentation lists differ in more than what is drawn "
                "per sample, so they run op by op, one view after the other (slower; see docs/methods.md)"
            )
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


def set_augmentation_precision(
    pipeline: AugmentationPipeline, choice: str, device: torch.device, run_precision: str
) -> None:
    """Apply a pretrain stage's ``augmentation_precision`` to one view pipeline on ``device``.

    ``"fp32"``: float32 arithmetic. ``"fp16"``: float16 for every batch, which needs mixed precision (a
    float32 model cannot take float16 views). ``"auto"``: what the pipeline itself knows to pay off
    (:meth:`~contrastive_core.engine.AugmentationPipeline.automatic_compute_dtype`; the fused SimCLR
    pipeline measured its own rule on a GPU). Pipelines without reduced-precision support (the op-by-op
    reference) stay in float32 whatever the choice.
    """
    if choice not in ("auto", "fp32", "fp16"):
        raise ValueError(f"unknown augmentation_precision {choice!r}")
    if choice == "fp16" and run_precision == "no":
        raise ContrastiveError(
            "augmentation_precision = 'fp16' needs run.precision = 'bf16' or 'fp16' (a float32 model "
            "cannot take float16 views); use 'auto' or 'fp32'"
        )
    if not pipeline.supports_reduced_precision or choice == "fp32":
        return
    if choice == "fp16":
        pipeline.set_compute_dtype(torch.float16)
        return
    dtype, min_values = pipeline.automatic_compute_dtype(device, run_precision)
    if dtype is not None:
        pipeline.set_compute_dtype(dtype, min_values=min_values)


def check_views_crop_first(
    recipe: BaseModel, views: Mapping[str, AugmentationPipeline], split: torch.utils.data.Dataset
) -> None:
    """Before training on ``split``: when it is a :class:`~contrastive_core.components.VariableSizeSplit`
    (photos of their own sizes, batched as one padded canvas), every view group's first op must crop
    within each photo's size; :class:`RecipeError` naming the recipe key of each group whose first op
    does not, with the two ways out. Other splits need no check. ``views``: group name -> pipeline
    (the name "" stands for a recipe's ``[[augmentations]]`` used without a method).

    The step would raise the same from the pipeline (:func:`~.augmentation_pipeline.check_crops_first`);
    here it is raised before any work, against the recipe's own keys.
    """
    while isinstance(split, torch.utils.data.Subset):
        split = split.dataset
    if not isinstance(split, VariableSizeSplit):
        return
    # The first [[views]] table of a name is the group's (resolve_view_groups reports repeats).
    tables = {table.name: index for index, table in reversed(list(enumerate(recipe.views)))}
    other_way = (
        f", or set data.{split.fixed_size_setting} to train on images of one size"
        if split.fixed_size_setting
        else ""
    )
    problems = []
    for group, pipeline in views.items():
        ops = list(pipeline.augmentations)
        if ops and ops[0].crops_within_sizes:
            continue
        where = f"views[{tables[group]}].augmentations" if group in tables else "augmentations"
        subject = f"view group {group!r}" if group else "the list"
        first = repr(ops[0].name) if ops else "no op"
        problems.append(
            Problem(
                f"{where}[0]" if ops else where,
                f"{subject} starts with {first}, but the training images of [data] ({recipe.data.type}) "
                "are photos of their own sizes, padded into one canvas per batch: only a crop that reads "
                "each photo's size can come first (any other op would treat the padding as image; a flip "
                f'would move it to the left). Put {{ type = "random_resized_crop", ... }} first{other_way}',
            )
        )
    if problems:
        raise RecipeError("recipe", problems)
