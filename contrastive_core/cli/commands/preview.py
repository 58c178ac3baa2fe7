"""``contrastive preview RECIPE``: a PNG grid of dataset images and their augmented views.

Each row is one image of the recipe's dataset followed by its views: every view group of the recipe's
method (SimCLR's two views ``t(x), t'(x)``, Chen et al. 2020, Sec. 2.1; BYOL's two asymmetric views;
DINO's global and local crops), drawn by the pipelines the pretrain stage builds, with the same code.
So the picture shows what the model will be trained on before any GPU time is spent. A recipe without
``[method]`` shows ``--views`` views of its ``[[augmentations]]`` list. The images are read as
pretraining reads them (``Dataset.training_split``): an image folder's photos whole, at their own
sizes, each view cropped from its whole photo.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..arguments import add_overrides_argument, int_up_to
from ..preview_limits import MAX_IMAGES, MAX_SCALE, MAX_VIEWS


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
    # The drawing imports torch and the engine: not needed to build the parser (see the package docs).
    from ..preview_grid import draw_preview

    return draw_preview(args, console)
