"""``contrastive preview RECIPE``: a PNG grid of dataset images and their augmented views.

Each row is one image of the recipe's dataset followed by views drawn by the recipe's augmentation
pipeline, built by the same :func:`~contrastive_core.augmentation_pipeline.build_pipeline` as the
pretrain stage. So the picture shows what the model will be trained on (SimCLR, Chen et al. 2020,
Sec. 2.1: two views ``t(x), t'(x)`` per image) before any GPU time is spent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from pydantic import BaseModel
from rich.console import Console
from torchvision.io import write_png

from ..augmentation_pipeline import AugmentationPipeline, build_pipeline
from ..build import build
from ..cli import registry_from_args
from ..errors import ContrastiveError
from ..image_grid import auto_scale, image_grid, to_display_uint8
from ..recipe import load_recipe
from ..registry import Registry

#: Augmentations of this type standardise pixels; trailing ones are undone for display (see below).
NORMALIZE = "normalize"


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    preview = commands.add_parser(
        "preview",
        parents=[common],
        help="write a PNG grid of dataset images and their augmented views",
        description="Write a PNG grid: each row is one image of the recipe's dataset, then views of it "
        "drawn by the recipe's augmentation pipeline (the same code as training).",
    )
    preview.add_argument("recipe", type=Path, help="the recipe TOML file")
    preview.add_argument("--n", type=positive_int, default=8, help="images (rows) to show (default: 8)")
    preview.add_argument("--views", type=positive_int, default=4, help="views per image (default: 4)")
    preview.add_argument(
        "--out",
        type=Path,
        default=Path("preview.png"),
        metavar="FILE.png",
        help="PNG file (default: preview.png)",
    )
    preview.add_argument(
        "--split", help="dataset split to take images from (default: the pretrain stage's split, else train)"
    )
    preview.add_argument(
        "--scale",
        type=positive_int,
        help="enlarge every image this many times (default: enough for cells of at least 96 pixels)",
    )
    preview.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set augmentations[0].scale=[0.2,1.0] (repeatable)",
    )
    preview.set_defaults(handler=run_preview)


def run_preview(args: argparse.Namespace, console: Console) -> int:
    registry = registry_from_args(args)
    recipe = load_recipe(args.recipe, registry=registry, overrides=args.overrides)
    pretrain = pretrain_stage(recipe)
    split = args.split or getattr(pretrain, "split", "train")
    images = sample_images(recipe, registry, split, args.n)
    # Fused or op by op, as the pretrain stage builds it (the two draw the same views up to rounding).
    fused = getattr(pretrain, "fused_augmentations", True)
    pipeline = build_pipeline(recipe.augmentations, registry=registry, fused=fused)
    generator = torch.Generator().manual_seed(recipe.run.seed)
    with torch.no_grad():
        views = [displayable(view, pipeline) for view in pipeline.views(images, args.views, generator)]
    rows = [[images[index], *(view[index] for view in views)] for index in range(len(images))]
    grid = image_grid(rows, scale=args.scale or auto_scale(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_png(grid, str(args.out))
    if not recipe.augmentations:
        console.print("[yellow]the recipe has no [[augmentations]]: every view equals its image[/yellow]")
    console.print(
        f"wrote {args.out} ({len(images)} images from {recipe.data.type} '{split}', each followed by "
        f"{args.views} views; {grid.shape[2]}x{grid.shape[1]} pixels)"
    )
    return 0


def pretrain_stage(recipe: BaseModel) -> BaseModel | None:
    """The params of the recipe's first pretrain stage, whose split and pipeline the preview follows."""
    return next((stage for stage in recipe.stages if stage.type == "pretrain"), None)


def sample_images(recipe: BaseModel, registry: Registry, split: str, n: int) -> torch.Tensor:
    """``n`` images (uint8 (n, C, H, W)) spread evenly over ``split``, so one preview shows varied classes."""
    if recipe.data is None:
        raise ContrastiveError("the recipe has no [data] section: there are no images to preview")
    dataset = build("dataset", recipe.data, registry=registry)
    if split not in dataset.splits:
        raise ContrastiveError(
            f"dataset {recipe.data.type!r} has no split {split!r}; its splits: {', '.join(dataset.splits)}"
        )
    items = dataset.split(split)
    if len(items) == 0:
        raise ContrastiveError(f"split {split!r} of dataset {recipe.data.type!r} holds no images")
    # Evenly spaced positions rather than the first n: splits are often stored sorted by class.
    positions = torch.linspace(0, len(items) - 1, min(n, len(items))).round().long().unique()
    return torch.stack([items[int(position)][0] for position in positions])


def displayable(views: torch.Tensor, pipeline: AugmentationPipeline) -> torch.Tensor:
    """Views (B, C, H, W) as the pipeline made them -> uint8 for a PNG.

    A pipeline usually ends by standardising pixels, ``(x - mean) / std``, which leaves [0, 1]; those
    trailing ``normalize`` ops are inverted here so the picture shows the pixels before standardisation
    (what the eye can judge). Anything else outside [0, 1] is clipped.
    """
    for augmentation in reversed(list(pipeline.augmentations)):
        if getattr(augmentation.params, "type", None) != NORMALIZE:
            break
        mean = torch.tensor(augmentation.params.mean, dtype=views.dtype).view(1, -1, 1, 1)
        std = torch.tensor(augmentation.params.std, dtype=views.dtype).view(1, -1, 1, 1)
        views = views * std + mean
    return to_display_uint8(views)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
