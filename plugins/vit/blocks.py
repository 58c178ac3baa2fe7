"""The layers of a Vision Transformer: patch embedding, self-attention, MLP and the pre-norm block.

Dosovitskiy et al. (2021), "An Image is Worth 16x16 Words" (ViT), Sec. 3.1 and Eq. 1-4: an image is cut
into non-overlapping P x P patches, each linearly projected to a D-dimensional token; the tokens pass
through L blocks of multi-head self-attention (MSA) and an MLP, each preceded by a LayerNorm and wrapped
in a residual connection (pre-norm), as DeiT (Touvron et al. 2021) and DINO (Caron et al. 2021) use it.

Tokens are ``(B, N, D)`` throughout: B images, N tokens per image, D = embed_dim channels.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from .drop_path import DropPath


class PatchEmbedding(nn.Module):
    """Cut images into P x P patches and project each to a D-dimensional token (ViT Eq. 1).

    A convolution with kernel = stride = P is exactly a shared linear map of every flattened patch.
    (B, C, H, W) -> (B, (H / P) * (W / P), D), patches in row-major order (left to right, top to bottom),
    the order :func:`~contrastive_plugins.vit.position.positions_for_grid` reshapes the grid in.
    """

    def __init__(self, in_channels: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """Patches along (height, width); the image must be cut into whole patches."""
        if height % self.patch_size or width % self.patch_size:
            # The convolution would silently drop the rightmost and bottom pixels instead.
            raise ValueError(
                f"image size {height}x{width} (height x width) is not a multiple of the patch size "
                f"{self.patch_size}; resize or crop the images to a multiple of {self.patch_size} px"
            )
        return height // self.patch_size, width // self.patch_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, C, H, W) -> tokens: (B, (H / P) * (W / P), D)."""
        self.grid_size(images.shape[-2], images.shape[-1])
        return self.proj(images).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention (Vaswani et al. 2017, Sec. 3.2; ViT Eq. 2): (B, N, D) -> (B, N, D).

    One linear layer makes queries, keys and values for all heads at once; each head attends with
    softmax(q k^T / sqrt(D / heads)) v, and the heads' outputs are concatenated and projected back to D.
    """

    def __init__(self, dim: int, num_heads: int, *, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        batch, length, dim = tokens.shape
        # (B, N, 3 * D) -> (3, B, heads, N, D / heads): the layout scaled_dot_product_attention expects.
        qkv = self.qkv(tokens).reshape(batch, length, 3, self.num_heads, dim // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        # Its default scale is 1 / sqrt(D / heads), the paper's; it picks a fused kernel where one applies.
        attended = F.scaled_dot_product_attention(query, key, value)
        return self.proj(attended.transpose(1, 2).reshape(batch, length, dim))


class Mlp(nn.Module):
    """The block's feed-forward network (ViT Eq. 3): Linear(D, hidden) -> GELU -> Linear(hidden, D)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()  # the exact (erf) GELU, as ViT and DINO use
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens: (B, N, D) -> (B, N, D)."""
        return self.fc2(self.act(self.fc1(tokens)))


class PreNormResidual(nn.Module):
    """x -> x + drop_path(layer(LayerNorm(x))): one residual sublayer of a pre-norm block.

    (B, N, D) -> (B, N, D).
    """

    def __init__(self, dim: int, layer: nn.Module, *, drop_path_rate: float, eps: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.layer = layer
        self.drop_path = DropPath(drop_path_rate)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens + self.drop_path(self.layer(self.norm(tokens)))


class TransformerBlock(nn.Sequential):
    """A pre-norm transformer block (ViT Eq. 2-3): the attention sublayer, then the MLP sublayer.

    Each sublayer is residual (:class:`PreNormResidual`), so the block is their plain composition; being
    an ``nn.Sequential`` is also what lets the engine's activation checkpointing
    (``contrastive_core.engine.checkpoint_blocks``) recompute each block on its own. The two sublayers
    share the block's drop path rate but draw their keep/drop decisions independently, as in DINO.
    (B, N, D) -> (B, N, D).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        mlp_ratio: float,
        qkv_bias: bool,
        drop_path_rate: float,
        eps: float,
    ) -> None:
        super().__init__(
            OrderedDict(
                attn=PreNormResidual(
                    dim, Attention(dim, num_heads, qkv_bias=qkv_bias), drop_path_rate=drop_path_rate, eps=eps
                ),
                mlp=PreNormResidual(
                    dim, Mlp(dim, int(dim * mlp_ratio)), drop_path_rate=drop_path_rate, eps=eps
                ),
            )
        )
