"""``random_resized_crop`` with ``resample = "bicubic"``: google-research/simclr's crop-then-resize
(``tf.image.resize(..., BICUBIC)``, half-pixel centres), checked in float64 against cropping each box
out and resizing it as an image of its own with torch's bicubic interpolation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastive_core import build
from contrastive_plugins.simclr.fused_ops import resized_crops

#: Output pixels this far (in output pixels, scaled from 2 source pixels) from the box's edge read the
#: photo beyond the box (ours) or the box's repeated edge (the reference); the rest must agree exactly.
EDGE_SOURCE_PIXELS = 2


def crop_then_resize(
    image: torch.Tensor, top: int, left: int, height: int, width: int, size: int
) -> torch.Tensor:
    box = image[None, :, top : top + height, left : left + width]
    return F.interpolate(box, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)[0]


@pytest.mark.parametrize("size", [8, 24])
@pytest.mark.parametrize(("top", "left", "height", "width"), [(3, 5, 20, 30), (0, 0, 40, 32), (10, 2, 6, 9)])
def test_interior_pixels_equal_cropping_the_box_and_resizing_it(size, top, left, height, width):
    images = torch.rand(2, 3, 40, 36, dtype=torch.float64, generator=torch.Generator().manual_seed(size))
    boxes = {
        name: torch.tensor([value, value])
        for name, value in (("top", top), ("left", left), ("height", height), ("width", width))
    }
    ours = resized_crops(images, boxes, size, resample="bicubic")
    for index in range(2):
        expected = crop_then_resize(images[index], top, left, height, width, size)
        # Output pixel j samples source x = left + (j + 1/2) width / size - 1/2; its 4 taps reach 2 pixels.
        rows = inside(torch.arange(size), height, size, top, 40)
        columns = inside(torch.arange(size), width, size, left, 36)
        assert rows.any() and columns.any()
        torch.testing.assert_close(
            ours[index][:, rows][:, :, columns], expected[:, rows][:, :, columns], rtol=0, atol=1e-12
        )
    assert ours.min() >= 0 and ours.max() <= 1


def inside(outputs: torch.Tensor, extent: int, size: int, start: int, side: int) -> torch.Tensor:
    """Outputs whose cubic footprint lies within the box, or where the box meets the image's border
    (both then clamp to the same pixels)."""
    x = (outputs + 0.5) * extent / size - 0.5
    low_ok = (x - EDGE_SOURCE_PIXELS >= 0) | (start == 0)
    high_ok = (x + EDGE_SOURCE_PIXELS <= extent - 1) | (start + extent == side)
    return low_ok & high_ok


def test_the_op_resamples_bicubically_only_when_asked(tmp_path):
    from contrastive_core import default_registry

    registry = default_registry()
    images = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    bilinear = build("augmentation", {"type": "random_resized_crop", "size": 16}, registry=registry)
    bicubic = build(
        "augmentation", {"type": "random_resized_crop", "size": 16, "resample": "bicubic"}, registry=registry
    )
    params = bilinear.sample_params(images.shape, images.device, torch.Generator().manual_seed(1))
    assert not torch.allclose(bilinear.apply(images, params), bicubic.apply(images, params))
    torch.testing.assert_close(
        bicubic.apply(images, params), resized_crops(images, params, 16, resample="bicubic")
    )
