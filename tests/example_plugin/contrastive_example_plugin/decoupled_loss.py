"""Decoupled contrastive loss (Yeh et al., 2022, "Decoupled Contrastive Learning", arXiv:2110.06848).

NT-Xent without the positive pair in the denominator: for anchor i with positive j,

    l_i = -sim(z_i, z_j) / tau + log sum_{k not in {i, j}} exp(sim(z_i, z_k) / tau)

averaged over the 2N anchors of the two views.
"""

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from contrastive_core import ComponentParams, Loss


class DecoupledContrastiveParams(ComponentParams):
    type: Literal["decoupled_contrastive"]
    temperature: float = Field(0.1, gt=0)
    """Temperature tau dividing the cosine similarities."""


class DecoupledContrastiveLoss(Loss):
    """Decoupled contrastive loss (DCL): NT-Xent with the positive removed from the denominator."""

    name = "decoupled_contrastive"
    Params = DecoupledContrastiveParams

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """z_a, z_b: (N, d) projections of the two views -> scalar loss."""
        z = F.normalize(torch.cat([z_a, z_b]).float(), dim=1)  # (2N, d)
        n = z_a.shape[0]
        similarity = z @ z.T / self.params.temperature  # (2N, 2N)
        positive_index = torch.arange(2 * n, device=z.device).roll(n)
        positive = similarity.gather(1, positive_index[:, None]).squeeze(1)
        excluded = torch.eye(2 * n, dtype=torch.bool, device=z.device)
        excluded[torch.arange(2 * n), positive_index] = True
        negatives = similarity.masked_fill(excluded, float("-inf"))
        return (-positive + torch.logsumexp(negatives, dim=1)).mean()
