"""Positional embeddings for patch grids other than the one they were learned for.

A ViT learns one positional embedding per patch position of its native image size (224 px with 16 px
patches: a 14 x 14 grid). For another input size, ViT (Dosovitskiy et al. 2021, Sec. 3.2, "Fine-tuning
and higher resolution") resizes the patch embeddings as a 2-d image by interpolation, following their
positions in the original image. DINO (Caron et al. 2021) does this at every step of training: its
multi-crop augmentation feeds 224 px global crops (14 x 14) and 96 px local crops (6 x 6) to the same
network.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def positions_for_grid(
    pos_embed: torch.Tensor, native_grid: tuple[int, int], grid: tuple[int, int]
) -> torch.Tensor:
    """The positional embeddings for a ``grid`` of patches, resized bicubically from ``native_grid``.

    pos_embed: (1, 1 + gh * gw, D), the CLS token's embedding first, then the patches' in row-major
    order over the native grid (gh, gw) -> (1, 1 + h * w, D) for ``grid = (h, w)``. The CLS token's
    embedding has no position in the image and is kept as it is. At the native grid the stored tensor
    itself is returned, so nothing is resampled.

    The resize targets the grid size exactly (``size=``, corners not aligned). DINO's reference code
    passes a scale factor nudged by 0.1 instead (facebookresearch/dino#8), which samples at very slightly
    different positions; the resize of a square grid is otherwise the same bicubic interpolation.
    """
    if tuple(grid) == tuple(native_grid):
        return pos_embed
    cls_position, patch_positions = pos_embed[:, :1], pos_embed[:, 1:]
    dim = pos_embed.shape[-1]
    # (1, gh * gw, D) -> (1, D, gh, gw): a D-channel image of the native grid.
    image = patch_positions.reshape(1, *native_grid, dim).permute(0, 3, 1, 2)
    resized = F.interpolate(image, size=tuple(grid), mode="bicubic", align_corners=False)
    # (1, D, h, w) -> (1, h * w, D), row-major as the patch embedding orders the tokens.
    return torch.cat([cls_position, resized.flatten(2).transpose(1, 2)], dim=1)
