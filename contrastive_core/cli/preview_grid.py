"""What ``contrastive preview`` draws (:mod:`contrastive_core.cli.commands.preview` parses the
command): the recipe's dataset images, each followed by the views its pipelines make, as one PNG grid.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from pydantic import BaseModel
from rich.console import Console
from rich.text import Text
from torchvision.io import write_png

from ..engine.augmentation_pipeline import AugmentationPipeline, build_pipeline, build_view_pipeline
from ..engine.image_batch import ImageBatch, items_batch
from ..engine.training_parts import check_views_crop_first, training_stage
from ..errors import ContrastiveError
from ..recipes.recipe import load_recipe
from ..recipes.view_groups import resolve_view_groups
from ..registration.build import build
from ..registration.registry import Registry
from ..reports.image_grid import MAX_GRID_PIXELS, auto_scale, grid_shape, image_grid, to_display_uint8
from .arguments import registry_from_args

#: Bounds of --n, --views and --scale: a preview is for the eye, and each image and view is held in
#: memory at once (as float32 views), so a mistyped 100000000 is a usage error, not a crash.
from .preview_limits import MAX_CELLS


def draw_preview(args: argparse.Namespace, console: Console) -> int:
    registry = registry_from_args(args)
    recipe = load_recipe(args.recipe, registry=registry, overrides=args.overrides)
    pretrain = training_stage(recipe, registry)
    split = args.split or getattr(pretrain, "split", "train")
    batch, items = sample_images(recipe, registry, split, args.n)
    # Fused or op by op, as the pretrain stage builds it (the two draw the same views up to rounding).
    fused = getattr(pretrain, "fused_augmentations", True)
    groups = resolve_view_groups(recipe, registry) if recipe.method is not None else []
    columns = 1 + max(len(groups), 1) * args.views
    if len(batch) * columns > MAX_CELLS:
        raise ContrastiveError(
            f"the preview would show {len(batch)} images x {columns} columns (each image and its views) = "
            f"{len(batch) * columns} pictures, more than {MAX_CELLS}: lower --n or --views"
        )
    generator = torch.Generator().manual_seed(recipe.run.seed)
    images, sizes = batch.pixels, batch.sizes
    views: list[torch.Tensor] = []
    with torch.no_grad():
        if not groups:
            pipeline = build_pipeline(recipe.augmentations, registry=registry, fused=fused)
            check_views_crop_first(recipe, {"": pipeline}, items)
            drawn = pipeline.views(images, args.views, generator, sizes=sizes)
            views = [displayable(view, pipeline) for view in drawn]
        pipelines: dict[str, AugmentationPipeline] = {}
        for group in groups:
            if all(view == group.per_view[0] for view in group.per_view):
                # One list for every view of the group: draw --views of them at once.
                pipelines[group.name] = build_pipeline(group.per_view[0], registry=registry, fused=fused)
            else:
                # Views with their own lists (BYOL's): whole draws of the group until --views are shown.
                pipelines[group.name] = build_view_pipeline(group.per_view, registry, fused=fused)
        check_views_crop_first(recipe, pipelines, items)  # before any drawing, naming the recipe's keys
        for group in groups:
            pipeline = pipelines[group.name]
            if pipeline.view_count is None:
                drawn = pipeline.views(images, args.views, generator, sizes=sizes)
            else:
                drawn = []
                while len(drawn) < args.views:
                    drawn += pipeline.views(images, None, generator, sizes=sizes)
                drawn = drawn[: args.views]
            views += [displayable(view, pipeline) for view in drawn]
    side = max(max(view.shape[-2:]) for view in views)
    views = [view if max(view.shape[-2:]) == side else enlarged(view, side) for view in views]
    # Each photo at its own size (cut out of the canvas); the grid centres it in its cell.
    rows = [[batch.image(index), *(view[index] for view in views)] for index in range(len(batch))]
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
            f"wrote {args.out} ({len(batch)} images from {recipe.data.type} '{split}', each followed by "
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


def sample_images(
    recipe: BaseModel, registry: Registry, split: str, n: int
) -> tuple[ImageBatch, torch.utils.data.Dataset]:
    """``n`` images spread evenly over ``split``, so one preview shows varied classes, as pretraining
    reads them (an image folder's photos as one canvas with their sizes; else uint8 (n, C, H, W)), and
    the split they come from."""
    if recipe.data is None:
        raise ContrastiveError("the recipe has no [data] section: there are no images to preview")
    dataset = build("dataset", recipe.data, registry=registry)
    if split not in dataset.splits:
        raise ContrastiveError(
            f"dataset {recipe.data.type!r} has no split {split!r}; its splits: {', '.join(dataset.splits)}"
        )
    items = dataset.training_split(split)
    if len(items) == 0:
        raise ContrastiveError(f"split {split!r} of dataset {recipe.data.type!r} holds no images")
    # Evenly spaced positions rather than the first n: splits are often stored sorted by class.
    positions = torch.linspace(0, len(items) - 1, min(n, len(items))).round().long().unique()
    return items_batch(items, positions.tolist()), items


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
