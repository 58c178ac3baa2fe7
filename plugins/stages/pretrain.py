"""The ``pretrain`` stage: self-supervised training of the recipe's method (SimCLR, BYOL, ...).

Read top to bottom: set up (data, method, optimizer, resume), then the loop. The training step itself
(:class:`contrastive_core.engine.TrainingStep`, shared with ``contrastive bench``) is plain
code with no hooks or callbacks: augment the uint8 batch into each view group's views on the device
(for photos of their own sizes, an image folder's default, every view is cropped from its whole photo),
run the method (its networks and loss), backward, step the optimizer and the schedule, move the
momentum targets.
Everything else happens between steps and only every N steps touches values on the device, so the step
issues no host-device synchronisation: logging here, and resume, checkpoints, the NaN/inf guard and
stop requests in :class:`contrastive_core.engine.TrainingLoop` (shared with the classifier-training
stages).
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any, Literal

import torch
from accelerate.utils import gather_object
from pydantic import Field, model_validator
from rich.text import Text
from torch import nn

from contrastive_core import ComponentParams, Stage, StageContext, build
from contrastive_core.components import StepProgress
from contrastive_core.engine import (
    CheckpointManager,
    DeviceBatches,
    GlobalBatchOrder,
    ImageBatch,
    LoaderBatches,
    MetricsLog,
    TrainingLoop,
    TrainingProgress,
    TrainingStep,
    augmentation_generator,
    build_training_parts,
    check_views_crop_first,
    export_encoder,
    exported_files,
    get_accelerator,
    items_batch,
)

# Re-exported: NonFiniteLossError was defined here before the engine had it.
from contrastive_core.engine import NonFiniteLossError as NonFiniteLossError
from contrastive_core.errors import ContrastiveError
from contrastive_core.run_directory import CHECKPOINTS_DIR, METRICS_FILE, read_metrics

from .knn_monitor import KnnMonitor


class DataDoesNotFitModelError(ContrastiveError):
    """The dataset's images cannot go through the augmentations and the model (channels, sizes)."""


class PretrainParams(ComponentParams):
    type: Literal["pretrain"]
    epochs: int = Field(100, ge=1)
    """Passes over the training split (the paper: 100 to 800 on ImageNet)."""
    batch_size: int = Field(256, ge=2)
    """Global batch size N (images; each gives the method's views), divided evenly over the processes."""
    max_steps: int | None = Field(None, ge=1)
    """Stop after this many optimiser steps even if epochs remain (for quick runs); the schedule spans it."""
    session_steps: int | None = Field(None, ge=1)
    """Train at most this many steps per invocation, then save a checkpoint and stop as a Ctrl-C does
    (exit status 130): the same command resumes, so a run longer than a job's time limit goes in
    pieces. Unlike max_steps it changes nothing else: the schedule spans the whole stage. Off by default."""
    split: str = "train"
    """The dataset split to pretrain on (e.g. 'unlabeled' for STL-10), read as the dataset gives it for
    training (an image folder: whole photos, see its train_images)."""
    data_on_device: bool = True
    """Hold in-memory datasets (CIFAR, STL-10, Fashion-MNIST) on the accelerator as uint8."""
    num_workers: int = Field(4, ge=0)
    """Loader workers for datasets read from files (they only read and decode images)."""
    checkpoint_every_steps: int = Field(500, ge=1)
    """Write a checkpoint every this many steps (and at the end of every epoch)."""
    keep_checkpoints: int = Field(2, ge=1)
    """How many of the most recent checkpoints to keep."""
    log_every_steps: int = Field(10, ge=1)
    """Log loss, learning rate and throughput to metrics.jsonl and the progress display this often."""
    channels_last: bool = False
    """Use the channels-last memory format for the encoder and its inputs (faster convolutions on GPUs)."""
    compile: bool = False
    """Compile the encoder (and a fused augmentation pipeline's batched transform) with torch.compile."""
    fused_augmentations: bool = True
    """Apply the augmentation list as one batched transform when every op offers one (the built-in ops do):
    the same random parameters and views (to float rounding) without per-op overhead; false runs the ops
    one by one."""
    augmentation_precision: Literal["auto", "fp32", "fp16"] = "auto"
    """The float type of the fused augmentation pipeline's pixel arithmetic after the crop. "auto": fp16 on
    CUDA when run.precision is bf16 or fp16 and a batch's views hold at least 2^24 values (e.g. 512 views
    at 224 px; smaller batches are launch-bound and stay fp32), else fp32. The encoder rounds its input to
    bf16 anyway; half-width pixels halve the augmentation's memory traffic. "fp16" (every batch) needs
    mixed precision. The op-by-op pipeline always computes in fp32."""
    grad_clip_norm: float | None = Field(None, gt=0)
    """Clip the global gradient norm to this value (off by default, as in the paper)."""
    grad_clip_per_parameter: bool = False
    """Apply ``grad_clip_norm`` to each parameter's gradient on its own instead of to their global norm,
    as DINO's reference code does (Caron et al. 2021, facebookresearch/dino ``clip_gradients``, 3.0 by
    default there)."""
    activation_checkpointing: bool = False
    """Recompute the encoder's block activations in the backward pass to fit larger batches in memory."""
    micro_batch_size: int | None = Field(None, ge=1)
    """Gradient caching (Gao et al. 2021, arXiv:2101.06983): run the method's networks on micro-batches of
    this many images per process, twice (without, then with a graph), and its loss once on the whole
    batch, so ``batch_size`` can exceed what fits in memory with the same loss (every negative) and
    gradients. Costs about one extra forward pass. Needs a method that splits its forward into embed and
    objective (every built-in method does). Off by default."""
    micro_batch_norm: Literal["per_micro_batch", "whole_batch"] = "per_micro_batch"
    """BatchNorm under ``micro_batch_size``. "per_micro_batch": each micro-batch is normalised with its own
    statistics, as a run at batch micro_batch_size would be (memory stays flat; the gradients are exactly
    those of that network). "whole_batch": the first pass runs on the whole batch without a graph and
    records every BN call's statistics, the second normalises each micro-batch with them, so embeddings,
    loss and running statistics equal the full batch's; the gradient through the statistics is left out,
    and the first pass holds one layer's activations of the whole batch at a time."""
    global_batchnorm: bool = True
    """With several processes, compute BatchNorm statistics over the global batch (the paper's global BN)."""
    knn_monitor_every_epochs: int | None = Field(None, ge=1)
    """Every this many epochs (and at the end), log the encoder's kNN accuracy (k = 200, T = 0.1) as
    knn_top1/knn_top5 in metrics.jsonl. Off by default; needs a labelled dataset."""
    knn_monitor_splits: tuple[str, str] = ("train", "test")
    """Labelled splits of the recipe's dataset for the monitor: memory bank, queries."""
    knn_monitor_examples: tuple[int, int] = (5000, 2000)
    """Class-balanced numbers of images taken from the two monitor splits (fixed for the run)."""

    @model_validator(mode="after")
    def _per_parameter_clipping_needs_a_norm(self) -> PretrainParams:
        if self.grad_clip_per_parameter and self.grad_clip_norm is None:
            raise ValueError("grad_clip_per_parameter = true needs grad_clip_norm (DINO's code: 3.0)")
        if self.micro_batch_norm == "whole_batch" and self.micro_batch_size is None:
            raise ValueError(
                'micro_batch_norm = "whole_batch" applies to gradient caching: set micro_batch_size'
            )
        if self.micro_batch_norm == "whole_batch" and self.activation_checkpointing:
            raise ValueError(
                'micro_batch_norm = "whole_batch" cannot be combined with activation_checkpointing: the '
                "recomputed BatchNorm calls of the backward could not be matched to their statistics "
                "(gradient caching already bounds activation memory: use one of the two)"
            )
        return self


class Pretrain(Stage):
    """Self-supervised pretraining with the recipe's method, views, networks and loss; exports the encoder."""

    name = "pretrain"
    Params = PretrainParams
    requires = ("data", "method", "model", "optimizer")
    #: ``contrastive bench`` and ``contrastive preview`` follow the first stage that trains the method.
    trains_method = True

    def run(self, context: StageContext) -> dict[str, Any]:
        params, recipe, registry = self.params, context.recipe, context.registry
        accelerator = get_accelerator(recipe.run)
        device, rank, world = accelerator.device, accelerator.process_index, accelerator.num_processes
        main = accelerator.is_main_process
        # Plain text: messages hold paths and [sections], which rich markup would swallow.
        say = partial(context.console.print, markup=False) if main else (lambda *args, **kwargs: None)
        if params.batch_size % world:
            raise ContrastiveError(f"batch_size {params.batch_size} does not divide over {world} processes")
        local_batch = params.batch_size // world
        say(
            f"global batch {params.batch_size} = {world} process{'es' if world > 1 else ''} x {local_batch} "
            f"images on {device}, precision {recipe.run.precision}"
        )

        # --- data: uint8 images; augmentation happens on the device inside the step -----------------
        dataset = build("dataset", recipe.data, registry=registry)
        in_memory = dataset.tensors(params.split) if params.data_on_device else None
        split = None
        if in_memory is not None:
            images = in_memory[0].to(device)
            order = GlobalBatchOrder(len(images), params.batch_size, recipe.run.seed)
            batches = DeviceBatches(images, order, rank, world)
        else:
            # Photos of their own sizes for an image folder (batched as canvases with their sizes).
            split = dataset.training_split(params.split)
            order = GlobalBatchOrder(len(split), params.batch_size, recipe.run.seed)
            batches = LoaderBatches(split, order, rank, world, device, params.num_workers)
        steps_per_epoch = order.steps_per_epoch
        total_steps = params.epochs * steps_per_epoch
        if params.max_steps is not None:
            total_steps = min(total_steps, params.max_steps)

        # --- method (networks, loss, state), view pipelines, optimizer, schedule --------------------
        torch.manual_seed(recipe.run.seed)  # identical initial weights in every process
        parts = build_training_parts(
            recipe,
            registry,
            device=device,
            batch_size=params.batch_size,
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
            fused_augmentations=params.fused_augmentations,
            channels_last=params.channels_last,
            activation_checkpointing=params.activation_checkpointing,
            global_batchnorm=world > 1 and params.global_batchnorm,
            augmentation_precision=params.augmentation_precision,
            run_precision=recipe.run.precision,
            warn=lambda text: say(Text(text, style="yellow")),
        )
        method, optimizer, scheduler = parts.method, parts.optimizer, parts.scheduler
        views_per_step = parts.views_per_image * params.batch_size
        say(
            f"method {recipe.method.type!r}: "
            + ", ".join(f"{name} x {pipeline.view_count}" for name, pipeline in parts.views.items())
            + " views of every image"
        )
        if split is not None:
            check_views_crop_first(recipe, parts.views, split)
        sample = ImageBatch(in_memory[0][:2]) if in_memory is not None else items_batch(split, [0])
        check_data_fits_model(sample, parts.views, method.encoder, device, recipe.model.encoder.type)
        if params.compile:
            method.encoder.compile()  # in place: parameter names (and checkpoints) stay the same
            for pipeline in parts.views.values():
                pipeline.compile_transforms()
        monitor = None
        if params.knn_monitor_every_epochs is not None and main:  # the others go on; it takes seconds
            monitor = KnnMonitor(
                dataset,
                recipe,
                registry,
                device,
                splits=params.knn_monitor_splits,
                train_examples=params.knn_monitor_examples[0],
                test_examples=params.knn_monitor_examples[1],
                batch_size=local_batch,
            )
        generator = augmentation_generator(recipe.run.seed, device, rank)

        # --- resume from the last complete checkpoint of this stage --------------------------------
        loop = TrainingLoop(
            CheckpointManager(
                context.stage_dir / CHECKPOINTS_DIR,
                keep_last=params.keep_checkpoints,
                rank=rank,
                world_size=world,
                barrier=accelerator.wait_for_everyone,
            ),
            # The gradient scaler of fp16 runs (None otherwise) has state too: its scale and growth count.
            {"method": method, "optimizer": optimizer, "scheduler": scheduler, "scaler": accelerator.scaler},
            generator,
            steps_per_epoch=steps_per_epoch,
            total_steps=total_steps,
            device=device,
            reduce=accelerator.reduce if world > 1 else None,
            save_epoch=True,
            say=say,
            non_finite_advice=(
                "Lower the learning rate, raise the temperature or set grad_clip_norm, and run the changed "
                "recipe with --fresh or a new --out (a run directory only resumes the recipe it was started "
                "with)."
            ),
        )
        step = start_step = loop.resume()  # before `prepare`, which wraps the method and the optimizer
        train_method, optimizer = accelerator.prepare(method, optimizer)
        training_step = TrainingStep(
            parts.views,
            train_method,
            method,
            optimizer,
            scheduler,
            accelerator,
            generator,
            channels_last=params.channels_last,
            grad_clip_norm=params.grad_clip_norm,
            grad_clip_per_parameter=params.grad_clip_per_parameter,
            micro_batch_size=params.micro_batch_size,
            micro_batch_norm=params.micro_batch_norm,
        )

        metrics_log = (
            MetricsLog(context.stage_dir / METRICS_FILE, resume_step=step, also=context.log_metrics)
            if main
            else None
        )
        progress = TrainingProgress(context.console, context.key, total_steps, step, enabled=main)
        # A run resumed after its last step trains no more: its result is the last logged record.
        records = read_metrics(metrics_log.path) if metrics_log is not None else []
        logged: dict[str, Any] = records[-1] if records else {}
        interval_start = run_start = time.monotonic()
        checkpoint_seconds = 0.0  # writing checkpoints since the last record (reported in the next one)

        train_method.train()
        with loop:
            try:
                for epoch, images in loop.batches(batches.epoch):
                    # ---- the step: views, method, backward, update, momentum targets ----------------
                    output = training_step(images, StepProgress(loop.step, total_steps, steps_per_epoch))
                    if loop.step == start_step:
                        check_method_metrics(output.metrics, recipe.method.type)
                    step = loop.record(output.loss, output.metrics)  # on the device: no synchronisation

                    # ---- between steps: logging, stop requests, checkpoints ------------------------
                    at_log_step = step % params.log_every_steps == 0
                    # The last step of a session (session_steps) is logged too, so no step's loss is lost.
                    pausing = (
                        params.session_steps is not None
                        and step - start_step >= params.session_steps
                        and step < total_steps
                    )
                    if at_log_step or loop.end_of_epoch or pausing:
                        means = loop.take_means()  # after the NaN/inf guard
                        elapsed = time.monotonic() - interval_start
                        logged = {
                            "step": step,
                            "epoch": step / steps_per_epoch,
                            "loss": means.loss,
                            "lr": optimizer.param_groups[0]["lr"],
                            "views_per_s": views_per_step * means.steps / max(elapsed, 1e-9),
                        } | means.metrics
                        epochs_done, mid_epoch = divmod(step, steps_per_epoch)
                        if monitor is not None and (
                            step == total_steps
                            or (not mid_epoch and epochs_done % params.knn_monitor_every_epochs == 0)
                        ):
                            monitor_start = time.monotonic()
                            logged.update(monitor(method.exported_encoder()))
                            logged["knn_monitor_s"] = time.monotonic() - monitor_start
                        if checkpoint_seconds:
                            logged["checkpoint_s"] = checkpoint_seconds
                            checkpoint_seconds = 0.0
                        # Wall time of this session's loop: with the two durations above, what `contrastive
                        # bench --end-to-end` splits a real run's time into.
                        logged["elapsed_s"] = time.monotonic() - run_start
                        if metrics_log is not None:
                            metrics_log.write(logged)
                        progress.update(step, epoch + 1, params.epochs, logged)
                        interval_start = time.monotonic()
                    loop.stop_if_requested(agree=at_log_step)
                    saved = step % params.checkpoint_every_steps == 0 or loop.end_of_epoch
                    if saved:
                        loop.check_finite()  # waits for the queued steps, so the time below is the save's
                        save_start = time.monotonic()
                        loop.save()
                        checkpoint_seconds += time.monotonic() - save_start
                    if pausing:
                        loop.pause(f"trained session_steps = {params.session_steps}", saved=saved)
            finally:
                progress.close()
                if metrics_log is not None:
                    metrics_log.close()

        # --- unreadable files the dataset left out (image_folder, on_bad_image = "skip"): never silent --
        skipped = sorted(set(gather_object([str(path) for path in getattr(split, "bad_files", [])])))
        if skipped:
            shown = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            say(
                Text(
                    f"skipped {len(skipped)} unreadable image file{'s' if len(skipped) > 1 else ''} of split "
                    f'{params.split!r} (on_bad_image = "skip"): {shown}',
                    style="yellow",
                )
            )

        # --- export the method's encoder (heads, predictors and targets are discarded, as in the papers) -
        if main:
            export_encoder(method.exported_encoder(), context.stage_dir)
        accelerator.wait_for_everyone()
        # Every process records the files, so later stages find them whatever process they run in.
        context.artifacts[context.key] = exported_files(context.stage_dir)
        seconds = time.monotonic() - run_start
        return {
            "loss": logged.get("loss", float("nan")),
            "steps": step,
            "epochs": step / steps_per_epoch,
            "views_per_s": views_per_step * (step - start_step) / max(seconds, 1e-9),
        } | ({"skipped_images": len(skipped)} if skipped else {})


#: The keys pretrain writes to every metrics.jsonl record; a method's metrics may not reuse them.
LOGGED_KEYS = (
    "step",
    "epoch",
    "loss",
    "lr",
    "views_per_s",
    "knn_top1",
    "knn_top5",
    "knn_monitor_s",
    "checkpoint_s",
    "elapsed_s",
)


def check_method_metrics(metrics: Any, method: str) -> None:
    """A method's metrics are 0-d tensors under names of their own (checked once, from shapes: no sync)."""
    for name, value in metrics.items():
        if name in LOGGED_KEYS:
            raise ContrastiveError(
                f"method {method!r} returns a metric named {name!r}, which pretrain logs itself; rename it"
            )
        if not isinstance(value, torch.Tensor) or value.ndim != 0:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ContrastiveError(
                f"method {method!r} returns metric {name!r} as {shape}; metrics must be 0-d tensors"
            )


def check_data_fits_model(
    images: ImageBatch,
    views: dict[str, Any],
    encoder: nn.Module,
    device: torch.device,
    encoder_type: str,
) -> None:
    """Put a few dataset images (a uint8 batch ``(B, C, H, W)``, with its sizes for photos of their own
    sizes) through every view group's augmentations (all of a group's views, stacked as the step stacks
    them) and the encoder once, before training, so that data and model that do not fit (channels,
    sizes) stop with a clear error rather than a traceback from inside the first step.

    Side-effect free: eval mode (BatchNorm statistics untouched), no gradients, and a generator of its own,
    so the training generator, the weights and the resumed state are exactly as without the check.
    """
    generator = torch.Generator(device=device).manual_seed(0)
    was_training = encoder.training
    encoder.eval()
    batch = images.to(device)
    try:
        with torch.no_grad():
            for group, pipeline in views.items():
                try:
                    stacked = pipeline.stacked_views(batch.pixels, None, generator, sizes=batch.sizes)
                except ValueError as error:
                    raise ValueError(f"view group {group!r}: {error}") from None
                encoder(stacked.float())  # shapes are what is checked; reduced-precision views too
    except (RuntimeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataDoesNotFitModelError(
            f"the dataset's images (uint8 {tuple(images.pixels.shape[1:])}, C x H x W) do not fit the augmentations "
            f"and the model (encoder {encoder_type!r}): {first_line}. Check the encoder's in_channels and the "
            "augmentations' sizes against the dataset."
        ) from None
    finally:
        encoder.train(was_training)
