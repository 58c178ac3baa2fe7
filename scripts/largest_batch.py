"""The largest batch that trains on one device, with and without gradient caching (docs/performance.md).

For each setting (no caching, then each ``--micro`` size), the batch doubles from ``--start`` until a
training step runs out of device memory or ``--limit`` is reached. Each batch size runs ``--steps``
steps of the pretrain stage's own step (:class:`contrastive_core.engine.TrainingStep`) on synthetic uint8
images held on the device; the time per step (after one untimed step) and the peak memory are printed,
one JSON document per line, as they are measured:

    python scripts/largest_batch.py recipes/simclr_r50.toml --images 3,256,256 --micro 256
    python scripts/largest_batch.py recipes/quickstart.toml --images 1,28,28 --start 64 --limit 256 \
        --set run.device=cpu --set run.precision=no       # a smoke run on the CPU

The images stay on the device, so at very large batches they (B x 3 x 256 x 256 bytes) and the views
they give count against the memory too, as in training with ``data_on_device``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch

from contrastive_core import default_registry, load_recipe
from contrastive_core.components import StepProgress
from contrastive_core.engine import (
    TrainingStep,
    augmentation_generator,
    build_training_parts,
    get_accelerator,
)
from contrastive_core.engine.benchmark import synchronize
from contrastive_core.engine.peak_memory import PeakMemory
from contrastive_core.engine.training_parts import training_stage


def measure(
    recipe, registry, batch: int, micro: int | None, images: tuple[int, int, int], steps: int
) -> dict:
    """One batch size: ``steps`` timed steps after one untimed; raises ``torch.OutOfMemoryError``."""
    stage = training_stage(recipe, registry)
    accelerator = get_accelerator(recipe.run)
    device = accelerator.device
    torch.manual_seed(recipe.run.seed)
    parts = build_training_parts(
        recipe,
        registry,
        device=device,
        batch_size=batch,
        total_steps=1000,
        steps_per_epoch=100,
        fused_augmentations=stage.fused_augmentations,
        channels_last=stage.channels_last,
        activation_checkpointing=stage.activation_checkpointing,
        augmentation_precision=stage.augmentation_precision,
        run_precision=recipe.run.precision,
    )
    method, optimizer = accelerator.prepare(parts.method, parts.optimizer)
    method.train()
    step = TrainingStep(
        parts.views,
        method,
        parts.method,
        optimizer,
        parts.scheduler,
        accelerator,
        augmentation_generator(recipe.run.seed, device),
        channels_last=stage.channels_last,
        micro_batch_size=micro,
        micro_batch_norm=stage.micro_batch_norm,
    )
    pixels = torch.randint(0, 256, (batch, *images), dtype=torch.uint8, device=device)
    memory = PeakMemory(device)
    memory.reset()
    step(pixels, StepProgress(0, 1000, 100))  # untimed: allocator growth, cuDNN autotuning
    synchronize(device)
    start = time.perf_counter()
    for index in range(steps):
        step(pixels, StepProgress(index + 1, 1000, 100))
    synchronize(device)
    seconds = (time.perf_counter() - start) / steps
    return {
        "batch": batch,
        "micro_batch_size": micro,
        "seconds_per_step": seconds,
        "images_per_s": batch / seconds,
        "peak_memory_gib": (memory.peak() or 0) / 2**30,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--images", default="3,256,256", help="C,H,W of the synthetic uint8 images")
    parser.add_argument("--micro", type=int, nargs="*", default=[256], help="micro_batch_size values to try")
    parser.add_argument("--start", type=int, default=256)
    parser.add_argument("--limit", type=int, default=65536)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    images = tuple(int(part) for part in args.images.split(","))
    registry = default_registry()
    recipe = load_recipe(args.recipe, registry=registry, overrides=args.overrides)

    for micro in [None, *args.micro]:
        batch, largest = max(args.start, micro or 0), None
        while batch <= args.limit:
            try:
                result = measure(recipe, registry, batch, micro, images, args.steps)
            except torch.OutOfMemoryError:
                print(
                    json.dumps({"batch": batch, "micro_batch_size": micro, "out_of_memory": True}), flush=True
                )
                break
            finally:
                gc.collect()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            print(json.dumps(result), flush=True)
            largest = result
            batch *= 2
        summary = {"micro_batch_size": micro, "largest_batch": largest and largest["batch"]}
        if largest is not None:
            summary["seconds_per_step_at_largest"] = largest["seconds_per_step"]
        print(json.dumps({"summary": summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
