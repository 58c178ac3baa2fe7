"""Tiny float64 networks for exact method-level checks: an MLP encoder and MLP heads with BatchNorm.

Built from a fixed seed. Put the method in eval mode: BatchNorm then uses its (randomised) running
statistics, so a row's output does not depend on the rows batched with it and a reference can run the
networks on each view by itself.
"""

from __future__ import annotations

import torch
from torch import nn

from contrastive_core import MethodParts
from contrastive_plugins.simclr.projection_head import ProjectionHead, ProjectionHeadParams

#: The shape of one image (C, H, W).
IMAGE = (2, 3, 3)
#: The projection size of the heads.
PROJECTION = 4


def _head(in_dim: int) -> ProjectionHead:
    params = ProjectionHeadParams(type="mlp", hidden_dim=8, out_dim=PROJECTION, output_norm="none")
    return ProjectionHead(params, in_dim=in_dim)


def tiny_parts(*, predictor: bool = False) -> MethodParts:
    """An encoder (B, *IMAGE) -> (B, 6), a head 6 -> 4 and, if asked, a predictor 4 -> 4, all float64."""
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(18, 6), nn.BatchNorm1d(6), nn.ReLU())
    parts = MethodParts(encoder=encoder, head=_head(6), predictor=_head(PROJECTION) if predictor else None)
    with torch.no_grad():  # running statistics away from (0, 1), so that eval-mode BN does something
        for network in (parts.encoder, parts.head, parts.predictor):
            for module in network.modules() if network is not None else ():
                if isinstance(module, nn.BatchNorm1d):
                    module.running_mean.uniform_(-0.5, 0.5)
                    module.running_var.uniform_(0.5, 2.0)
    for network in (parts.encoder, parts.head, parts.predictor):
        if network is not None:
            network.double()
    return parts


def two_views(batch: int, seed: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Two float64 (batch, *IMAGE) views."""
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, *IMAGE, generator=generator, dtype=torch.float64) for _ in range(2))


def moved_apart(method: nn.Module) -> nn.Module:
    """Perturb the online parameters, so that a momentum target no longer equals them."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for parameter in method.trainable().parameters():
            parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype))
    return method
