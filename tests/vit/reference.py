"""An independent float64 Vision Transformer written with plain tensor algebra, over DINO-keyed weights.

It reads the weights by the key names of DINO's ``VisionTransformer`` (what
``VisionTransformer.export_state_dict`` writes), so comparing it with the module checks the layers and
the exported names together. Nothing here uses the plugin's modules or ``torch.nn`` layers.
"""

from __future__ import annotations

import math

import torch

Weights = dict[str, torch.Tensor]


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """Normalise each token over its channels (biased variance, as LayerNorm defines it)."""
    mean = x.mean(dim=-1, keepdim=True)
    variance = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
    return (x - mean) / torch.sqrt(variance + eps) * weight + bias


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact GELU, x * Phi(x) with Phi the standard normal CDF."""
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def softmax(scores: torch.Tensor) -> torch.Tensor:
    shifted = torch.exp(scores - scores.max(dim=-1, keepdim=True).values)
    return shifted / shifted.sum(dim=-1, keepdim=True)


def linear(x: torch.Tensor, weights: Weights, prefix: str) -> torch.Tensor:
    return x @ weights[f"{prefix}.weight"].T + weights[f"{prefix}.bias"]


def attention(x: torch.Tensor, weights: Weights, prefix: str, num_heads: int) -> torch.Tensor:
    """(B, N, D) -> (B, N, D): q, k, v are the three D-wide thirds of the qkv output, heads contiguous."""
    batch, length, dim = x.shape
    head_dim = dim // num_heads
    qkv = linear(x, weights, f"{prefix}.qkv")
    q, k, v = qkv[..., :dim], qkv[..., dim : 2 * dim], qkv[..., 2 * dim :]
    outputs = []
    for head in range(num_heads):
        channels = slice(head * head_dim, (head + 1) * head_dim)
        scores = q[..., channels] @ k[..., channels].transpose(1, 2) / math.sqrt(head_dim)
        outputs.append(softmax(scores) @ v[..., channels])
    return linear(torch.cat(outputs, dim=-1), weights, f"{prefix}.proj")


def block(x: torch.Tensor, weights: Weights, prefix: str, num_heads: int, eps: float) -> torch.Tensor:
    """One pre-norm block, without stochastic depth (evaluation mode)."""
    normed = layer_norm(x, weights[f"{prefix}.norm1.weight"], weights[f"{prefix}.norm1.bias"], eps)
    x = x + attention(normed, weights, f"{prefix}.attn", num_heads)
    normed = layer_norm(x, weights[f"{prefix}.norm2.weight"], weights[f"{prefix}.norm2.bias"], eps)
    hidden = gelu(linear(normed, weights, f"{prefix}.mlp.fc1"))
    return x + linear(hidden, weights, f"{prefix}.mlp.fc2")


def vit_cls_output(
    images: torch.Tensor, weights: Weights, *, patch_size: int, depth: int, num_heads: int, eps: float
) -> torch.Tensor:
    """(B, C, H, W) at the native size of ``pos_embed`` -> (B, D): the normalised CLS token."""
    batch, channels, height, width = images.shape
    rows, cols = height // patch_size, width // patch_size
    # Patch (r, c) flattened channel-major, like the conv kernel (D, C, P, P); token order row-major.
    patches = torch.stack(
        [
            images[
                :, :, r * patch_size : (r + 1) * patch_size, c * patch_size : (c + 1) * patch_size
            ].reshape(batch, -1)
            for r in range(rows)
            for c in range(cols)
        ],
        dim=1,
    )
    kernel = weights["patch_embed.proj.weight"]
    tokens = patches @ kernel.reshape(kernel.shape[0], -1).T + weights["patch_embed.proj.bias"]
    cls = weights["cls_token"].expand(batch, 1, -1)
    x = torch.cat([cls, tokens], dim=1) + weights["pos_embed"]
    for index in range(depth):
        x = block(x, weights, f"blocks.{index}", num_heads, eps)
    return layer_norm(x[:, 0], weights["norm.weight"], weights["norm.bias"], eps)
