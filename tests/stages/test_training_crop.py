"""Classifier training's crops: the padded crop against a per-image numpy reference, and which crop
``train_crop`` picks (the supervised baseline uses the padded crop on small images by default)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastive_plugins.stages.classifier_training import ClassifierTrainingParams
from contrastive_plugins.stages.preprocessing import PaddedCropAndFlip, training_augmentation
from contrastive_plugins.stages.supervised import SupervisedParams


def reference_padded_crop(images: np.ndarray, offsets: np.ndarray, flips: np.ndarray) -> np.ndarray:
    """Per image: zero-pad 4 px, take the window at (top, left), mirror it if flipped."""
    out = np.empty_like(images)
    size = images.shape[-1]
    for index, image in enumerate(images):
        padded = np.pad(image, ((0, 0), (4, 4), (4, 4)))
        top, left = offsets[index]
        window = padded[:, top : top + size, left : left + size]
        out[index] = window[:, :, ::-1] if flips[index] else window
    return out


@pytest.mark.parametrize("size", [5, 32])
def test_padded_crop_matches_the_per_image_reference(size):
    images = torch.rand(64, 3, size, size, generator=torch.Generator().manual_seed(size))
    result = PaddedCropAndFlip()(images, torch.Generator().manual_seed(7))
    draws = torch.Generator().manual_seed(7)  # the op's draws, in its order: offsets, then flips
    offsets = torch.randint(0, 9, (64, 2), generator=draws).numpy()
    flips = (torch.rand(64, generator=draws) < 0.5).numpy()
    np.testing.assert_array_equal(result.numpy(), reference_padded_crop(images.numpy(), offsets, flips))
    assert set(offsets.flatten()) == set(range(9)) and 0 < flips.sum() < 64  # every draw was exercised


def test_auto_pads_small_images_and_inception_crops_large_ones(registry):
    assert isinstance(training_augmentation("auto", 32, registry), PaddedCropAndFlip)
    assert isinstance(training_augmentation("auto", 64, registry), PaddedCropAndFlip)
    assert not isinstance(training_augmentation("auto", 96, registry), PaddedCropAndFlip)
    assert not isinstance(training_augmentation("inception", 32, registry), PaddedCropAndFlip)
    assert isinstance(training_augmentation("padded", 224, registry), PaddedCropAndFlip)


def test_the_supervised_baseline_defaults_to_auto_and_fine_tuning_to_the_papers_crop():
    assert SupervisedParams(type="supervised").train_crop == "auto"
    assert ClassifierTrainingParams().train_crop == "inception"
