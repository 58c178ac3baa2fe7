"""SimCLR's data augmentations as batched, per-sample random GPU ops built on Kornia.

Each op is its own registered component (``[[augmentations]]`` entries of a recipe, applied in order
by :class:`contrastive_core.engine.AugmentationPipeline`). Chen et al. (2020, Appendix A)
compose random resized crop + flip, color jitter (p = 0.8), random grayscale (p = 0.2) and, on
ImageNet, Gaussian blur (p = 0.5); solarize serves later methods (BYOL) and normalize ends a pipeline.
"""

from __future__ import annotations

from .color_jitter import ColorJitter
from .gaussian_blur import GaussianBlur
from .horizontal_flip import HorizontalFlip
from .normalize import Normalize
from .per_sample import PerSampleAugmentation
from .random_grayscale import RandomGrayscale
from .random_resized_crop import RandomResizedCrop
from .solarize import Solarize

#: The registered augmentation classes, in the order of SimCLR's pipeline.
AUGMENTATIONS: list[type[PerSampleAugmentation]] = [
    RandomResizedCrop,
    HorizontalFlip,
    ColorJitter,
    RandomGrayscale,
    GaussianBlur,
    Solarize,
    Normalize,
]

__all__ = [
    "AUGMENTATIONS",
    "ColorJitter",
    "GaussianBlur",
    "HorizontalFlip",
    "Normalize",
    "PerSampleAugmentation",
    "RandomGrayscale",
    "RandomResizedCrop",
    "Solarize",
]
