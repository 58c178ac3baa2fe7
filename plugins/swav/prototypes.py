"""SwAV's prototypes: K trainable unit vectors the embeddings are scored against (Caron et al. 2020,
arXiv:2006.09882, Sec. 3.1: "C is a matrix whose columns are the K prototypes", K = 3000 on ImageNet).

The prototypes are kept on the unit sphere by projecting them back before every forward pass, as the
paper says (Appendix A.1: "we normalize the prototypes ... at each iteration"), in place and outside
autograd, so the gradient is that of the plain linear map at the normalised point (the reference code
does the same; a normalisation inside the graph would also change the gradient's direction).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Prototypes"]


class Prototypes(nn.Module):
    """``forward(z)``: ``(N, D)`` unit embeddings -> ``(N, K)`` scores ``z^T c_k`` (cosines).

    ``weight``: ``(K, D)``, row k the prototype c_k; initialised like ``nn.Linear`` (Kaiming uniform), as
    the reference code's bias-free linear layer is, then normalised by the first :meth:`normalize_`.
    """

    def __init__(self, dim: int, count: int) -> None:
        super().__init__()
        if dim < 1 or count < 1:
            raise ValueError(f"prototypes need dim >= 1 and count >= 1, got {dim} and {count}")
        self.weight = nn.Parameter(nn.Linear(dim, count, bias=False).weight.detach().clone())

    @torch.no_grad()
    def normalize_(self) -> None:
        """Project every prototype back onto the unit sphere, in place (call before the forward)."""
        self.weight.copy_(F.normalize(self.weight, dim=1))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return embeddings @ self.weight.to(embeddings.dtype).T

    def extra_repr(self) -> str:
        count, dim = self.weight.shape
        return f"dim={dim}, count={count}"
