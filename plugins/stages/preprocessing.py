"""What evaluation does to images before the encoder: the deterministic eval view, and for training
classifiers (finetune, supervised) an optional random crop + flip.

Eval view: uint8 -> float in [0, 1] -> optional bilinear resize to ``resize x resize`` -> the recipe's
``normalize`` ops (every ``[[augmentations]]`` entry of type "normalize", in order). The encoder was
pretrained on normalised inputs, so evaluation normalises the same way; the random ops of the
pretraining pipeline (crops, colour jitter, ...) are not applied.

Training view (``augment = true``), then the same normalisation; ``train_crop`` chooses the crop:

* ``"inception"``: a random resized crop (area scale (0.08, 1), the paper's crop) to the eval size and a
  random horizontal flip, built through the registry's ``random_resized_crop`` and ``horizontal_flip``
  augmentation components (Chen et al., 2020, Appendix B.5: fine-tuning uses random crops with resize
  and flips only).
* ``"padded"``: the standard augmentation of supervised training on small images (He et al., 2016,
  Sec. 4.2, CIFAR-10): 4 zero pixels of padding on every side, a random crop back to the image's size,
  and a random horizontal flip. An Inception crop keeps as little as 8% of a 32 px image, which lowers a
  supervised CIFAR baseline and would inflate a linear separability index measured against it.
* ``"auto"``: "padded" for images of at most :data:`SMALL_IMAGE_SIDE` pixels a side, else "inception".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from contrastive_core import Augmentation, Registry, build
from contrastive_core.engine import build_pipeline, to_unit_float
from contrastive_core.recipes import Recipe

NORMALIZE = "normalize"
TRAINING_CROP_SCALE = (0.08, 1.0)
#: Images up to this side count as small for ``train_crop = "auto"`` (CIFAR 32, STL-10 96 is not).
SMALL_IMAGE_SIDE = 64
#: Zero pixels added on every side before the padded crop (He et al., 2016, Sec. 4.2).
CROP_PADDING = 4

TrainCrop = Literal["inception", "padded", "auto"]


def recipe_normalization(recipe: Recipe, registry: Registry) -> list[Augmentation]:
    """The recipe's ``normalize`` augmentation ops, built (usually one: the pipeline's last step), from
    ``[[augmentations]]`` or else the first ``[[views]]`` group's list."""
    ops = recipe.augmentations or (recipe.views[0].augmentations if recipe.views else [])
    return [build("augmentation", params, registry=registry) for params in ops if params.type == NORMALIZE]


class EvalPreprocessing(nn.Module):
    """uint8 (B, C, H, W) -> float (B, C, S, S): scale to [0, 1], resize to S = ``resize`` (if set),
    normalise; deterministic. ``train_view`` adds a random resized crop and flip for classifier training."""

    def __init__(
        self,
        normalization: Sequence[Augmentation],
        resize: int | None = None,
        training_augmentation: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.normalization = nn.ModuleList(normalization)
        self.resize = resize
        self.training_augmentation = training_augmentation

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The eval view of a uint8 or [0, 1] float batch (B, C, H, W)."""
        images = to_unit_float(images)
        if self.resize is not None and images.shape[-2:] != (self.resize, self.resize):
            images = F.interpolate(
                images, size=(self.resize, self.resize), mode="bilinear", align_corners=False, antialias=True
            )
        return self._normalize(images)

    def train_view(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """A randomly cropped and flipped view (B, C, S, S) when training augmentation is set, else the
        eval view. S is ``resize`` if set, else the input side, so train and test inputs match in size."""
        if self.training_augmentation is None:
            return self(images)
        return self._normalize(self.training_augmentation(to_unit_float(images), generator))

    def _normalize(self, images: torch.Tensor) -> torch.Tensor:
        for op in self.normalization:
            images = op(images)
        return images


def crop_and_flip(size: int, registry: Registry) -> nn.Module:
    """Random resized crop (scale (0.08, 1)) to ``size x size`` then a random horizontal flip, on float
    images in [0, 1]; built from the registry's augmentation components."""
    return build_pipeline(
        [
            {"type": "random_resized_crop", "size": size, "scale": list(TRAINING_CROP_SCALE)},
            {"type": "horizontal_flip"},
        ],
        registry=registry,
    )


class PaddedCropAndFlip(nn.Module):
    """Float (B, C, S, S) in [0, 1] -> (B, C, S, S): zero-pad ``padding`` pixels on every side, crop a
    random S x S window per image (offsets uniform in [0, 2 padding]) and flip it horizontally with
    probability 1/2 (He et al., 2016, Sec. 4.2). Every draw is per image, from ``generator``."""

    def __init__(self, padding: int = CROP_PADDING) -> None:
        super().__init__()
        self.padding = padding

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        batch, _, height, width = images.shape
        padded = F.pad(images, (self.padding,) * 4)
        offsets = torch.randint(
            0, 2 * self.padding + 1, (batch, 2), generator=generator, device=images.device
        )
        flips = torch.rand(batch, generator=generator, device=images.device) < 0.5
        rows = offsets[:, 0, None] + torch.arange(height, device=images.device)  # (B, H)
        columns = torch.arange(width, device=images.device).expand(batch, width)
        # A flipped image reads its window's columns right to left.
        columns = torch.where(flips[:, None], columns.flip(1), columns) + offsets[:, 1, None]  # (B, W)
        picked = padded[
            torch.arange(batch, device=images.device)[:, None, None], :, rows[:, :, None], columns[:, None, :]
        ]
        return picked.permute(0, 3, 1, 2)  # advanced indexing put the channels last: (B, H, W, C)


def training_augmentation(train_crop: TrainCrop, size: int, registry: Registry) -> nn.Module:
    """The random crop and flip of classifier training for images of side ``size`` (see the module)."""
    if train_crop == "auto":
        train_crop = "padded" if size <= SMALL_IMAGE_SIDE else "inception"
    if train_crop == "padded":
        return PaddedCropAndFlip()
    return crop_and_flip(size, registry)
