"""``contrastive preview RECIPE``: a PNG grid of dataset images and their augmented views.

Each row is one image of the recipe's dataset followed by its views: every view group of the recipe's
method (SimCLR's two views ``t(x), t'(x)``, Chen et al. 2020, Sec. 2.1; BYOL's two asymmetric views;
DINO's global and local crops), drawn by the pipelines the pretrain stage builds, with the same code.
So the picture shows what the model will be trained on before any GPU time is spent. A recipe without
``[method]`` shows ``--views`` views of its ``[[augmentations]]`` list.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import BaseModel
from rich.console import Console
from rich.text import Text
from torchvision.io import write_png

from ...engine.augmentation_pipeline import AugmentationPipeline, build_pipeline, build_view_pipeline
from ...engine.training_parts import training_stage
from ...errors import ContrastiveError
from ...recipes.recipe import load_recipe
from ...recipes.view_groups import resolve_view_groups
from ...registration.build import build
from ...registration.registry import Registry
from ...reports.image_grid import MAX_GRID_PIXELS, auto_scale, grid_shape, image_grid, to_display_uint8
from ..arguments import add_overrides_argument, int_up_to, registry_from_args

#: Bounds of --n, --views and --scale: a preview is for the eye, and each image and view is held in
#: memory at once (as float32 views), so a mistyped 100000000 is a usage error, not a crash.
MAX_IMAGES = 1024
MAX_VIEWS = 64
MAX_SCALE = 64
#: The most images (dataset images and views together) one grid shows.
MAX_CELLS = 2048


def register(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    preview = commands.add_parser(
        "preview",
        parents=[common],
        help="write a PNG grid of dataset images and their augmented views",
        description="Write a PNG grid: each row is one image of the recipe's dataset, then views of it "
        "drawn by the recipe's augmentation pipeline (the same code as training).",
    )
    preview.add_argument("recipe", type=Path, help="the recipe TOML file")
    preview.add_argument(
        "--n",
        type=int_up_to(MAX_IMAGES, "images"),
        default=8,
        help=f"images (rows) to show (default: 8, at most {MAX_IMAGES})",
    )
    preview.add_argument(
        "--views",
        type=int_up_to(MAX_VIEWS, "views"),
        default=4,
        help=f"views of every image per view group of the method (default: 4, at most {MAX_VIEWS}); a "
        "group whose views have lists of their own shows them in turn",
    )
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
        type=int_up_to(MAX_SCALE, "times"),
        help="enlarge every image this many times (default: enough for cells of at least 96 pixels; at "
        f"most {MAX_SCALE})",
    )
    add_overrides_argument(preview, "augmentations[0].scale=[0.2,1.0]")
    preview.set_defaults(handler=run_preview)


def run_preview(args: argparse.Namespace, console: Console) -> int:
    registry = registry_from_args(args)
    recipe = load_recipe(args.recipe, registry=registry, overrides=args.overrides)
    pretrain = training_stage(recipe, registry)
    split = args.split or getattr(pretrain, "split", "train")
    images = sample_images(recipe, registry, split, args.n)
    # Fused or op by op, as the pretrain stage builds it (the two draw the same views up to rounding).
    fused = getattr(pretrain, "fused_augmentations", True)
    groups = resolve_view_groups(recipe, registry) if recipe.method is not None else []
    columns = 1 + max(len(groups), 1) * args.views
    if len(images) * columns > MAX_CELLS:
        raise ContrastiveError(
            f"the preview would show {len(images)} images x {columns} columns (each image and its views) = "
            f"{len(images) * columns} pictures, more than {MAX_CELLS}: lower --n or --views"
        )
    generator = torch.Generator().manual_seed(recipe.run.seed)
    views: list[torch.Tensor] = []
    with torch.no_grad():
        if not groups:
            pipeline = build_pipeline(recipe.augmentations, registry=registry, fused=fused)
            views = [displayable(view, pipeline) for view in pipeline.views(images, args.views, generator)]
        for group in groups:
            if all(view == group.per_view[0] for view in group.per_view):
                # One list for every view of the group: draw --views of them at once.
                pipeline = build_pipeline(group.per_view[0], registry=registry, fused=fused)
                drawn = pipeline.views(images, args.views, generator)
            else:
                # Views with their own lists (BYOL's): whole draws of the group until --views are shown.
                pipeline = build_view_pipeline(group.per_view, registry, fused=fused)
                drawn = []
                while len(drawn) < args.views:
                    drawn += pipeline.views(images, None, generator)
                drawn = drawn[: args.views]
            views += [displayable(view, pipeline) for view in drawn]
    side = max(max(view.shape[-2:]) for view in views)
    views = [view if max(view.shape[-2:]) == side else enlarged(view, side) for view in views]
    rows = [[images[index], *(view[index] for view in views)] for index in range(len(images))]
    scale = args.scale or auto_scale(rows)
    _, height, width = grid_shape(rows, scale)
    if height * width > MAX_GRID_PIXELS:  # checked before the picture is allocated
        raise ContrastiveError(
            f"the preview would be {width} x {height} pixels (--scale {scale}), more than {MAX_GRID_PIXELS:,}: "
            "lower --scale, --n or --views"
        )
    grid = image_grid(rows, scale=scale)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_png(grid, str(args.out))
    # Text, not markup: "[[augmentations]]", a path or a split name in brackets would be swallowed.
    if not recipe.augmentations and not recipe.views:
        console.print(
            Text("the recipe has no [[augmentations]]: every view equals its image", style="yellow")
        )
    console.print(
        Text(
            f"wrote {args.out} ({len(images)} images from {recipe.data.type} '{split}', each followed by "
            f"{len(views)} views; {grid.shape[2]}x{grid.shape[1]} pixels)"
        )
    )
    return 0


def enlarged(views: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 views (B, C, h, w) scaled up (nearest pixel) so that their longer side is ``side``."""
    height, width = views.shape[-2:]
    factor = side / max(height, width)
    size = (round(height * factor), round(width * factor))
    return F.interpolate(views.float(), size=size, mode="nearest").round().to(torch.uint8)


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

    A pipeline usually ends by standardising pixels, ``(x - mean) / std``, which leaves [0, 1]; trailing
    ops that can be undone for display (:meth:`~contrastive_core.Augmentation.undo_for_display`)
    are undone here so the picture shows the pixels before standardisation (what the eye can judge).
    Anything else outside [0, 1] is clipped.
    """
    for augmentation in reversed(list(pipeline.augmentations)):
        undone = augmentation.undo_for_display(views)
        if undone is None:
            break
        views = undone
    return to_display_uint8(views)
