"""The Vision Transformer encoder (Dosovitskiy et al. 2021) as DINO trains it (Caron et al. 2021, ViT-S/16).

Images are cut into patches and embedded as tokens (:class:`~.blocks.PatchEmbedding`); a learnable CLS
token is put in front, learnable positional embeddings are added (resized for other image sizes,
:mod:`.position`), the tokens pass through ``depth`` pre-norm transformer blocks and a final LayerNorm,
and the representation h is the CLS token's output (DINO, Sec. 3.1 and its reference ``vit_small``).

Weights are exported keyed as DINO's (and timm's) ``VisionTransformer`` without a classifier, so an
exported encoder loads with ``strict=True`` into ``vision_transformer.vit_small(patch_size=16)`` of
facebookresearch/dino, and into timm's ``VisionTransformer`` of the same shape
(:meth:`VisionTransformer.external_models`).
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

import torch
from pydantic import Field, PositiveInt, model_validator
from torch import nn

from contrastive_core import Encoder, EncoderParams, ExternalModel

from .blocks import PatchEmbedding, TransformerBlock
from .position import positions_for_grid

#: The LayerNorm epsilon of timm's VisionTransformer (a different one has no timm export).
TIMM_LAYER_NORM_EPS = 1e-6


class ViTShape(NamedTuple):
    """Width, depth and attention heads of a ViT."""

    embed_dim: int
    depth: int
    num_heads: int


#: The standard sizes: ViT-B (Dosovitskiy et al. 2021, Table 1), ViT-Ti and ViT-S (Touvron et al. 2021,
#: DeiT, Table 1), with the names DINO's code gives them.
ARCHITECTURES: dict[str, ViTShape] = {
    "vit_tiny": ViTShape(embed_dim=192, depth=12, num_heads=3),
    "vit_small": ViTShape(embed_dim=384, depth=12, num_heads=6),
    "vit_base": ViTShape(embed_dim=768, depth=12, num_heads=12),
}


class VisionTransformerParams(EncoderParams):
    type: Literal["vit"]

    arch: Literal["vit_tiny", "vit_small", "vit_base"] | None = "vit_small"
    """Preset size (embed_dim, depth, num_heads): vit_tiny (192, 12, 3) and vit_small (384, 12, 6) from
    DeiT (Touvron et al. 2021, Table 1), vit_base (768, 12, 12) from ViT (Dosovitskiy et al. 2021, Table
    1). DINO's default is vit_small with 16 px patches (Caron et al. 2021; its main_dino.py). None: no
    preset, embed_dim, depth and num_heads must all be given (TOML has no null: giving all three
    overrides any preset, which amounts to the same)."""

    embed_dim: PositiveInt | None = None
    """Token width D, overriding the preset's. Must be divisible by num_heads."""

    depth: PositiveInt | None = None
    """Number of transformer blocks L, overriding the preset's."""

    num_heads: PositiveInt | None = None
    """Attention heads per block, overriding the preset's; each head has D / num_heads channels."""

    patch_size: PositiveInt = 16
    """Side P of the square patches in pixels (DINO: 16, or 8 for its best and slowest models)."""

    image_size: PositiveInt = 224
    """Side of the square images the positional embeddings are made for: (image_size / P)^2 patch
    positions. Other sizes (DINO's 96 px local crops) get them bicubically resized (ViT, Sec. 3.2)."""

    in_channels: PositiveInt = 3
    """Channels of the input images: 3 for RGB, 1 for grayscale datasets such as Fashion-MNIST."""

    mlp_ratio: float = Field(4.0, gt=0)
    """Hidden width of each block's MLP as a multiple of D (ViT, Table 1: 4 D)."""

    qkv_bias: bool = True
    """Give the query/key/value projection a bias, as DINO's vit_tiny/small/base do."""

    drop_path_rate: float = Field(0.1, ge=0, lt=1)
    """Stochastic depth (Huang et al. 2016): the drop rate of the last block's residual branches, rising
    linearly from 0 at the first block. DINO's default for ViT-S is 0.1 (its main_dino.py)."""

    layer_norm_eps: float = Field(1e-6, gt=0)
    """Epsilon of every LayerNorm (DINO's and timm's ViTs use 1e-6, not PyTorch's default 1e-5)."""

    @model_validator(mode="after")
    def _check_shape(self) -> VisionTransformerParams:
        if self.arch is None:
            missing = [name for name in ViTShape._fields if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"arch is none, so embed_dim, depth and num_heads are all required; missing: "
                    f"{', '.join(missing)} (or choose an arch: {', '.join(ARCHITECTURES)})"
                )
        shape = self.shape
        if shape.embed_dim % shape.num_heads:
            raise ValueError(
                f"embed_dim {shape.embed_dim} is not divisible by num_heads {shape.num_heads}: every head "
                "gets embed_dim / num_heads channels"
            )
        if self.image_size % self.patch_size:
            raise ValueError(
                f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}: the "
                "positional embeddings are made for a whole number of patches"
            )
        if int(shape.embed_dim * self.mlp_ratio) < 1:
            raise ValueError(f"mlp_ratio {self.mlp_ratio} leaves the MLP with no hidden units")
        return self

    @property
    def shape(self) -> ViTShape:
        """The preset's (embed_dim, depth, num_heads), each replaced by its explicit value where given."""
        preset = ARCHITECTURES[self.arch] if self.arch is not None else None

        def pick(name: str) -> int:
            explicit = getattr(self, name)
            return explicit if explicit is not None else getattr(preset, name)

        return ViTShape(*(pick(name) for name in ViTShape._fields))


class VisionTransformer(Encoder):
    """Vision Transformer (ViT-S/16 by default, as in DINO); h is the CLS token after the final LayerNorm.

    Any image size that is a multiple of the patch size works, square or not: the positional embeddings
    are resized to its patch grid (:func:`~.position.positions_for_grid`).
    """

    name = "vit"
    Params = VisionTransformerParams

    def __init__(self, params: VisionTransformerParams) -> None:
        super().__init__(params)
        embed_dim, depth, num_heads = params.shape
        self.patch_embed = PatchEmbedding(params.in_channels, embed_dim, params.patch_size)
        side = params.image_size // params.patch_size
        self.native_grid = (side, side)
        # (1, 1, D) and (1, 1 + side^2, D): a leading batch axis to broadcast, as DINO's checkpoints have.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + side * side, embed_dim))
        # Stochastic depth decay rule (DeiT, DINO): 0 at the first block, drop_path_rate at the last.
        # Host floats, not torch.linspace(...).tolist(): reading tensor values would keep the encoder from
        # being built on the meta device (load_encoder checks an exported config there first).
        rates = [params.drop_path_rate * block / max(depth - 1, 1) for block in range(depth)]
        self.blocks = nn.Sequential(
            *(
                TransformerBlock(
                    embed_dim,
                    num_heads,
                    mlp_ratio=params.mlp_ratio,
                    qkv_bias=params.qkv_bias,
                    drop_path_rate=rate,
                    eps=params.layer_norm_eps,
                )
                for rate in rates
            )
        )
        self.norm = nn.LayerNorm(embed_dim, eps=params.layer_norm_eps)
        self._feature_dim = embed_dim
        self._init_weights()

    def _init_weights(self) -> None:
        """DINO's initialisation (after timm): truncated normal, std 0.02, for the CLS token, the positional
        embeddings and every Linear weight; zero Linear biases; LayerNorms at weight 1, bias 0. The patch
        embedding's convolution keeps PyTorch's default, as in DINO."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def feature_dim(self) -> int:
        """embed_dim: 384 for ViT-S, 192 for ViT-Ti, 768 for ViT-B."""
        return self._feature_dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, in_channels, H, W), H and W multiples of patch_size -> h: (B, embed_dim)."""
        grid = self.patch_embed.grid_size(images.shape[-2], images.shape[-1])
        patches = self.patch_embed(images)  # (B, h * w, D)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)  # (B, 1, D)
        tokens = torch.cat([cls, patches], dim=1) + positions_for_grid(self.pos_embed, self.native_grid, grid)
        tokens = self.blocks(tokens)  # (B, 1 + h * w, D)
        # LayerNorm acts on each token alone, so normalising only the CLS token equals DINO's norm-then-pick.
        return self.norm(tokens[:, 0])

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights keyed as DINO's ``VisionTransformer`` (``blocks.0.norm1.weight``,
        ``blocks.0.attn.qkv.weight``, ...); like ``state_dict``, the tensors share the encoder's storage."""
        return {_exported_key(key): value for key, value in self.state_dict().items()}

    def load_exported_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Inverse of :meth:`export_state_dict` (strict: every key must match)."""
        self.load_state_dict({_internal_key(key): value for key, value in state.items()}, strict=True)

    def external_models(self) -> dict[str, ExternalModel]:
        """timm's ``VisionTransformer`` of the same shape, for ``contrastive export --format timm``.

        The exported keys are timm's too, and with the class token as its pooled output (timm's
        ``global_pool="token"``) timm computes the same function: the same pre-norm blocks, exact GELU,
        qkv layout and final LayerNorm. Every shape setting is passed to ``timm.create_model``, so any
        size maps; only a LayerNorm epsilon other than timm's 1e-6 does not.
        """
        params = self.params
        if params.layer_norm_eps != TIMM_LAYER_NORM_EPS:
            return {}
        embed_dim, depth, num_heads = params.shape
        # The preset of the same size only names the model; the keywords set every shape.
        preset = f"{params.arch or 'vit_base'}_patch16_224"
        keywords = (
            f"pretrained=False, num_classes=0, img_size={params.image_size}, patch_size={params.patch_size}, "
            f"in_chans={params.in_channels}, embed_dim={embed_dim}, depth={depth}, num_heads={num_heads}, "
            f"mlp_ratio={params.mlp_ratio}, qkv_bias={params.qkv_bias}"
        )
        code = "\n".join(["import timm", "", f'model = timm.create_model("{preset}", {keywords})'])
        return {"timm": ExternalModel(self.export_state_dict(), code, "timm")}


# Each block here is two sublayers, attn and mlp, each holding its own LayerNorm (``norm``) and ``layer``;
# DINO's block holds norm1, attn, norm2 and mlp side by side. Only the keys under ``blocks.<i>.`` differ.
_DINO_NAMES = {"attn.norm": "norm1", "attn.layer": "attn", "mlp.norm": "norm2", "mlp.layer": "mlp"}
_OUR_NAMES = {dino: ours for ours, dino in _DINO_NAMES.items()}
_OUR_BLOCK_KEY = re.compile(r"^(blocks\.\d+)\.(attn\.norm|attn\.layer|mlp\.norm|mlp\.layer)\.(.+)$")
_DINO_BLOCK_KEY = re.compile(r"^(blocks\.\d+)\.(norm1|attn|norm2|mlp)\.(.+)$")


def _exported_key(key: str) -> str:
    """``blocks.3.attn.layer.qkv.weight`` -> ``blocks.3.attn.qkv.weight``; keys outside blocks unchanged."""
    match = _OUR_BLOCK_KEY.match(key)
    return key if match is None else f"{match[1]}.{_DINO_NAMES[match[2]]}.{match[3]}"


def _internal_key(key: str) -> str:
    """Inverse of :func:`_exported_key`: ``blocks.3.norm2.bias`` -> ``blocks.3.mlp.norm.bias``."""
    match = _DINO_BLOCK_KEY.match(key)
    return key if match is None else f"{match[1]}.{_OUR_NAMES[match[2]]}.{match[3]}"
