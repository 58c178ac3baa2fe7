"""A ViT small enough for tests to run in milliseconds: 16 px images, 4 px patches (a 4 x 4 grid)."""

from __future__ import annotations

from typing import Any

import torch

from contrastive_plugins.vit.encoder import VisionTransformer, VisionTransformerParams

TINY: dict[str, Any] = {
    "arch": None,
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 4,
    "patch_size": 4,
    "image_size": 16,
}


def tiny_vit(**overrides: Any) -> VisionTransformer:
    return VisionTransformer(VisionTransformerParams(type="vit", **(TINY | overrides)))


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Redraw every parameter from N(0, 0.5^2): LayerNorm scales and biases then matter, and attention
    is far from uniform, so a comparison cannot pass on the initialisation's near-trivial values."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.5)
    return model
