"""How a decoded photo of any size becomes an image folder's item: a centre crop, or the whole photo.

* Evaluation views (:func:`centre_crop`): the shorter side resized to ``round(S / fraction)``, then the
  centre S x S kept: the standard ImageNet evaluation transform (google-research/simclr
  ``preprocess_for_eval`` with ``CROP_PROPORTION = 0.875``: 256 then 224 for S = 224; torchvision's
  ``Resize(256) + CenterCrop(224)``). ``fraction = 1`` gives :func:`to_square`, the centre square of
  the photo resized to S, which the image folder gave for every use before photos kept their size.
* Training views (:func:`within_side`): the whole photo at its own size, downscaled only when its
  longer side exceeds a bound (so a 4000 px photo does not take 16 times the memory of a 1000 px
  one); SimCLR's random resized crop then draws each view's box from the photo itself (Chen et al.
  2020, Appendix A).

Every function takes one image (C, H, W) or a stack of images of one size (N, C, H, W), uint8, on any
device, and resizes bilinearly with antialiasing (torchvision ``F.resize``), so the worker path (one
by one, on the CPU) and the device path (same-size groups, on the GPU) compute the same thing.
"""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as F

#: The reference's share of the shorter side an evaluation view keeps (224 of 256).
CROP_PROPORTION = 0.875


def eval_resize_side(size: int, fraction: float) -> int:
    """The shorter side an evaluation view is resized to before its centre ``size x size`` is cut:
    ``round(size / fraction)`` (256 for 224 at 0.875)."""
    return round(size / fraction)


def centre_crop(images: torch.Tensor, size: int, resize: int) -> torch.Tensor:
    """uint8 (..., C, H, W) -> (..., C, size, size): the shorter side resized to ``resize`` (>= size),
    then the centre ``size x size``."""
    images = F.resize(images, [resize], antialias=True)
    return F.center_crop(images, [size, size])


def to_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (..., C, H, W) -> (..., C, size, size): the shorter side resized to ``size``, then the centre
    square (the whole shorter side: :func:`centre_crop` with ``resize = size``)."""
    return centre_crop(images, size, size)


def within_side(images: torch.Tensor, max_side: int) -> torch.Tensor:
    """uint8 (..., C, H, W) -> (..., C, h, w): the images as they are when ``max(H, W) <= max_side``,
    else downscaled with their aspect ratio so that the longer side is ``max_side`` (``h, w`` rounded,
    at least 1). Never enlarged: a crop of a small photo is enlarged once, by the crop's resize."""
    height, width = images.shape[-2:]
    longer = max(height, width)
    if longer <= max_side:
        return images
    scale = max_side / longer
    size = [max(1, round(height * scale)), max(1, round(width * scale))]
    return F.resize(images, size, antialias=True)
