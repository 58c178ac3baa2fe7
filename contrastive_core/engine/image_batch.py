"""A batch of uint8 images on one device, with each image's own size when the images differ in size.

SimCLR draws each view's crop box from the whole photo, whatever its size (Chen et al. 2020, Appendix A;
google-research/simclr ``distorted_bounding_box_crop``; torchvision's ``RandomResizedCrop``). Photos of
different sizes cannot be stacked, so a batch of them is one uint8 canvas ``(B, C, S, S)`` holding
image i in its top-left ``h_i x w_i`` corner, and beside it the sizes ``(B, 2)``: the crop samples
every box within its image's own size, and all views are still resampled from one tensor in one
batched operation. The canvas side S is the split's ``canvas_side``
(:class:`~contrastive_core.components.dataset.VariableSizeSplit`), the same for every batch, so no
shape depends on the data.

Beyond its image, a canvas row repeats the image's last column and its last row: a bilinear read at
the image's edge, or an anti-aliasing blur there, then sees the image's own border rather than an
arbitrary value. The padding is never content: only ``sizes`` says where an image ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.utils.data

from ..components.dataset import VariableSizeSplit


@dataclass(frozen=True)
class ImageBatch:
    """uint8 ``pixels`` (B, C, H, W) and, for images of different sizes, ``sizes`` int64 (B, 2).

    ``sizes[i] = (h_i, w_i)``: image i fills ``pixels[i, :, :h_i, :w_i]`` (see the module docstring),
    on the same device as ``pixels``. ``sizes = None``: every image fills the whole (H, W), as the
    batches of in-memory datasets and of evaluation splits do.
    """

    pixels: torch.Tensor
    sizes: torch.Tensor | None = None

    def __post_init__(self) -> None:
        # Shapes and dtypes only: checking values would read them back from the device.
        if self.pixels.ndim != 4:
            raise ValueError(f"an image batch is (B, C, H, W), got shape {tuple(self.pixels.shape)}")
        if self.sizes is not None and (
            self.sizes.shape != (self.pixels.shape[0], 2) or self.sizes.dtype != torch.int64
        ):
            raise ValueError(
                f"sizes must be int64 (B, 2) = ({self.pixels.shape[0]}, 2), one (height, width) per image; "
                f"got {self.sizes.dtype} {tuple(self.sizes.shape)}"
            )

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def to(self, device: torch.device, non_blocking: bool = False) -> ImageBatch:
        """The batch on ``device`` (pixels and sizes together)."""
        sizes = None if self.sizes is None else self.sizes.to(device, non_blocking=non_blocking)
        return ImageBatch(self.pixels.to(device, non_blocking=non_blocking), sizes)

    def record_stream(self, stream: torch.cuda.Stream) -> None:
        """Keep the tensors' memory from reuse until ``stream`` is done with them (CUDA streams)."""
        self.pixels.record_stream(stream)
        if self.sizes is not None:
            self.sizes.record_stream(stream)

    def image(self, index: int) -> torch.Tensor:
        """Image ``index`` cut to its own size, uint8 (C, h, w). Reads its size back to the host: for
        display and tests, not for a training step."""
        if self.sizes is None:
            return self.pixels[index]
        height, width = self.sizes[index].tolist()
        return self.pixels[index, :, :height, :width]


def canvas_batch(images: Sequence[torch.Tensor], side: int) -> ImageBatch:
    """Images uint8 (C, h_i, w_i), with ``h_i, w_i <= side``, all on one device -> their
    :class:`ImageBatch`: a canvas (B, C, side, side) and sizes int64 (B, 2), on that device.

    Image i goes in the top-left corner of canvas row i; the rest of the row repeats its last column
    and then its last row (see the module docstring).
    """
    if not images:
        raise ValueError("a canvas batch needs at least one image")
    channels, device = images[0].shape[0], images[0].device
    for image in images:
        if image.ndim != 3 or image.shape[0] != channels or max(image.shape[1:]) > side:
            raise ValueError(
                f"canvas images must be (C, h, w) with C = {channels} and h, w <= {side}; got "
                f"{tuple(image.shape)}"
            )
    canvas = torch.empty((len(images), channels, side, side), dtype=images[0].dtype, device=device)
    for row, image in enumerate(images):
        height, width = image.shape[1:]
        canvas[row, :, :height, :width] = image
        if width < side:
            canvas[row, :, :height, width:] = image[:, :, width - 1 :]
        if height < side:
            canvas[row, :, height:, :] = canvas[row, :, height - 1 : height, :]
    sizes = torch.tensor([tuple(image.shape[1:]) for image in images], dtype=torch.int64)
    return ImageBatch(canvas, sizes.to(device, non_blocking=True))


def items_batch(split: torch.utils.data.Dataset, positions: Sequence[int]) -> ImageBatch:
    """Items ``positions`` of ``split`` (decoded in this process) as one batch, as the loaders batch
    them: a canvas with sizes for a :class:`~contrastive_core.components.dataset.VariableSizeSplit`,
    stacked images otherwise. For a few images outside training (a check before it, a preview)."""
    images = [split[position][0] for position in positions]
    if isinstance(split, VariableSizeSplit):
        return canvas_batch(images, split.canvas_side)
    return ImageBatch(torch.stack(images))
