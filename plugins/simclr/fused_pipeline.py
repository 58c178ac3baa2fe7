"""The SimCLR augmentation list as one batched transform: the same views as the ops, without their overhead.

SimCLR (Chen et al., 2020, Sec. 2.1 and Appendix A) draws two random views of every image from a
composition of crop + flip, colour jitter, grayscale and blur.

The op-by-op pipeline (each registered op's ``forward``) spends its time on per-op overhead rather than
pixels: the colour jitter plans its random order on the host (two host-device transfers per view) and
runs each (step, op) group separately, crop and flip are two resamplings, and every view goes through
the whole list on its own. :class:`FusedSimCLRPipeline` keeps the registered ops as the *definition*
and changes only how their parameters are applied:

1. every parameter of every view is drawn first, on the device, by the ops' own ``sample_params``, in
   the order the op-by-op pipeline draws them (view by view, op by op), so the same generator gives the
   same parameters and therefore the same views, up to float rounding;
2. the pixels of all views then go through :mod:`.fused_ops` as one (V B, C, H, W) batch: crop + resize
   + flip as one resampling that reads the B source images once for all views, the colour ops as
   per-sample arithmetic in each sample's own random order, blur as one depthwise convolution.

Reduced precision: :meth:`~AugmentationPipeline.set_compute_dtype` (float16) runs every op after the
crop in half precision, which halves the memory traffic of the colour and blur passes; the crop's
resampling stays in float32 because its grid coordinates need more than float16's 11 significant bits
(0.1 pixel at 256 px). The pretrain stage turns it on for bf16/fp16 runs on CUDA, for batches of views
of at least 2^24 values (smaller ones are launch-bound), where the encoder rounds its input to bf16
(8 significant bits) at its first convolution anyway.

Photos of their own sizes (a padded canvas with every photo's ``sizes``, see
:class:`contrastive_core.engine.ImageBatch`) change step 1 only: the crop, which must be the first op,
draws each box within its photo's size; step 2 cuts the boxes from the canvas as from any batch.

Step 2 is a pure function of the images and the parameters, with no branching on tensor values and no
host synchronisation, so :meth:`compile_transforms` can hand it to ``torch.compile`` whole. Step 1
stays eager: ``torch.compile`` does not trace draws from a ``torch.Generator``, and the draws are a few
dozen small kernels per view, independent of the image size.

``build_pipeline`` picks this class automatically when every op of a recipe's list is one of the
registered SimCLR ops it reproduces (with any of their parameters); a list with any other op, or
``fused_augmentations = false`` in the pretrain stage, runs the ops one by one.

View groups with per-view op lists (``build_view_pipeline``; e.g. BYOL's two views, which blur and
solarize with different probabilities) are fused too: step 1 draws view v with view v's own ops, in the
same view-by-view order, and step 2 stays one transform over all V B rows. That is only possible when
the views' ops differ in what step 1 draws per sample, not in what step 2 reads from the ops
(:func:`transform_structure`: output size, anti-aliasing, blur kernel, active jitter ops, solarize
threshold, normalize statistics); :meth:`FusedSimCLRPipeline.fuse_views` refuses any other group,
which then runs op by op.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from contrastive_core.components import Augmentation
from contrastive_core.engine import AugmentationPipeline, check_crops_first, to_unit_float

from . import fused_ops
from .augmentations import (
    ColorJitter,
    GaussianBlur,
    HorizontalFlip,
    Normalize,
    PerSampleAugmentation,
    RandomGrayscale,
    RandomResizedCrop,
    Solarize,
)
from .augmentations.color_jitter import GRAY_OPS, JITTER_OPS

Params = dict[str, torch.Tensor]

#: With ``augmentation_precision = "auto"``, batches of views with fewer values than this stay in float32.
#: Measured on an H100 (docs/performance.md): 512 views at 224 px (77M values) gain from float16 (the
#: full step at 0.92 of the bare step instead of 0.89), 1024 views at 32 px (3.1M values) lose (0.83
#: instead of 0.91): small batches are bound by kernel launches, not memory traffic.
AUTO_FLOAT16_MIN_VALUES = 2**24

#: The op classes this pipeline reproduces exactly (subclasses may change ``apply``, so they are not).
FUSABLE_OPS: tuple[type[Augmentation], ...] = (
    RandomResizedCrop,
    HorizontalFlip,
    ColorJitter,
    RandomGrayscale,
    GaussianBlur,
    Solarize,
    Normalize,
)


class FusedSimCLRPipeline(AugmentationPipeline):
    """The registered SimCLR ops of a recipe, applied to all views of a batch as one batched transform.

    Same interface and results as :class:`AugmentationPipeline` over the same ops: ``forward``, ``views``
    and ``stacked_views`` take (B, C, H, W) uint8 or float in [0, 1] and return float views; the random
    parameters come from the ops' ``sample_params`` in the same order. Only the arithmetic is
    reorganised (see the module docstring), so results agree to float rounding (about 1e-6).
    """

    supports_reduced_precision = True

    def automatic_compute_dtype(
        self, device: torch.device, run_precision: str
    ) -> tuple[torch.dtype | None, int]:
        """float16 on CUDA in bf16/fp16 runs for batches of views of at least :data:`AUTO_FLOAT16_MIN_VALUES`
        values; float32 otherwise (CPUs gain nothing from float16 arithmetic). The encoder rounds its input
        to bf16 or fp16 at its first layer anyway, and half-width pixels halve the memory traffic."""
        if device.type == "cuda" and run_precision in ("bf16", "fp16"):
            return torch.float16, AUTO_FLOAT16_MIN_VALUES
        return None, 0

    def __init__(
        self,
        augmentations: Sequence[Augmentation],
        *,
        view_augmentations: Sequence[Sequence[Augmentation]] | None = None,
    ) -> None:
        """``augmentations``: the op list every view runs, which :meth:`transform` follows.

        ``view_augmentations``: for a view group with per-view op lists, the V lists (V >= 2) whose ops
        draw view v's parameters; each must have the :func:`transform_structure` of ``augmentations``
        (ValueError otherwise), which the group's transform applies to all V views at once. The
        pipeline then makes exactly V views (``view_count``).
        """
        lists = [augmentations, *(view_augmentations or ())]
        unsupported = sorted(
            {type(op).__name__ for ops in lists for op in ops if type(op) not in FUSABLE_OPS}
        )
        if unsupported:
            raise TypeError(f"FusedSimCLRPipeline cannot reproduce {', '.join(unsupported)}")
        super().__init__(augmentations)
        #: Per view group: one op list per view, which draws that view's parameters; None: every view
        #: draws with :attr:`augmentations`.
        self.view_augmentations: nn.ModuleList | None = None
        if view_augmentations is not None:
            if len(view_augmentations) < 2:
                raise ValueError(f"a per-view pipeline needs at least 2 views, got {len(view_augmentations)}")
            structure = [transform_structure(op) for op in augmentations]
            for view, ops in enumerate(view_augmentations):
                if [transform_structure(op) for op in ops] != structure:
                    raise ValueError(
                        f"view {view}'s ops differ from the transform's in what the transform reads "
                        "(see transform_structure); such a group cannot be fused"
                    )
            self.view_augmentations = nn.ModuleList(nn.ModuleList(ops) for ops in view_augmentations)
            self.view_count = len(view_augmentations)
        self._transform: Callable[[torch.Tensor, list[Params], int], torch.Tensor] = self.transform

    @classmethod
    def fuse(cls, augmentations: Sequence[Augmentation]) -> FusedSimCLRPipeline | None:
        """This pipeline over ``augmentations``, or None when some op is not one it reproduces."""
        if not augmentations or any(type(op) not in FUSABLE_OPS for op in augmentations):
            return None
        return cls(augmentations)

    @classmethod
    def fuse_views(cls, view_augmentations: Sequence[Sequence[Augmentation]]) -> FusedSimCLRPipeline | None:
        """One pipeline for a view group with per-view op lists (V >= 2, same op types in the same order),
        or None when some op is not one it reproduces or the views differ in what the transform reads.

        Fusable: differences in the per-sample draws only (probabilities, sampling ranges, jitter
        amounts with the same ops active). Not fusable: differences in :func:`transform_structure`.
        """
        if len(view_augmentations) < 2 or not view_augmentations[0]:
            return None
        if any(type(op) not in FUSABLE_OPS for ops in view_augmentations for op in ops):
            return None
        first = view_augmentations[0]
        structure = [transform_structure(op) for op in first]
        if any([transform_structure(op) for op in ops] != structure for ops in view_augmentations):
            return None
        return cls(first, view_augmentations=view_augmentations)

    # ------------------------------------------------------------------------------ interface

    def forward(
        self,
        images: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """images: (B, C, H, W) uint8 or float in [0, 1] -> one view (B, C, H', W') float.

        A per-view group's views come only together (:meth:`stacked_views`): ValueError.
        """
        if self.view_augmentations is not None:
            raise ValueError(
                f"this pipeline makes the {self.view_count} different views of its group together: "
                "call views() or stacked_views()"
            )
        return self._stacked(images, 1, generator, sizes)

    def views(
        self,
        images: torch.Tensor,
        n_views: int | None = None,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """``n_views`` views, each (B, C, H', W'): the consecutive row blocks of :meth:`stacked_views`."""
        n_views = self.resolve_n_views(n_views)
        return list(self._stacked(images, n_views, generator, sizes).chunk(n_views))

    def stacked_views(
        self,
        images: torch.Tensor,
        n_views: int | None = None,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, C, H, W) -> (n_views * B, C, H', W') float; rows v B ... (v + 1) B - 1 are view v.

        ``n_views``: None means ``view_count`` (2 when unset); a group's pipeline takes no other number.
        ``sizes`` (B, 2) int64: the images are photos of these (height, width) in the top-left corners
        of a padded canvas; the first op, the crop, draws every box within its photo.
        """
        return self._stacked(images, self.resolve_n_views(n_views), generator, sizes)

    def _stacked(
        self,
        images: torch.Tensor,
        n_views: int,
        generator: torch.Generator | None,
        sizes: torch.Tensor | None,
    ) -> torch.Tensor:
        check_crops_first(self.augmentations, sizes)
        images = to_unit_float(images)
        params = self.sample_params(images.shape, n_views, images.device, generator, sizes=sizes)
        return self._transform(images, params, n_views)

    def compile_transforms(self) -> None:
        """Compile :meth:`transform` with ``torch.compile`` (one graph: it has no data-dependent branches)."""
        self._transform = torch.compile(self.transform, fullgraph=True, dynamic=False)

    # ---------------------------------------------------------------------------- the two steps

    def sample_params(
        self,
        batch_shape: torch.Size,
        n_views: int,
        device: torch.device,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> list[Params]:
        """Every op's parameters for ``n_views`` views of a (B, C, H, W) batch, one dict per op.

        Drawn by the ops' own ``sample_params``, view by view and op by op as the op-by-op pipeline
        draws them (for a per-view group, view v by view v's own ops, and ``n_views`` must be V); each
        dict holds the op's tensors of all views concatenated, (n_views * B, ...). The order is what
        makes the views equal to the op-by-op pipeline's from the same generator: both consume one
        random stream, so any other order would hand each op different numbers. ``sizes`` (B, 2) go
        to the first op, the crop (see :meth:`stacked_views`), as the op-by-op pipeline hands them.
        """
        if self.view_augmentations is None:
            view_ops = [self.augmentations] * n_views
        elif n_views == len(self.view_augmentations):
            view_ops = list(self.view_augmentations)
        else:
            raise ValueError(f"this pipeline draws {len(self.view_augmentations)} views, not {n_views}")
        per_view: list[list[Params]] = []
        for ops in view_ops:
            shape = batch_shape
            drawn = []
            for position, op in enumerate(ops):
                if position == 0 and sizes is not None:
                    drawn.append(op.sample_params(shape, device, generator, sizes=sizes))
                else:
                    drawn.append(op.sample_params(shape, device, generator))
                shape = output_shape(op, shape)
            per_view.append(drawn)
        if n_views == 1:
            return per_view[0]
        return [
            {key: torch.cat([view[index][key] for view in per_view]) for key in per_view[0][index]}
            for index in range(len(self.augmentations))
        ]

    def transform(self, images: torch.Tensor, params: list[Params], n_views: int) -> torch.Tensor:
        """Apply every op with its ``params`` (from :meth:`sample_params`) to float (B, C, H, W) images.

        Returns (n_views * B, C, H', W'). Until the first random op all views are still equal, so the B
        source images are carried once, and the crop reads them once for all views. Only the
        :func:`transform_structure` of :attr:`augmentations` is read from the ops; everything else comes
        per sample from ``params``, which is why one transform serves a per-view group.
        """
        ops = list(self.augmentations)
        out, shared = images, True  # shared: `out` holds the B images every view starts from
        cropped = False  # the compute dtype applies from the crop on
        index = 0
        while index < len(ops):
            op, op_params = ops[index], params[index]
            if isinstance(op, Normalize):
                out = normalize(op, out)  # deterministic: shared images stay shared
            elif isinstance(op, RandomResizedCrop):
                # A flip right after the crop is folded into the crop's resampling grid.
                mirror = None
                if index + 1 < len(ops) and isinstance(ops[index + 1], HorizontalFlip):
                    index += 1
                    mirror = params[index]["applied"]
                if out.dtype.itemsize < 4:  # the resampling grid needs float32 (see the module docstring)
                    out = out.float()
                if op.params.antialias:
                    out = fused_ops.antialias_blur(
                        out.repeat(n_views, 1, 1, 1) if shared else out, op_params, op.params.size
                    )
                out = self._in_compute_dtype(
                    fused_ops.resized_crops(out, op_params, op.params.size, mirror, op.params.resample)
                )
                shared, cropped = False, True
            else:
                if cropped:
                    out = self._in_compute_dtype(out)
                out = apply_one(op, out.repeat(n_views, 1, 1, 1) if shared else out, op_params)
                shared = False
            index += 1
        return out.repeat(n_views, 1, 1, 1) if shared and n_views > 1 else out

    def _in_compute_dtype(self, images: torch.Tensor) -> torch.Tensor:
        if self.compute_dtype is None or images.numel() < self.compute_dtype_min_values:
            return images  # (a shape test: static, so no synchronisation and no graph break)
        return images.to(self.compute_dtype)


def transform_structure(op: Augmentation) -> tuple:
    """What :meth:`FusedSimCLRPipeline.transform` (with :func:`apply_one`, :func:`.fused_ops.antialias_blur`,
    :func:`normalize`, :func:`output_shape`) reads from ``op`` itself rather than from its sampled
    parameters: the views of a fused group must agree on it, since one transform runs all of them.

    * crop: ``size`` (output shape, anti-aliasing sigmas and kernel), ``antialias`` (whether that
      blur runs) and ``resample`` (the kernel); ``scale`` and ``ratio`` only shape the drawn boxes;
    * colour jitter: which of the four ops are active (amount > 0; the transform's branches), not the
      amounts themselves, which only set the ranges of the drawn factors;
    * blur: ``kernel_fraction``, which sets the kernel size (``sigma`` and ``p`` are drawn); two
      fractions may give one kernel size at some image size, but that size is known only per batch;
    * solarize: ``threshold``, a constant of the transform (``p`` is drawn);
    * normalize: ``mean`` and ``std``;
    * flip, grayscale: nothing but the type (``p`` is drawn).
    """
    if isinstance(op, RandomResizedCrop):
        details: tuple = (op.params.size, op.params.antialias, op.params.resample)
    elif isinstance(op, ColorJitter):
        details = tuple(op.amounts[name] > 0 for name in JITTER_OPS)
    elif isinstance(op, GaussianBlur):
        details = (op.params.kernel_fraction,)
    elif isinstance(op, Solarize):
        details = (float(op.params.threshold),)
    elif isinstance(op, Normalize):
        details = (tuple(op.params.mean), tuple(op.params.std))
    else:
        details = ()
    return (type(op), *details)


def output_shape(op: Augmentation, shape: torch.Size) -> torch.Size:
    """The batch shape after ``op``: the crop sets the side, every other op keeps it."""
    if isinstance(op, RandomResizedCrop):
        return torch.Size((shape[0], shape[1], op.params.size, op.params.size))
    return shape


def apply_one(op: Augmentation, images: torch.Tensor, params: Params) -> torch.Tensor:
    """One random op (not the crop) on (N, C, H, W) with its (N, ...) parameters, batched."""
    if isinstance(op, HorizontalFlip):
        return fused_ops.random_flip(images, params["applied"])
    if isinstance(op, ColorJitter):
        channels = images.shape[1]
        if channels not in (1, 3):
            raise ValueError(f"color_jitter needs 1 or 3 channels, got {channels}")
        amounts = op.amounts
        active = tuple(amounts[name] > 0 and (channels == 3 or name in GRAY_OPS) for name in JITTER_OPS)
        return fused_ops.color_jitter(images, params, active)
    if isinstance(op, RandomGrayscale):
        if images.shape[1] not in (1, 3):
            raise ValueError(f"random_grayscale needs 1 or 3 channels, got {images.shape[1]}")
        return fused_ops.random_grayscale(images, params["applied"])
    if isinstance(op, GaussianBlur):
        kernel = op.kernel_size(images.shape[-2], images.shape[-1])
        if kernel == (1, 1):
            return images
        return fused_ops.random_blur(images, params["applied"], params["sigma"], kernel)
    if isinstance(op, Solarize):
        return fused_ops.random_solarize(images, params["applied"], float(op.params.threshold))
    raise TypeError(f"no batched implementation of {type(op).__name__}")


def normalize(op: Normalize, images: torch.Tensor) -> torch.Tensor:
    """The deterministic per-channel standardisation, on shared or per-view images alike."""
    channels = images.shape[1]
    if channels != len(op.params.mean):
        raise ValueError(
            f"normalize has {len(op.params.mean)} channel statistics but the images have "
            f"{channels} channels; set mean and std with one value per channel"
        )
    mean = op.mean.to(images.device, images.dtype).view(1, -1, 1, 1)
    std = op.std.to(images.device, images.dtype).view(1, -1, 1, 1)
    return (images - mean) / std


# The ops find their fused pipeline here (they cannot import this module, which imports them).
PerSampleAugmentation.offer_fused_pipeline(FusedSimCLRPipeline)
