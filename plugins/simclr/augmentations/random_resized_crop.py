"""Random crop of random size and aspect ratio, resized to a fixed square (SimCLR's main augmentation)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from kornia.geometry.transform import crop_and_resize
from pydantic import Field, model_validator

from contrastive_core import ComponentParams

from ..fused_ops import antialias_blur, resized_crops
from ._sampling import uniform
from .per_sample import PerSampleAugmentation

#: Tries per sample before falling back to the central crop (the Inception-style crop's budget).
CROP_TRIES = 10


class RandomResizedCropParams(ComponentParams):
    type: Literal["random_resized_crop"] = "random_resized_crop"
    size: int = Field(gt=0)
    """Side of the square output in pixels (224 for ImageNet, 32 for CIFAR-10)."""
    scale: tuple[float, float] = (0.08, 1.0)
    """Range of the crop's area as a fraction of the image's area; drawn uniformly."""
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    """Range of the crop's aspect ratio width / height; its logarithm is drawn uniformly."""
    antialias: bool = False
    """Low-pass filter the image before shrinking a crop, so that downscaling does not alias."""
    resample: Literal["bilinear", "bicubic"] = "bilinear"
    """How a box is resized: "bilinear" (the box's corner pixels onto the output's corner pixels) or
    "bicubic" (half-pixel centres and a cubic kernel, as google-research/simclr's data_util.py resizes
    its crops with tf.image.resize(method=BICUBIC), then clipped to [0, 1])."""

    @model_validator(mode="after")
    def _check_ranges(self) -> RandomResizedCropParams:
        low, high = self.scale
        if not 0 < low <= high <= 1:
            raise ValueError(f"scale must satisfy 0 < low <= high <= 1, got {self.scale}")
        low, high = self.ratio
        if not 0 < low <= high:
            raise ValueError(f"ratio must satisfy 0 < low <= high, got {self.ratio}")
        return self


class RandomResizedCrop(PerSampleAugmentation):
    """Crop a random area (8-100%) and aspect ratio (3/4-4/3) of each image, resize it to size x size.

    The crop of Szegedy et al. (2015) used by SimCLR (Chen et al., 2020, Appendix A). Per sample and per
    try, the area fraction is drawn from U(scale) and the log aspect ratio from U(log ratio); the
    rounded width and height ``w = round(sqrt(A * f * r))``, ``h = round(sqrt(A * f / r))`` are accepted
    when they fit in the image. All ``CROP_TRIES`` tries of the whole batch are drawn at once and each
    sample keeps its first accepted one; a sample with none gets the central crop with the aspect ratio
    clipped to ``ratio``. The accepted crop's top-left corner is uniform over the positions where it fits.
    This is torchvision's ``RandomResizedCrop.get_params``, vectorised.

    **Photos of their own size.** The paper samples each box from the photo itself (e.g. 500 x 375),
    not from a square cut out of it (google-research/simclr ``distorted_bounding_box_crop``). Given
    ``sizes`` (int64 (B, 2)), image i is the top-left ``sizes[i] = (h_i, w_i)`` of a padded canvas
    (:class:`contrastive_core.engine.ImageBatch`) and A, the fits, the fallback and the corner are
    those of its own h_i x w_i, all as per-sample tensors; the boxes are in canvas pixels, so the same
    resampling cuts them. Without ``sizes`` every image is the whole H x W, and the two give the same
    boxes for images that fill the canvas.

    The crops are resized together with one bilinear warp (``kornia.geometry.transform.crop_and_resize``,
    pixel centres of the crop's corners mapped onto the output's corners). ``antialias`` first blurs
    each image with a Gaussian of standard deviation ``(crop side / size - 1) / 2`` per axis, so a
    crop that is shrunk does not alias; a crop that is enlarged is left sharp.

    Input (B, C, H, W) float in [0, 1] -> output (B, C, size, size).
    """

    name = "random_resized_crop"
    Params = RandomResizedCropParams
    params: RandomResizedCropParams
    crops_within_sizes = True

    def forward(
        self,
        images: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """images: (B, C, H, W) float in [0, 1] -> (B, C, size, size); ``sizes`` (B, 2) int64 on the
        images' device: each image's own (height, width) in the top-left of the canvas, or None."""
        if sizes is None:
            return super().forward(images, generator)
        if images.ndim != 4 or not images.is_floating_point():
            raise ValueError(
                f"{self.name} expects a float batch (B, C, H, W) in [0, 1], got {images.dtype} "
                f"of shape {tuple(images.shape)}"
            )
        return self.apply(images, self.sample_params(images.shape, images.device, generator, sizes=sizes))

    def sample_params(
        self,
        batch_shape: torch.Size,
        device: torch.device,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """(B, C, H, W) -> ``top``, ``left``, ``height``, ``width``: (B,) int64 crop boxes in pixels.

        ``sizes`` (B, 2) int64: sample each box within its image's own (h_i, w_i) (see the class
        docstring); None: within the whole H x W. The same random draws either way, so one generator
        state gives one set of boxes.
        """
        batch, _, canvas_height, canvas_width = batch_shape
        if sizes is None:
            image_height = torch.full((batch,), float(canvas_height), device=device)
            image_width = torch.full((batch,), float(canvas_width), device=device)
        else:
            image_height, image_width = sizes.to(device, torch.float32).unbind(1)
        # Exact in float32 up to 2^24 pixels (4096 x 4096); image folders bound photos by max_side.
        area = (image_height * image_width)[:, None]  # (B, 1)
        fractions = uniform(*self.params.scale, (batch, CROP_TRIES), device, generator)
        log_low, log_high = math.log(self.params.ratio[0]), math.log(self.params.ratio[1])
        aspect = torch.exp(uniform(log_low, log_high, (batch, CROP_TRIES), device, generator))
        widths = torch.round(torch.sqrt(area * fractions * aspect))
        heights = torch.round(torch.sqrt(area * fractions / aspect))
        fits = (
            (widths >= 1)
            & (widths <= image_width[:, None])
            & (heights >= 1)
            & (heights <= image_height[:, None])
        )
        # argmax returns the first maximal index, i.e. the first try that fits (0 when none does).
        first_fit = fits.to(torch.uint8).argmax(dim=1, keepdim=True)
        found = fits.any(dim=1)

        fallback_height, fallback_width = self._central_crop_size(image_height, image_width)
        height = torch.where(found, heights.gather(1, first_fit).squeeze(1), fallback_height)
        width = torch.where(found, widths.gather(1, first_fit).squeeze(1), fallback_width)

        # The corner is drawn for every sample (so the number of draws does not depend on the outcome)
        # and replaced by the centre for the fallback crops.
        position = torch.rand((batch, 2), generator=generator, device=device)
        top = torch.minimum(torch.floor(position[:, 0] * (image_height - height + 1)), image_height - height)
        left = torch.minimum(torch.floor(position[:, 1] * (image_width - width + 1)), image_width - width)
        top = torch.where(found, top, torch.div(image_height - fallback_height, 2, rounding_mode="floor"))
        left = torch.where(found, left, torch.div(image_width - fallback_width, 2, rounding_mode="floor"))
        return {
            "top": top.long(),
            "left": left.long(),
            "height": height.long(),
            "width": width.long(),
        }

    def _central_crop_size(
        self, image_height: torch.Tensor, image_width: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(height, width), float32 (B,) each, of every image's fallback crop: the largest central one
        with its ratio inside ``ratio``. Computed in float64 so that the rounding is exactly Python's
        (torchvision's) ``round(w / low)`` and ``round(h * high)``."""
        low, high = self.params.ratio
        height, width = image_height.double(), image_width.double()
        image_ratio = width / height
        crop_height = torch.where(image_ratio < low, torch.minimum(height, torch.round(width / low)), height)
        crop_width = torch.where(image_ratio > high, torch.minimum(width, torch.round(height * high)), width)
        return crop_height.float(), crop_width.float()

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, size, size): each sample's box cropped and resized (``resample``)."""
        size = self.params.size
        if self.params.resample == "bicubic":
            if self.params.antialias:
                images = antialias_blur(images, params, size)
            return resized_crops(images, params, size, resample="bicubic")
        dtype = images.dtype
        top, left = params["top"].to(dtype), params["left"].to(dtype)
        bottom = top + params["height"].to(dtype) - 1
        right = left + params["width"].to(dtype) - 1
        # Corners in (x, y) order: top-left, top-right, bottom-right, bottom-left (kornia's convention).
        boxes = torch.stack(
            [
                torch.stack([left, top], dim=-1),
                torch.stack([right, top], dim=-1),
                torch.stack([right, bottom], dim=-1),
                torch.stack([left, bottom], dim=-1),
            ],
            dim=1,
        )
        if self.params.antialias:
            images = antialias_blur(images, params, size)
        return crop_and_resize(images, boxes, (size, size), mode="bilinear", align_corners=True)
