"""Random color jitter: brightness, contrast, saturation and hue in a random order per sample."""

from __future__ import annotations

import math
from typing import Literal

import torch
from kornia.enhance import (
    adjust_contrast_with_mean_subtraction,
    adjust_hue,
    adjust_saturation_with_gray_subtraction,
)
from pydantic import Field, model_validator

from contrastive_core import ComponentParams

from ._sampling import bernoulli, uniform
from .per_sample import PerSampleAugmentation

#: The jitter ops, indexed by the values of the per-sample ``order`` permutation.
JITTER_OPS = ("brightness", "contrast", "saturation", "hue")
#: The ops that are defined on a single (gray) channel.
GRAY_OPS = ("brightness", "contrast")


class ColorJitterParams(ComponentParams):
    type: Literal["color_jitter"] = "color_jitter"
    strength: float = Field(default=1.0, ge=0)
    """Color distortion strength s: brightness, contrast, saturation 0.8 s and hue 0.2 s."""
    brightness: float | None = Field(default=None, ge=0)
    """Brightness amount x (factor ~ U(max(0, 1 - x), 1 + x)); overrides 0.8 s when set."""
    contrast: float | None = Field(default=None, ge=0)
    """Contrast amount x (factor ~ U(max(0, 1 - x), 1 + x)); overrides 0.8 s when set."""
    saturation: float | None = Field(default=None, ge=0)
    """Saturation amount x (factor ~ U(max(0, 1 - x), 1 + x)); overrides 0.8 s when set."""
    hue: float | None = Field(default=None, ge=0, le=0.5)
    """Hue amount h in turns of the color wheel (shift ~ U(-h, h)); overrides 0.2 s when set."""
    p: float = Field(default=0.8, ge=0, le=1)
    """Probability that a sample is jittered at all."""

    @model_validator(mode="after")
    def _check_hue(self) -> ColorJitterParams:
        if self.hue is None and 0.2 * self.strength > 0.5:
            raise ValueError(
                f"strength {self.strength} gives a hue amount 0.2 s > 0.5 turn; set hue explicitly (<= 0.5)"
            )
        return self


class ColorJitter(PerSampleAugmentation):
    """Jitter brightness, contrast, saturation and hue with p = 0.8, in a random order per sample.

    The "color jitter" half of SimCLR's color distortion (Chen et al., 2020, Appendix A, with strength
    s: 0.8 s for brightness, contrast and saturation, 0.2 s for hue). Per sample: whether to jitter
    (probability p), a uniformly random order of the four ops, and one factor per op, with
    ``brightness, contrast, saturation ~ U(max(0, 1 - x), 1 + x)`` and ``hue shift ~ U(-h, h)`` turns.
    The ops, each clamped to [0, 1]:

    * brightness ``f * x``; multiplicative, as in the paper's code and torchvision (Kornia's
      ``adjust_brightness`` adds instead, so it is not used);
    * contrast ``f * x + (1 - f) * mean(gray(x))``, the mean over the whole image
      (``kornia.enhance.adjust_contrast_with_mean_subtraction``);
    * saturation ``f * x + (1 - f) * gray(x)`` (``kornia.enhance.adjust_saturation_with_gray_subtraction``);
    * hue: rotate the HSV hue by ``2 pi * shift`` (``kornia.enhance.adjust_hue``).

    Input (B, C, H, W) in [0, 1] with C = 3, or C = 1: on a single-channel (grayscale) batch such as
    Fashion-MNIST only brightness and contrast are applied, since saturation and hue do not exist
    there; the parameters are still drawn for all four ops, so the random stream is the same.
    Output (B, C, H, W) in [0, 1].
    """

    name = "color_jitter"
    Params = ColorJitterParams
    params: ColorJitterParams

    @property
    def amounts(self) -> dict[str, float]:
        """The amount of each op: the explicit override, else its share of the strength s."""
        s = self.params.strength
        defaults = {"brightness": 0.8 * s, "contrast": 0.8 * s, "saturation": 0.8 * s, "hue": 0.2 * s}
        overrides = {op: getattr(self.params, op) for op in JITTER_OPS}
        return {op: defaults[op] if overrides[op] is None else overrides[op] for op in JITTER_OPS}

    def sample_params(
        self, batch_shape: torch.Size, device: torch.device, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """(B, C, H, W) -> per sample (first dimension B):

        ``applied`` (B,) bool; ``order`` (B, 4) int64, a permutation of the op indices of
        ``JITTER_OPS`` (``order[b, k]`` is the k-th op of sample b); ``brightness``, ``contrast``,
        ``saturation`` (B,) float32 factors; ``hue`` (B,) float32 shift in turns.
        """
        batch = batch_shape[0]
        amounts = self.amounts
        params = {"applied": bernoulli(self.params.p, batch, device, generator)}
        # argsort of i.i.d. uniforms is a uniformly random permutation, independently per row.
        params["order"] = torch.rand((batch, len(JITTER_OPS)), generator=generator, device=device).argsort(
            dim=1
        )
        for op in ("brightness", "contrast", "saturation"):
            params[op] = uniform(max(0.0, 1 - amounts[op]), 1 + amounts[op], (batch,), device, generator)
        params["hue"] = uniform(-amounts["hue"], amounts["hue"], (batch,), device, generator)
        return params

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        channels = images.shape[1]
        if channels not in (1, 3):
            raise ValueError(f"color_jitter needs 1 or 3 channels, got {channels}")
        amounts = self.amounts
        # An op with amount 0 draws the identity factor for everyone, so it is skipped altogether.
        active = [
            index
            for index, op in enumerate(JITTER_OPS)
            if amounts[op] > 0 and (channels == 3 or op in GRAY_OPS)
        ]
        if not active:
            return images
        op_indices = torch.arange(len(JITTER_OPS), device=params["order"].device)
        # runs[k, j, b]: sample b is jittered and runs op j as its k-th op. The plan goes to the host
        # once and its row indices come back in one tensor: two transfers per call, instead of a
        # device sync for every (step, op) group, and each op only touches the rows that run it.
        runs = (params["order"].T[:, None, :] == op_indices[None, :, None]) & params["applied"]
        runs = runs.cpu()
        groups = [
            (step, index, runs[step, index].nonzero().squeeze(1)) for step in range(4) for index in active
        ]
        groups = [(step, index, rows) for step, index, rows in groups if rows.numel() > 0]
        if not groups:
            return images
        all_rows = torch.cat([rows for _, _, rows in groups]).to(images.device)
        device_rows = all_rows.split([rows.numel() for _, _, rows in groups])
        out = images.clone()
        # Groups are in step order, so each sample sees its ops in its own sampled order.
        for (_, index, _), rows in zip(groups, device_rows, strict=True):
            op = JITTER_OPS[index]
            factor = params[op].to(images.device, images.dtype)[rows]
            out[rows] = _adjust(op, out[rows], factor)
        return out


def _adjust(op: str, images: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Apply jitter op ``op`` to (N, C, H, W) ``images`` with one factor per sample ((N,) ``factor``)."""
    if op == "brightness":
        return (images * factor.view(-1, 1, 1, 1)).clamp(0, 1)
    if op == "contrast":
        return adjust_contrast_with_mean_subtraction(images, factor)
    if op == "saturation":
        return adjust_saturation_with_gray_subtraction(images, factor)
    # The HSV round trip can overshoot [0, 1] by rounding error.
    return adjust_hue(images, factor * (2 * math.pi)).clamp(0, 1)
