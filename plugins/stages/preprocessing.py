"""What evaluation does to images before the encoder: the deterministic eval view, and for training
classifiers (finetune, supervised) an optional random crop + flip.

Eval view: uint8 -> float in [0, 1] -> optional bilinear resize to ``resize x resize`` -> the recipe's
``normalize`` ops (every ``[[augmentations]]`` entry of type "normalize", in order). The encoder was
pretrained on normalised inputs, so evaluation normalises the same way; the random ops of the
pretraining pipeline (crops, colour jitter, ...) are not applied.

Training view (``augment = true``): a random resized crop (area scale (0.08, 1), the paper's crop) to
the eval size and a random horizontal flip, built through the registry's ``random_resized_crop`` and
``horizontal_flip`` augmentation components, then the same normalisation (Chen et al., 2020,
Appendix B.5: fine-tuning uses random crops with resize and flips only).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from contrastive_core import Augmentation, Registry, build
from contrastive_core.engine import build_pipeline, to_unit_float
from contrastive_core.recipes import Recipe

NORMALIZE = "normalize"
TRAINING_CROP_SCALE = (0.08, 1.0)


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
