"""Multi-crop view groups: each group's crops follow its own scale range, fused or op by op, at its own size.

Every view of a ramp image (channel 0 holds x / (W - 1), channel 1 y / (H - 1)) shows which box it was
cut from: the crop resamples corner pixel to corner pixel, so a view's smallest and largest x are the
box's first and last column. The area fractions of the boxes, per group, are compared with torchvision's
``RandomResizedCrop.get_params`` drawing with the same scale range.
"""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms import RandomResizedCrop

from contrastive_core import default_registry, validate_recipe
from contrastive_core.engine import augmentation_generator, build_training_parts
from tests.engine.method_steps import recipe_for

SIDE = 40
IMAGES = 1024
GROUPS = {"global": (16, (0.3, 1.0)), "local": (8, (0.05, 0.3))}


def ramp_images(count: int) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(SIDE), torch.arange(SIDE), indexing="ij")
    return (torch.stack([xs, ys]).double() / (SIDE - 1)).float().expand(count, 2, SIDE, SIDE).contiguous()


def area_fractions(views: torch.Tensor) -> torch.Tensor:
    """(N, 2, h, w) views of ramp images -> the area fraction of each view's box."""
    x, y = views[:, 0].flatten(1) * (SIDE - 1), views[:, 1].flatten(1) * (SIDE - 1)
    width = x.amax(1) - x.amin(1) + 1
    height = y.amax(1) - y.amin(1) + 1
    return (width * height).double() / SIDE**2


def group_views(fused: bool) -> dict[str, torch.Tensor]:
    registry = default_registry()
    data = recipe_for(registry.get("method", "swav"))
    data["views"] = [
        {
            "name": name,
            "count": 2 if name == "global" else 4,
            "augmentations": [
                {"type": "random_resized_crop", "size": size, "scale": list(scale)},
                {"type": "horizontal_flip"},
            ],
        }
        for name, (size, scale) in GROUPS.items()
    ]
    recipe = validate_recipe(data, registry=registry)
    parts = build_training_parts(
        recipe,
        registry,
        device=torch.device("cpu"),
        batch_size=8,
        total_steps=1,
        steps_per_epoch=1,
        fused_augmentations=fused,
    )
    generator = augmentation_generator(0, "cpu")
    images = ramp_images(IMAGES)
    return {name: pipeline.stacked_views(images, None, generator) for name, pipeline in parts.views.items()}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "op_by_op"])
def test_each_group_crops_with_its_own_scale_at_its_own_size(fused):
    views = group_views(fused)
    assert {name: tuple(v.shape) for name, v in views.items()} == {
        "global": (2 * IMAGES, 2, 16, 16),
        "local": (4 * IMAGES, 2, 8, 8),
    }
    torch.manual_seed(0)
    canvas = torch.empty(2, SIDE, SIDE)
    for name, (_, scale) in GROUPS.items():
        ours = area_fractions(views[name])
        boxes = [RandomResizedCrop.get_params(canvas, list(scale), [3 / 4, 4 / 3]) for _ in range(len(ours))]
        theirs = torch.tensor([h * w / SIDE**2 for _, _, h, w in boxes], dtype=torch.float64)
        # Integer boxes round the area by up to a pixel row and column either way.
        assert ours.min() >= scale[0] * 0.8 and ours.max() <= scale[1] * 1.1, name
        middle = sum(scale) / 2
        # The mean area and the share of boxes above the middle of the range, ours against torchvision's.
        for mine, reference in ((ours, theirs), ((ours > middle).double(), (theirs > middle).double())):
            error = math.sqrt(mine.var().item() / len(mine) + reference.var().item() / len(reference))
            assert abs(mine.mean().item() - reference.mean().item()) <= 5 * error + 1e-9, name
