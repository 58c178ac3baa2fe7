"""A recipe's ordered ``[[augmentations]]`` list as one module that turns a batch into random views.

SimCLR (Chen et al., 2020, Sec. 2.1) draws two independent transformations ``t, t' ~ T`` per image
and trains on the pair of views ``t(x), t'(x)``; here ``T`` is the composition of the recipe's ops.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .augmentation import Augmentation
from .build import build
from .component import ComponentParams
from .registry import Registry


class AugmentationPipeline(nn.Module):
    """Applies augmentation ops in order to a whole batch on its device.

    ``forward`` takes ``(B, C, H, W)`` uint8 (0-255, scaled to float32 in [0, 1]) or float (taken as
    already in [0, 1]) and returns one view ``(B, C, H', W')`` float. Every op draws its random
    parameters per sample from ``generator`` (which must live on the batch's device; None uses that
    device's default RNG), so a seeded generator reproduces the views exactly.
    """

    #: Whether :meth:`set_compute_dtype` can move the pixel arithmetic to a 16-bit float type. The
    #: op-by-op reference pipeline cannot: its ops compute in the dtype of their input, float32.
    supports_reduced_precision: bool = False

    def __init__(self, augmentations: Sequence[Augmentation]) -> None:
        super().__init__()
        self.augmentations = nn.ModuleList(augmentations)
        #: The float type of the pixel arithmetic; None: the images' own (float32 for uint8 batches).
        self.compute_dtype: torch.dtype | None = None
        #: Batches of views with fewer values than this keep the images' own dtype (see set_compute_dtype).
        self.compute_dtype_min_values = 0

    def set_compute_dtype(self, dtype: torch.dtype | None, *, min_values: int = 0) -> None:
        """Compute the views' pixels in ``dtype`` (a 16-bit float only where
        :attr:`supports_reduced_precision`; None: the images' own dtype); ValueError for one it cannot use.

        ``min_values``: only batches of views holding at least this many values use ``dtype``. Half
        precision halves the memory traffic of large batches, but small ones are bound by kernel
        launches, where the extra conversions cost more than they save (measured on an H100:
        docs/performance.md).
        """
        if dtype is not None:
            if not dtype.is_floating_point:
                raise ValueError(f"the pixel arithmetic needs a float dtype, not {dtype}")
            if not self.supports_reduced_precision:
                if dtype.itemsize < 4:
                    raise ValueError(
                        f"{type(self).__name__} computes in float32 or float64 only, not {dtype}"
                    )
                dtype = None  # the ops compute in their input's dtype, float32 for the engine's uint8 batches
        self.compute_dtype = dtype
        self.compute_dtype_min_values = min_values

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """images: (B, C, H, W) uint8 or float in [0, 1] -> one view (B, C, H', W') float."""
        return self._augment(to_unit_float(images), generator)

    def views(
        self, images: torch.Tensor, n_views: int = 2, generator: torch.Generator | None = None
    ) -> list[torch.Tensor]:
        """``n_views`` independently augmented views of the batch, each (B, C, H', W') float."""
        if n_views < 1:
            raise ValueError(f"n_views must be at least 1, got {n_views}")
        # Converted once; the views then differ only by their random draws.
        images = to_unit_float(images)
        return [self._augment(images, generator) for _ in range(n_views)]

    def stacked_views(
        self, images: torch.Tensor, n_views: int = 2, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The ``n_views`` views in one (n_views * B, C, H', W') tensor: rows v B ... (v + 1) B - 1 are view v.

        What a training step feeds the encoder (all views in one forward pass); a faster pipeline
        writes them there directly instead of concatenating separate views.
        """
        return torch.cat(self.views(images, n_views, generator))

    def compile_transforms(self) -> None:
        """Compile the pixel work with ``torch.compile`` where the implementation allows it.

        The op-by-op reference pipeline plans its colour jitter on the host, so it stays eager; a fused
        pipeline (see :func:`build_pipeline`) compiles its whole batched transform.
        """

    def _augment(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        for augmentation in self.augmentations:
            images = augmentation(images, generator)
        return images


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) uint8 -> float / 255 (float32, torch's default float dtype); a float batch is returned as
    it is (assumed in [0, 1])."""
    if images.ndim != 4:
        raise ValueError(f"expected a batch of images (B, C, H, W), got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        # One kernel: true division promotes uint8 to float32 on the fly (same values as .float() / 255).
        return images.div(255)
    if images.is_floating_point():
        return images
    raise TypeError(f"expected uint8 or float images, got {images.dtype}")


def build_pipeline(
    augmentation_params_list: Iterable[Mapping[str, Any] | ComponentParams],
    registry: Registry | None = None,
    *,
    fused: bool = True,
) -> AugmentationPipeline:
    """Build each op of a recipe's ``[[augmentations]]`` list (in order) into one pipeline.

    >>> pipeline = build_pipeline([{"type": "random_resized_crop", "size": 32}, {"type": "horizontal_flip"}])

    Each entry is a params dict (or validated params) for ``build("augmentation", ...)``; ``registry``
    defaults to the environment's plugins. With ``fused`` (the default) the pipeline is the faster
    implementation the ops offer when one takes all of them (see :func:`fused_pipeline`): it draws the
    same parameters from the same generator and computes the same views up to float rounding. Otherwise,
    or when any op has no fused implementation, the ops run one after the other as registered.
    """
    augmentations = [build("augmentation", params, registry=registry) for params in augmentation_params_list]
    if fused:
        faster = fused_pipeline(augmentations)
        if faster is not None:
            return faster
    return AugmentationPipeline(augmentations)


def fused_pipeline(augmentations: Sequence[Augmentation]) -> AugmentationPipeline | None:
    """The fused pipeline that the ops' classes offer for exactly this list, or None.

    An augmentation class offers one through a classmethod ``fused_pipeline_class()`` returning an
    :class:`AugmentationPipeline` subclass with a classmethod ``fuse(augmentations)``, which builds the
    fused pipeline or returns None when it cannot reproduce some op (e.g. a subclass it does not know).
    Every op must offer the same class: a list that mixes in any other op keeps the reference pipeline,
    so the recipe's list, not the implementation, always defines the distribution of the views.
    """
    offered = {
        offer() if (offer := getattr(type(op), "fused_pipeline_class", None)) is not None else None
        for op in augmentations
    }
    if len(offered) != 1 or None in offered:
        return None
    (pipeline_class,) = offered
    return pipeline_class.fuse(augmentations)
