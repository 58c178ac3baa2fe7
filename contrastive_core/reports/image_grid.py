"""Laying out images as one uint8 picture: a grid of equal cells, ready for ``torchvision.io.write_png``.

Used by ``contrastive preview``: each row is one dataset image followed by its augmented views. Images in
a grid may differ in size (a crop to 64 px of a 96 px image); each is drawn at its own resolution, centred
in its cell, so the grid shows exactly the pixels the model sees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

#: Pixels between cells and around the border.
PADDING = 2
#: Value of the padding (white: most datasets' images are framed by dark backgrounds or busy scenes).
BACKGROUND = 255
#: ``auto_scale`` enlarges small images until a cell is at least this many pixels high, to be viewable.
MIN_CELL_PIXELS = 96
#: The largest grid drawn (2^27 pixels, 384 MiB in colour): far beyond what a screen shows, and well
#: below the sizes where the allocation or the PNG encoder fails (a 2 GiB PNG takes the process down).
MAX_GRID_PIXELS = 2**27


def to_display_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images (..., C, H, W) in [0, 1] -> uint8 0-255 (values outside [0, 1] are clipped)."""
    return images.clamp(0, 1).mul(255).round().to(torch.uint8)


def auto_scale(rows: Sequence[Sequence[torch.Tensor]]) -> int:
    """The smallest integer enlargement that makes the tallest image at least ``MIN_CELL_PIXELS`` high."""
    tallest = max(image.shape[-2] for row in rows for image in row)
    return max(1, math.ceil(MIN_CELL_PIXELS / tallest))


def grid_shape(rows: Sequence[Sequence[torch.Tensor]], scale: int = 1) -> tuple[int, int, int]:
    """(C, H, W) of the picture :func:`image_grid` makes of ``rows``, computed without drawing it."""
    images = [image for row in rows for image in row]
    channels = 3 if any(image.shape[-3] == 3 for image in images) else 1
    cell_height = max(image.shape[-2] for image in images) * scale
    cell_width = max(image.shape[-1] for image in images) * scale
    columns = max(len(row) for row in rows)
    return (
        channels,
        len(rows) * cell_height + (len(rows) + 1) * PADDING,
        columns * cell_width + (columns + 1) * PADDING,
    )


def image_grid(rows: Sequence[Sequence[torch.Tensor]], scale: int = 1) -> torch.Tensor:
    """Rows of uint8 images, each (C, H, W) with C in {1, 3} -> one uint8 picture (C', H', W').

    Every cell is as large as the largest image; smaller images are centred in theirs. Grey images are
    repeated to three channels when any image of the grid has colour (C' = 3), else C' = 1. ``scale``
    enlarges every image by pixel repetition (nearest neighbour), so no detail is invented or smoothed.
    """
    if not rows or not all(rows):
        raise ValueError("an image grid needs at least one row, and every row at least one image")
    images = [image for row in rows for image in row]
    for image in images:
        if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] not in (1, 3):
            raise ValueError(
                f"grid images must be uint8 (C, H, W) with 1 or 3 channels, got {image.dtype} "
                f"{tuple(image.shape)}"
            )
    channels, height, width = grid_shape(rows, scale)
    if height * width > MAX_GRID_PIXELS:
        raise ValueError(
            f"the grid would be {width} x {height} pixels, more than {MAX_GRID_PIXELS:,}; show fewer or "
            "smaller images"
        )
    cell_height = max(image.shape[1] for image in images) * scale
    cell_width = max(image.shape[2] for image in images) * scale
    canvas = torch.full((channels, height, width), BACKGROUND, dtype=torch.uint8)
    for row_index, row in enumerate(rows):
        for column_index, image in enumerate(row):
            image = image.expand(channels, -1, -1)
            if scale > 1:
                image = image.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
            top = PADDING + row_index * (cell_height + PADDING) + (cell_height - image.shape[1]) // 2
            left = PADDING + column_index * (cell_width + PADDING) + (cell_width - image.shape[2]) // 2
            canvas[:, top : top + image.shape[1], left : left + image.shape[2]] = image
    return canvas
