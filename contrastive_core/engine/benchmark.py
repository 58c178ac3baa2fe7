"""Measuring where a contrastive training step spends its time (``contrastive bench``).

Everything is built from the recipe's own components, as its first ``pretrain`` stage builds them, on
the recipe's device and precision, in one process. Six measurements, each in seconds per step:

* ``data``: the next uint8 batch of B images from the engine's batch source (on-device indexing for
  in-memory datasets, loader workers for image folders). A loader prefetches while other parts run, so
  interleaved rounds would time batches already waiting; for a loader the part is instead timed alone,
  ``steps`` consecutive batches of a fresh epoch, worker start-up included: its sustained rate (a lower
  bound). If its views/s is below the full step's, the loader starves training;
* ``augmentation``: the recipe's pipeline making both views of a fixed batch (2B views);
* ``loss``: the recipe's loss, forward and backward, on 2B projections of the model's output shape;
* ``optimizer``: one step of the recipe's optimizer (e.g. LARS) over the model's gradients;
* ``bare``: the method's own step, as the reference bare-step script times SimCLR's: the method's
  forward (every network it runs and its loss: encoder, head and NT-Xent for SimCLR; online and target
  networks for BYOL) and backward on pre-made random views, then ``torch.optim.SGD`` with momentum 0.9,
  in the run's precision and memory format; no augmentation, no recipe optimizer, no schedule, no
  momentum update;
* ``full``: the next batch plus :class:`~contrastive_core.engine.training_step.TrainingStep`, the exact
  step of the pretrain stage (views, forward, loss, backward, optimizer, schedule).

``full / bare`` (throughput of the full step over the bare step's) is the fraction of the method's
own speed that training keeps; the goal on a GPU is at least 0.9. The parts overlap (``bare``
contains a loss and an optimiser step) and run one at a time, so their shares of ``full`` need not add
up to one.

Timing: every part first runs ``warmup`` untimed steps (compilation, allocator and cuDNN autotuning
happen there). The ``steps`` timed steps are then split into ``rounds``, and the rounds interleave the
parts (round 1 of every part, then round 2, ...), with the device synchronised at each round's start
and end, so queued GPU work is counted while host-side launching overlaps within a round as it does in
training. A part's time is the median of its rounds: on a shared machine a burst of other work then
slows every part alike or is dropped, instead of falling on whichever part ran at that moment.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from ..components.method import StepProgress
from ..errors import ContrastiveError
from ..registration.build import build
from ..registration.registry import Registry
from .accelerator import get_accelerator
from .file_batches import DeviceDecodable
from .image_batch import ImageBatch
from .peak_memory import PeakMemory
from .random_state import augmentation_generator
from .training_batches import DeviceBatches, GlobalBatchOrder, LoaderBatches
from .training_parts import build_training_parts, check_views_crop_first, training_stage
from .training_step import TrainingStep

#: The bare step's SGD settings, as in the reference bare-step script (the values do not change the cost).
BARE_SGD = {"lr": 0.1, "momentum": 0.9}
#: Synthetic datasets hold this many batches, so consecutive steps index different images.
SYNTHETIC_BATCHES = 4


@dataclass(frozen=True)
class BenchSettings:
    """What to measure: ``steps`` timed steps per part in ``rounds`` interleaved rounds, after ``warmup``
    untimed ones, of ``batch_size`` images (None: the pretrain stage's), from the recipe's dataset or,
    with ``synthetic_images`` = (C, H, W), from random uint8 images held on the device."""

    steps: int = 20
    warmup: int = 3
    rounds: int = 5
    batch_size: int | None = None
    synthetic_images: tuple[int, int, int] | None = None


@dataclass(frozen=True)
class Measurement:
    """One timed part: ``seconds_per_step`` (median over rounds) for ``views_per_step`` views (2 per image)."""

    name: str
    description: str
    seconds_per_step: float
    views_per_step: int
    round_seconds: list[float]
    peak_memory_bytes: int | None = None
    """The highest memory in the part's memory round (one untimed round after the timed ones): CUDA
    ``max_memory_allocated``, CPU the process's peak resident set (:mod:`.peak_memory`); None where it
    cannot be measured."""
    memory_rise_bytes: int | None = None
    """The most the part added above the memory in use when that round started (its working memory)."""

    @property
    def views_per_s(self) -> float:
        return self.views_per_step / self.seconds_per_step

    @property
    def mean_seconds_per_step(self) -> float:
        """The mean of the rounds: what a sum of steps costs (``bench --end-to-end`` compares it)."""
        return statistics.mean(self.round_seconds)

    @property
    def best_seconds_per_step(self) -> float:
        """The fastest round: on a machine shared with other work, the least disturbed estimate."""
        return min(self.round_seconds)


@dataclass
class BenchmarkResult:
    """The machine, the date, the recipe, the settings and the measurements of one benchmark run."""

    machine: dict[str, Any]
    date: str
    recipe: str
    settings: dict[str, Any]
    measurements: dict[str, Measurement] = field(default_factory=dict)

    @property
    def full_over_bare(self) -> float:
        """Throughput of the full training step as a fraction of the bare step's (the method's own)."""
        return self.measurements["full"].views_per_s / self.measurements["bare"].views_per_s

    def share_of_full(self, name: str) -> float:
        """The time of measurement ``name`` as a fraction of the full step's time."""
        return self.measurements[name].seconds_per_step / self.measurements["full"].seconds_per_step

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "date": self.date,
            "recipe": self.recipe,
            "settings": self.settings,
            "measurements": {
                name: {
                    **asdict(measurement),
                    "views_per_s": measurement.views_per_s,
                    "share_of_full": self.share_of_full(name),
                    "best_seconds_per_step": measurement.best_seconds_per_step,
                }
                for name, measurement in self.measurements.items()
            },
            "full_over_bare": self.full_over_bare,
            "full_over_bare_best_rounds": (
                self.measurements["bare"].best_seconds_per_step
                / self.measurements["full"].best_seconds_per_step
            ),
        }


@dataclass
class _Part:
    """A part to time: what it measures and one step of it."""

    description: str
    step: Callable[[], object]


def run_benchmark(
    recipe: BaseModel,
    registry: Registry,
    settings: BenchSettings,
    recipe_path: str | Path = "recipe",
    report: Callable[[str], None] = lambda line: None,
    between_rounds: Callable[[int], object] | None = None,
) -> BenchmarkResult:
    """Measure the parts (see the module docstring) for ``recipe``; ``report`` hears progress lines.
    ``between_rounds(index)`` runs after each timed round, outside the clock (``bench --end-to-end``
    runs a session of the real stage there, so both are measured in the same stretches of time)."""
    stage = training_stage(recipe, registry)
    if stage is None:
        raise ContrastiveError(
            "contrastive bench measures the training step, and the recipe has no stage that trains its "
            "method (such as pretrain)"
        )
    accelerator = get_accelerator(recipe.run)
    if accelerator.num_processes > 1:
        raise ContrastiveError("contrastive bench measures one process; run it without a launcher")
    device = accelerator.device
    batch = settings.batch_size or stage.batch_size
    fused = getattr(stage, "fused_augmentations", True)
    machine = machine_info(device)  # before the work starts: its load average is the other work's
    torch.manual_seed(recipe.run.seed)

    # --- the recipe's parts, built as the pretrain stage builds them --------------------------------
    source, source_description, order = _batch_source(recipe, registry, stage, batch, device, settings)
    batches = _endless(source)
    parts = build_training_parts(
        recipe,
        registry,
        device=device,
        batch_size=batch,
        total_steps=stage.epochs * order.steps_per_epoch,
        steps_per_epoch=order.steps_per_epoch,
        fused_augmentations=fused,
        channels_last=stage.channels_last,
        activation_checkpointing=stage.activation_checkpointing,
        augmentation_precision=stage.augmentation_precision,
        run_precision=recipe.run.precision,
        warn=report,
    )
    method, optimizer, scheduler = parts.method, parts.optimizer, parts.scheduler
    if isinstance(source, LoaderBatches):  # photos of their own sizes need a crop first, as in pretrain
        check_views_crop_first(recipe, parts.views, source.dataset)
    if stage.compile:
        method.encoder.compile()
        for pipeline in parts.views.values():
            pipeline.compile_transforms()
    generator = augmentation_generator(recipe.run.seed, device)
    train_method, optimizer = accelerator.prepare(method, optimizer)
    train_method.train()
    training_step = TrainingStep(
        parts.views,
        train_method,
        method,
        optimizer,
        scheduler,
        accelerator,
        generator,
        channels_last=stage.channels_last,
        grad_clip_norm=stage.grad_clip_norm,
        grad_clip_per_parameter=getattr(stage, "grad_clip_per_parameter", False),
        micro_batch_size=getattr(stage, "micro_batch_size", None),
        micro_batch_norm=getattr(stage, "micro_batch_norm", "per_micro_batch"),
    )
    total_steps = stage.epochs * order.steps_per_epoch
    progress = StepProgress(
        0, total_steps, order.steps_per_epoch
    )  # the schedules' values do not change the cost

    # --- one real step's tensors: the batch, its views and the gradients -----------------------------
    images = next(batches)
    sample_views = training_step.make_views(images)
    with accelerator.autocast():
        accelerator.backward(train_method(sample_views, progress).loss)
    # Kept aside: the full step sets gradients to None, the optimizer part puts these back each step.
    gradients = [(p, p.grad) for p in method.trainable().parameters() if p.grad is not None]
    views_per_image = parts.views_per_image
    view_text = " + ".join(f"{name} x {pipeline.view_count}" for name, pipeline in parts.views.items())

    def augmentation() -> None:
        training_step.make_views(images)

    def optimizer_step() -> None:
        for parameter, gradient in gradients:
            parameter.grad = gradient
        optimizer.step()

    timed = {
        "data": _Part(f"next batch of {batch} images ({source_description})", lambda: next(batches)),
        "augmentation": _Part(
            f"{', '.join(sorted({type(p).__name__ for p in parts.views.values()}))}: {view_text} views of "
            f"{batch} uint8 images",
            augmentation,
        ),
    }
    loss_part = _loss_part(recipe, method, accelerator, sample_views, batch)
    if loss_part is not None:
        timed["loss"] = loss_part
    timed |= {
        "optimizer": _Part(f"{recipe.optimizer.type} step over the method's gradients", optimizer_step),
        "bare": _Part(
            f"the {recipe.method.type} method's fwd+bwd (its networks and loss) + SGD on pre-made views",
            _bare_step(train_method, accelerator, sample_views, progress),
        ),
        "full": _Part(
            "next batch + the pretrain stage's step",
            lambda: training_step(next(batches), progress),
        ),
    }
    loader_fed = isinstance(source, LoaderBatches)
    peaks: dict[str, tuple[int | None, int | None]] = {}
    timings = time_interleaved(
        {name: part.step for name, part in timed.items() if not (loader_fed and name == "data")},
        warmup=settings.warmup,
        steps=settings.steps,
        rounds=settings.rounds,
        device=device,
        report=report,
        peaks=peaks,
        between_rounds=between_rounds,
    )
    batches.close()  # stops the loader's workers (and a decoding thread) before anything else runs
    if loader_fed:
        report(f"timing the loader alone: {settings.steps} consecutive batches of a fresh epoch")
        timings["data"] = [time_loader(source, settings.steps, device)]
        timings = {name: timings[name] for name in timed}  # the parts' order
    views = views_per_image * batch
    first_views = next(iter(sample_views.values()))
    result = BenchmarkResult(
        machine=machine,
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        recipe=str(recipe_path),
        settings={
            "steps": settings.steps,
            "warmup": settings.warmup,
            "rounds": min(settings.rounds, settings.steps),
            "batch_size": batch,
            "views_per_step": views,
            "view_groups": {name: pipeline.view_count for name, pipeline in parts.views.items()},
            "view_sizes": {name: list(view.shape[1:]) for name, view in sample_views.items()},
            "data": source_description,
            "images": list(images.pixels.shape[1:]),
            "views": list(first_views.shape[1:]),
            "method": recipe.method.type,
            "encoder": recipe.model.encoder.type,
            "precision": recipe.run.precision,
            "channels_last": stage.channels_last,
            "compile": stage.compile,
            "fused_augmentations": fused,
            "pipeline": type(next(iter(parts.views.values()))).__name__,
            "augmentation_dtype": str(first_views.dtype).removeprefix("torch."),
            "optimizer": recipe.optimizer.type,
            "loss": recipe.loss.type if recipe.loss is not None else None,
            "micro_batch_size": getattr(stage, "micro_batch_size", None),
            "micro_batch_norm": getattr(stage, "micro_batch_norm", None),
            "torch_threads": torch.get_num_threads(),
        },
    )
    for name, part in timed.items():
        rounds = timings[name]
        peak, rise = peaks.get(name, (None, None))  # the loader's part has no memory round
        result.measurements[name] = Measurement(
            name, part.description, statistics.median(rounds), views, rounds, peak, rise
        )
    return result


def _loss_part(
    recipe: BaseModel, method: nn.Module, accelerator: Any, views: dict[str, torch.Tensor], batch: int
) -> _Part | None:
    """The recipe's ``[loss]`` alone, forward and backward on random two-view projections of the head's
    size; None when the method takes no loss from the recipe."""
    loss_fn, head = getattr(method, "loss", None), getattr(method, "head", None)
    if recipe.loss is None or loss_fn is None or head is None:
        return None
    first = next(iter(views.values()))
    projections = torch.randn(2 * batch, head.out_dim, device=first.device).requires_grad_()

    def loss_alone() -> None:
        projections.grad = None
        accelerator.backward(loss_fn(*projections.chunk(2)))

    return _Part(f"{recipe.loss.type} fwd+bwd on {tuple(projections.shape)} projections", loss_alone)


def time_interleaved(
    parts: dict[str, Callable[[], object]],
    *,
    warmup: int,
    steps: int,
    rounds: int,
    device: torch.device,
    report: Callable[[str], None] = lambda line: None,
    peaks: dict[str, tuple[int | None, int | None]] | None = None,
    between_rounds: Callable[[int], object] | None = None,
) -> dict[str, list[float]]:
    """Seconds per step of each part in each round (see the module docstring for the scheme).

    Each part runs ``warmup`` untimed steps, then ``steps`` timed steps spread over ``rounds`` rounds
    (at least one step per round) that visit the parts in turn; ``between_rounds(index)`` runs after
    round ``index``, outside every clock. With ``peaks``, one more round of each part, untimed, after
    the timed ones, sets ``peaks[name]`` to (peak bytes, rise in bytes)
    (:class:`.peak_memory.PeakMemory`, reset before it and read after it). Memory is measured apart
    from time because on the CPU the reset hands freed memory back to the operating system: the first
    step of a timed round after it would page its buffers in again (on this project's CPU, about 50 ms
    of a 235 ms step), which a training loop never pays.
    """
    for name, step in parts.items():
        report(f"warming up {name} ({warmup} steps)")
        for _ in range(warmup):
            step()
    rounds = max(1, min(rounds, steps))
    per_round = [steps // rounds + (1 if index < steps % rounds else 0) for index in range(rounds)]
    seconds: dict[str, list[float]] = {name: [] for name in parts}
    for index, count in enumerate(per_round):
        report(f"round {index + 1} of {rounds}: {count} step{'s' if count > 1 else ''} of each part")
        for name, step in parts.items():
            synchronize(device)
            start = time.perf_counter()
            for _ in range(count):
                step()
            synchronize(device)
            seconds[name].append((time.perf_counter() - start) / count)
        if between_rounds is not None:
            between_rounds(index)
    if peaks is not None:
        report(f"memory: one more round of each part ({per_round[0]} steps), untimed")
        memory = PeakMemory(device)
        for name, step in parts.items():
            synchronize(device)
            memory.reset()
            for _ in range(per_round[0]):
                step()
            synchronize(device)
            peaks[name] = (memory.peak(), memory.rise)
    return seconds


def time_loader(source: LoaderBatches, batches: int, device: torch.device) -> float:
    """Seconds per batch over ``batches`` consecutive batches of a fresh epoch of ``source`` (fewer if
    the epoch is shorter), from starting its workers to the last batch on the device."""
    synchronize(device)
    start = time.perf_counter()
    count, end = 0, start
    for _ in source.epoch(0):
        count += 1
        if count == batches:
            synchronize(device)
            end = time.perf_counter()  # before the loader shuts its workers down, which waits for them
            break
    else:
        synchronize(device)
        end = time.perf_counter()
    return (end - start) / max(count, 1)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (a no-op on the CPU, whose ops finish when they return)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _bare_step(
    method: nn.Module, accelerator: Any, views: dict[str, torch.Tensor], progress: StepProgress
) -> Callable[[], None]:
    """The method's own step without the pipeline around it: its forward (every network it runs and its
    loss) and backward on fixed random views shaped like every view group's, in the run's precision,
    and plain SGD with momentum over its trained parameters; no augmentation, no recipe optimizer, no
    schedule, no momentum update. It changes the method's state as a training step would (its weights,
    the keys a MoCo queue holds), which the timing does not depend on."""
    inputs = {name: torch.rand_like(group) for name, group in views.items()}  # keeps the memory format
    sgd = torch.optim.SGD(method.trainable().parameters(), **BARE_SGD)

    def step() -> None:
        with accelerator.autocast():
            loss = method(inputs, progress).loss
        loss.backward()
        sgd.step()
        sgd.zero_grad(set_to_none=True)

    return step


def _batch_source(
    recipe: BaseModel,
    registry: Registry,
    stage: BaseModel,
    batch: int,
    device: torch.device,
    settings: BenchSettings,
) -> tuple[DeviceBatches | LoaderBatches, str, GlobalBatchOrder]:
    """The engine's batch source for the benchmark, a description of it, and its batch order."""
    seed = recipe.run.seed
    if settings.synthetic_images is not None:
        channels, height, width = settings.synthetic_images
        count = SYNTHETIC_BATCHES * batch
        generator = torch.Generator().manual_seed(seed)
        images = torch.randint(
            0, 256, (count, channels, height, width), dtype=torch.uint8, generator=generator
        )
        order = GlobalBatchOrder(count, batch, seed)
        description = f"synthetic uint8 {channels}x{height}x{width} on the device"
        return DeviceBatches(images.to(device), order, 0, 1), description, order
    if recipe.data is None:
        raise ContrastiveError("the recipe has no [data] section; give --synthetic-images C,H,W")
    dataset = build("dataset", recipe.data, registry=registry)
    in_memory = dataset.tensors(stage.split) if stage.data_on_device else None
    if in_memory is not None:
        order = GlobalBatchOrder(len(in_memory[0]), batch, seed)
        description = f"{recipe.data.type} '{stage.split}' on the device"
        return DeviceBatches(in_memory[0].to(device), order, 0, 1), description, order
    split = dataset.training_split(stage.split)  # what pretrain reads: an image folder's whole photos
    order = GlobalBatchOrder(len(split), batch, seed)
    decodes_on_device = isinstance(split, DeviceDecodable) and split.decodes_on(device)
    description = (
        f"{recipe.data.type} '{stage.split}', {stage.num_workers} loader workers, decoded "
        f"{f'on {device.type}' if decodes_on_device else 'by the workers'}, timed alone"
    )
    return LoaderBatches(split, order, 0, 1, device, stage.num_workers), description, order


def _endless(source: DeviceBatches | LoaderBatches) -> Iterator[ImageBatch]:
    """The source's batches, epoch after epoch."""
    epoch = 0
    while True:
        yield from source.epoch(epoch)
        epoch += 1


def machine_info(device: torch.device) -> dict[str, Any]:
    """CPU model and cores, the load average (other work running), Python and torch versions, and the
    device (with the GPU's name on CUDA)."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what the platform reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"
