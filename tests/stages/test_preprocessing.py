"""Evaluation preprocessing: [0, 1] scaling, resize, the recipe's normalize op, the training view."""

from __future__ import annotations

import pytest
import torch

from contrastive_core import validate_recipe
from contrastive_plugins.stages.preprocessing import EvalPreprocessing, crop_and_flip, recipe_normalization
from tests.stages.conftest import recipe

AUGMENTATIONS = [
    {"type": "random_resized_crop", "size": 12},
    {"type": "color_jitter", "strength": 0.5},
    {"type": "normalize", "mean": [0.25], "std": [0.5]},
]


def images() -> torch.Tensor:
    return torch.randint(
        0, 256, (3, 1, 12, 12), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )


def test_eval_view_scales_and_applies_only_the_recipes_normalize(registry):
    validated = validate_recipe(recipe({"type": "knn_eval"}, augmentations=AUGMENTATIONS), registry=registry)
    normalization = recipe_normalization(validated, registry)
    assert [op.name for op in normalization] == ["normalize"]
    view = EvalPreprocessing(normalization)(images())
    expected = (images().float() / 255 - 0.25) / 0.5
    torch.testing.assert_close(view, expected)
    # Twice the same: the eval view is deterministic.
    torch.testing.assert_close(EvalPreprocessing(normalization)(images()), view)


def test_resize_and_no_normalize(registry):
    view = EvalPreprocessing([], resize=20)(images())
    assert view.shape == (3, 1, 20, 20) and 0 <= float(view.min()) and float(view.max()) <= 1
    # Without resize and normalize the eval view is the image in [0, 1].
    torch.testing.assert_close(EvalPreprocessing([])(images()), images().float() / 255)


def test_training_view_is_a_seeded_random_crop_and_flip(registry):
    preprocessing = EvalPreprocessing([], resize=None, training_augmentation=crop_and_flip(12, registry))
    first = preprocessing.train_view(images(), torch.Generator().manual_seed(1))
    again = preprocessing.train_view(images(), torch.Generator().manual_seed(1))
    other = preprocessing.train_view(images(), torch.Generator().manual_seed(2))
    assert first.shape == (3, 1, 12, 12)
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, other)
    assert not torch.allclose(first, preprocessing(images()))


def test_training_view_without_augmentation_is_the_eval_view():
    preprocessing = EvalPreprocessing([], resize=16)
    torch.testing.assert_close(preprocessing.train_view(images(), None), preprocessing(images()))


@pytest.mark.parametrize("size", [8, 16])
def test_crop_and_flip_output_size(registry, size):
    assert crop_and_flip(size, registry)(images().float() / 255).shape == (3, 1, size, size)
