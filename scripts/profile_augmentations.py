"""Where a recipe's fused augmentation pipeline spends its time on the device, kernel by kernel.

    python scripts/profile_augmentations.py RECIPE [--batch 256] [--images 3,256,256] [--dtypes float32,float16]

Builds the recipe's augmentation pipeline (as the pretrain stage does), makes two views of a batch of
random uint8 images of shape --images on the recipe's device, and for each compute dtype prints the
median time of the whole call over 10 calls, then the torch.profiler table of its device kernels
(top 12 by total time) over 5 calls. A tool for finding the next thing to speed up, not a benchmark:
``contrastive bench`` gives the figures of record.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.profiler import ProfilerActivity, profile

from contrastive_core import default_registry, load_recipe
from contrastive_core.engine import build_pipeline, get_accelerator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recipe")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--images", default="3,256,256", help="C,H,W of the uint8 source images")
    parser.add_argument("--dtypes", default="float32,float16")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, registry=default_registry())
    device = get_accelerator(recipe.run).device
    pipeline = build_pipeline(recipe.augmentations, registry=default_registry()).to(device)
    shape = tuple(int(side) for side in args.images.split(","))
    images = torch.randint(0, 256, (args.batch, *shape), dtype=torch.uint8, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    # torch has named the device columns "device_..." since 2.4 and "cuda_..." before.
    sort_keys = (
        ["self_device_time_total", "self_cuda_time_total"]
        if device.type == "cuda"
        else ["self_cpu_time_total"]
    )

    def synchronize() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for name in args.dtypes.split(","):
        pipeline.set_compute_dtype(getattr(torch, name))
        for _ in range(3):
            pipeline.stacked_views(images, 2, generator)
        times = []
        for _ in range(10):
            synchronize()
            start = time.perf_counter()
            pipeline.stacked_views(images, 2, generator)
            synchronize()
            times.append(time.perf_counter() - start)
        milliseconds = 1000 * statistics.median(times)
        print(
            f"== {type(pipeline).__name__} in {name}: {milliseconds:.2f} ms for {2 * args.batch} views "
            f"({2 * args.batch / milliseconds * 1000:,.0f} views/s) on {device}",
            flush=True,
        )
        with profile(activities=activities) as profiler:
            for _ in range(5):
                pipeline.stacked_views(images, 2, generator)
            synchronize()
        for sort_key in sort_keys:
            try:
                table = profiler.key_averages().table(
                    sort_by=sort_key, row_limit=12, max_name_column_width=60
                )
            except (AttributeError, KeyError):
                continue
            print(table, flush=True)
            break


if __name__ == "__main__":
    main()
