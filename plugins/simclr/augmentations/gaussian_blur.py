"""Random Gaussian blur with a per-sample standard deviation."""

from __future__ import annotations

from typing import Literal

import torch
from kornia.filters import gaussian_blur2d
from pydantic import Field, model_validator

from contrastive_core import ComponentParams

from ..fused_ops import select
from ._sampling import bernoulli, uniform
from .per_sample import PerSampleAugmentation


class GaussianBlurParams(ComponentParams):
    type: Literal["gaussian_blur"] = "gaussian_blur"
    p: float = Field(default=0.5, ge=0, le=1)
    """Probability that a sample is blurred."""
    kernel_fraction: float = Field(default=0.1, gt=0, le=1)
    """Kernel side as a fraction of the image side (rounded down, then made odd)."""
    sigma: tuple[float, float] = (0.1, 2.0)
    """Range of the Gaussian's standard deviation in pixels; drawn uniformly per sample."""

    @model_validator(mode="after")
    def _check_sigma(self) -> GaussianBlurParams:
        low, high = self.sigma
        if not 0 < low <= high:
            raise ValueError(f"sigma must satisfy 0 < low <= high, got {self.sigma}")
        return self


class GaussianBlur(PerSampleAugmentation):
    """Blur each image with probability p (default 0.5), sigma ~ U(0.1, 2.0), kernel 10% of the side.

    SimCLR's ImageNet pipeline (Chen et al., 2020, Appendix A): "we blur the image 50% of the time using
    a Gaussian kernel. We randomly sample sigma in [0.1, 2.0], and the kernel size is set to be 10% of
    the image height/width". Per axis the kernel side is ``2 * (int(side * kernel_fraction) // 2) + 1``
    (23 for 224 pixels, 3 for 32); images under 20 pixels get a 1-pixel kernel, i.e. no blur (the paper
    drops blur on CIFAR-10). Borders are reflected. Input (B, C, H, W) -> output (B, C, H, W).
    """

    name = "gaussian_blur"
    Params = GaussianBlurParams
    params: GaussianBlurParams

    def kernel_size(self, height: int, width: int) -> tuple[int, int]:
        """Odd (kernel height, kernel width) for an image of height x width pixels."""

        def odd_side(side: int) -> int:
            # The radius also stays below the side, which reflect padding requires.
            radius = min(int(side * self.params.kernel_fraction) // 2, side - 1)
            return 2 * radius + 1

        return odd_side(height), odd_side(width)

    def sample_params(
        self, batch_shape: torch.Size, device: torch.device, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """(B, C, H, W) -> ``applied``: (B,) bool; ``sigma``: (B,) float32 standard deviations."""
        batch = batch_shape[0]
        applied = bernoulli(self.params.p, batch, device, generator)
        sigma = uniform(*self.params.sigma, (batch,), device, generator)
        return {"applied": applied, "sigma": sigma}

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        kernel = self.kernel_size(images.shape[-2], images.shape[-1])
        if kernel == (1, 1):
            return images
        # One isotropic sigma per sample, as (sigma_y, sigma_x) rows.
        sigma = params["sigma"].to(images.dtype).unsqueeze(1).expand(-1, 2)
        blurred = gaussian_blur2d(images, kernel, sigma, border_type="reflect")
        return select(params["applied"], blurred, images)
