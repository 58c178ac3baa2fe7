"""Positional embeddings resized to other patch grids; inputs at other sizes, square or not."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from contrastive_plugins.vit.position import positions_for_grid
from tests.vit.tiny import TINY, tiny_vit

DIM = 5


def embeddings_of(grid_image: torch.Tensor, cls_position: torch.Tensor) -> torch.Tensor:
    """(D, rows, cols) grid and (D,) CLS embedding -> (1, 1 + rows * cols, D), patches row by row."""
    _, rows, cols = grid_image.shape
    tokens = [cls_position] + [grid_image[:, r, c] for r in range(rows) for c in range(cols)]
    return torch.stack(tokens)[None]


def test_at_the_native_grid_the_stored_embedding_itself_is_used():
    pos_embed = torch.randn(1, 1 + 4 * 4, DIM)
    assert positions_for_grid(pos_embed, (4, 4), (4, 4)) is pos_embed


@pytest.mark.parametrize(("native", "target"), [((2, 2), (4, 4)), ((2, 3), (4, 2)), ((4, 4), (2, 3))])
def test_the_patch_embeddings_are_resized_bicubically_as_an_image_and_cls_is_kept(native, target):
    generator = torch.Generator().manual_seed(0)
    grid_image = torch.randn(DIM, *native, generator=generator, dtype=torch.float64)
    cls_position = torch.randn(DIM, generator=generator, dtype=torch.float64)
    resized = F.interpolate(grid_image[None], size=target, mode="bicubic", align_corners=False)[0]

    result = positions_for_grid(embeddings_of(grid_image, cls_position), native, target)

    torch.testing.assert_close(result, embeddings_of(resized, cls_position), rtol=0, atol=0)


def test_inputs_of_other_sizes_and_shapes_run_through_the_encoder():
    model = tiny_vit().eval()
    with torch.no_grad():
        for height, width in [(16, 16), (8, 8), (8, 12), (24, 4)]:
            assert model(torch.randn(2, 3, height, width)).shape == (2, TINY["embed_dim"])


def test_the_native_size_adds_exactly_the_stored_embedding(monkeypatch):
    model = tiny_vit().eval()
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        native = model(images)
        # Resampling the stored embedding, even to its own size, would call interpolate and fail here.
        monkeypatch.setattr(F, "interpolate", lambda *args, **kwargs: pytest.fail("interpolated"))
        torch.testing.assert_close(model(images), native, rtol=0, atol=0)


@pytest.mark.parametrize(("height", "width"), [(10, 16), (16, 18), (3, 3)])
def test_an_image_size_that_is_not_a_multiple_of_the_patch_size_is_a_clear_error(height, width):
    with pytest.raises(
        ValueError, match=rf"image size {height}x{width} .* not a multiple of the patch size 4"
    ):
        tiny_vit()(torch.randn(1, 3, height, width))


def test_one_model_takes_global_and_local_crops_and_both_train_the_positional_embeddings():
    model = tiny_vit().train()
    for size in (16, 8):  # a 4 x 4 grid (native) and a 2 x 2 grid (resized)
        model.zero_grad()
        model(torch.randn(3, 3, size, size)).square().sum().backward()
        patch_gradient = model.pos_embed.grad[:, 1:]
        assert torch.isfinite(model.pos_embed.grad).all()
        # Every native position contributes to the resized grid's positions (bicubic support is 4 wide).
        assert (patch_gradient.abs().sum(dim=-1) > 0).all(), size
        assert model.pos_embed.grad[:, 0].abs().sum() > 0 and model.cls_token.grad.abs().sum() > 0
