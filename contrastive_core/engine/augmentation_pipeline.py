"""A recipe's ordered ``[[augmentations]]`` list as one module that turns a batch into random views.

SimCLR (Chen et al., 2020, Sec. 2.1) draws two independent transformations ``t, t' ~ T`` per image
and trains on the pair of views ``t(x), t'(x)``; here ``T`` is the composition of the recipe's ops.

Other methods ask for *view groups*: V views of one batch whose op lists share their op types and
order but may differ in parameters (BYOL blurs its first view always and its second rarely, and
solarizes only the second). :func:`build_view_pipeline` makes one pipeline per group; a group whose V
lists are equal is exactly :func:`build_pipeline` of that list.

Photos of different sizes come as one padded canvas with every image's size (``sizes``, see
:class:`~.image_batch.ImageBatch`); the pipeline hands the sizes to its first op, which must crop
within them (:attr:`~contrastive_core.components.augmentation.Augmentation.crops_within_sizes`), and
every later op sees the crops, which have one size.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..components.augmentation import Augmentation
from ..components.component import ComponentParams
from ..registration.build import build
from ..registration.registry import Registry


class AugmentationPipeline(nn.Module):
    """Applies augmentation ops in order to a whole batch on its device.

    ``forward`` takes ``(B, C, H, W)`` uint8 (0-255, scaled to float32 in [0, 1]) or float (taken as
    already in [0, 1]) and returns one view ``(B, C, H', W')`` float. Every op draws its random
    parameters per sample from ``generator`` (which must live on the batch's device; None uses that
    device's default RNG), so a seeded generator reproduces the views exactly. ``sizes`` (int64 (B, 2),
    on the batch's device), given for a padded canvas of images of different sizes, is each image's
    ``(height, width)`` in the canvas's top-left corner; the first op crops within it (ValueError
    when that op cannot: :func:`check_crops_first`).

    :meth:`views` and :meth:`stacked_views` make ``n_views`` views of the same op list. A pipeline that
    stands for one view group (see :func:`build_view_pipeline`) has :attr:`view_count` set and makes
    exactly that many.
    """

    #: The number of views this pipeline makes, or None: any number (each view runs the same op list).
    view_count: int | None = None
    #: Whether :meth:`set_compute_dtype` can move the pixel arithmetic to a 16-bit float type. The
    #: op-by-op reference pipeline cannot: its ops compute in the dtype of their input, float32.
    supports_reduced_precision: bool = False

    def automatic_compute_dtype(
        self, device: torch.device, run_precision: str
    ) -> tuple[torch.dtype | None, int]:
        """What ``augmentation_precision = "auto"`` means for this pipeline on ``device`` in a run of
        ``run_precision``: (a dtype for :meth:`set_compute_dtype` or None for the images' own, the
        ``min_values`` from which it applies). A pipeline that measured where half precision pays off says
        so here; this one computes in float32."""
        return None, 0

    def __init__(self, augmentations: Sequence[Augmentation]) -> None:
        super().__init__()
        self.augmentations = nn.ModuleList(augmentations)
        self.view_count = None
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

    def forward(
        self,
        images: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """images: (B, C, H, W) uint8 or float in [0, 1] -> one view (B, C, H', W') float."""
        check_crops_first(self.augmentations, sizes)
        return self._augment(to_unit_float(images), generator, sizes)

    def views(
        self,
        images: torch.Tensor,
        n_views: int | None = None,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """``n_views`` independently augmented views of the batch, each (B, C, H', W') float.

        ``n_views``: None means :attr:`view_count`, or 2 for a pipeline that makes any number of views;
        a pipeline with a :attr:`view_count` accepts no other number (ValueError). ``sizes``: see the
        class docstring.
        """
        n_views = self.resolve_n_views(n_views)
        check_crops_first(self.augmentations, sizes)
        # Converted once; the views then differ only by their random draws.
        images = to_unit_float(images)
        return [self._augment(images, generator, sizes) for _ in range(n_views)]

    def stacked_views(
        self,
        images: torch.Tensor,
        n_views: int | None = None,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The ``n_views`` views in one (n_views * B, C, H', W') tensor: rows v B ... (v + 1) B - 1 are view v.

        What a training step feeds the encoder (all views in one forward pass); a faster pipeline
        writes them there directly instead of concatenating separate views. ``n_views`` and ``sizes``
        as in :meth:`views`.
        """
        return torch.cat(self.views(images, n_views, generator, sizes=sizes))

    def resolve_n_views(self, n_views: int | None) -> int:
        """The number of views a call makes: ``n_views``, or :attr:`view_count` (2 when unset) for None.

        ValueError for a number below 1, or for one other than a set :attr:`view_count`.
        """
        if n_views is None:
            n_views = 2 if self.view_count is None else self.view_count
        elif self.view_count is not None and n_views != self.view_count:
            raise ValueError(
                f"this pipeline makes the {self.view_count} views of its group, not {n_views}; "
                "pass n_views=None (or build another group for a different count)"
            )
        if n_views < 1:
            raise ValueError(f"n_views must be at least 1, got {n_views}")
        return n_views

    def compile_transforms(self) -> None:
        """Compile the pixel work with ``torch.compile`` where the implementation allows it.

        The op-by-op reference pipeline plans its colour jitter on the host, so it stays eager; a fused
        pipeline (see :func:`build_pipeline`) compiles its whole batched transform.
        """

    def _augment(
        self, images: torch.Tensor, generator: torch.Generator | None, sizes: torch.Tensor | None
    ) -> torch.Tensor:
        return apply_in_order(self.augmentations, images, generator, sizes)


class PerViewAugmentationPipeline(AugmentationPipeline):
    """The op-by-op pipeline of one view group whose views run different op lists.

    View v applies ``view_augmentations[v]`` in order, drawing its parameters as it goes; the views are
    made one after the other, view 0 first, so the generator's stream is consumed view by view and op
    by op, as a fused implementation of the same group must consume it (see :func:`build_view_pipeline`).
    :attr:`augmentations` holds view 0's ops (the op types every view shares).

    ``views`` / ``stacked_views`` take (B, C, H, W) uint8 or float in [0, 1] and return the V views,
    each (B, C, H'_v, W'_v) float, or stacked (V B, C, H', W') when every view has the same size.
    """

    def __init__(self, view_augmentations: Sequence[Sequence[Augmentation]]) -> None:
        if len(view_augmentations) < 2:
            raise ValueError(f"a per-view pipeline needs at least 2 views, got {len(view_augmentations)}")
        check_same_op_types(view_augmentations)
        super().__init__(view_augmentations[0])
        #: One op list per view, (V,) lists.
        self.view_augmentations = nn.ModuleList(nn.ModuleList(ops) for ops in view_augmentations)
        self.view_count = len(view_augmentations)

    def forward(
        self,
        images: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        raise ValueError(
            f"this pipeline makes the {self.view_count} different views of its group together: "
            "call views() or stacked_views()"
        )

    def views(
        self,
        images: torch.Tensor,
        n_views: int | None = None,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        """The group's V views, view v from its own op list, each (B, C, H'_v, W'_v) float."""
        self.resolve_n_views(n_views)
        check_crops_first(self.augmentations, sizes)  # the views share their op types
        images = to_unit_float(images)
        return [apply_in_order(ops, images, generator, sizes) for ops in self.view_augmentations]

    def stacked_views(
        self,
        images: torch.Tensor,
        n_views: int | None = None,
        generator: torch.Generator | None = None,
        *,
        sizes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, C, H, W) -> (V B, C, H', W'), rows v B ... (v + 1) B - 1 view v; the views must share a size."""
        views = self.views(images, n_views, generator, sizes=sizes)
        sizes = {tuple(view.shape[1:]) for view in views}
        if len(sizes) > 1:
            raise ValueError(
                f"the views of this group have different shapes {sorted(sizes)}: they cannot be stacked; "
                "use views(), or one group per output size"
            )
        return torch.cat(views)


def apply_in_order(
    augmentations: Iterable[Augmentation],
    images: torch.Tensor,
    generator: torch.Generator | None,
    sizes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Float (B, C, H, W) through each op in turn (each drawing its parameters) -> (B, C, H', W').

    ``sizes`` (B, 2), for a canvas of images of different sizes, goes to the first op, a crop within
    each image's size (see :func:`check_crops_first`); its output has one size, so no later op needs them.
    """
    for position, augmentation in enumerate(augmentations):
        if position == 0 and sizes is not None:
            images = augmentation(images, generator, sizes=sizes)
        else:
            images = augmentation(images, generator)
    return images


class CanvasOrderError(ValueError):
    """A pipeline fed a canvas of images of different sizes does not start with a crop within them."""


def check_crops_first(augmentations: Sequence[Augmentation], sizes: torch.Tensor | None) -> None:
    """:class:`CanvasOrderError` when ``sizes`` is given (a padded canvas of images of different sizes)
    but the first op does not crop within them (:attr:`Augmentation.crops_within_sizes`): any other
    op would treat the padding as image (a flip would move it to the left, a colour jitter would count
    it in the image's mean). Checked from the op types alone, without reading ``sizes``."""
    if sizes is None:
        return
    first = next(iter(augmentations), None)
    if first is None or not first.crops_within_sizes:
        what = "no op" if first is None else f"{first.name!r}"
        raise CanvasOrderError(
            f"the images are photos of different sizes padded into one canvas, so the first augmentation "
            f"must be a crop that reads their sizes (random_resized_crop), not {what}"
        )


def check_same_op_types(view_augmentations: Sequence[Sequence[Augmentation]]) -> None:
    """ValueError unless every view's op list has view 0's op types in view 0's order."""

    def name(ops: Sequence[Augmentation], position: int) -> str:
        return repr(ops[position].name) if position < len(ops) else "no op (its list ends)"

    first = view_augmentations[0]
    for view, ops in enumerate(view_augmentations[1:], start=1):
        for position in range(max(len(first), len(ops))):
            same = position < min(len(first), len(ops)) and type(ops[position]) is type(first[position])
            if not same:
                raise ValueError(
                    f"view {view} has {name(ops, position)} at position {position} of its op list where "
                    f"view 0 has {name(first, position)}; all views of a group need the same op types "
                    "in the same order"
                )


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
    or when any op has no fused implementation, the ops run one after the other as registered. The
    pipeline makes any number of views of the list (its :attr:`~AugmentationPipeline.view_count` is None).
    """
    augmentations = [build("augmentation", params, registry=registry) for params in augmentation_params_list]
    return _assemble(augmentations, fused)


def _assemble(augmentations: Sequence[Augmentation], fused: bool) -> AugmentationPipeline:
    if fused:
        faster = fused_pipeline(augmentations)
        if faster is not None:
            return faster
    return AugmentationPipeline(augmentations)


def build_view_pipeline(
    per_view_params: Sequence[Sequence[Mapping[str, Any] | ComponentParams]],
    registry: Registry | None = None,
    *,
    fused: bool = True,
) -> AugmentationPipeline:
    """One view group's pipeline: ``per_view_params[v]`` is view v's op list (as :func:`build_pipeline` takes).

    >>> crop = {"type": "random_resized_crop", "size": 32}
    >>> byol_like = build_view_pipeline(
    ...     [[crop, {"type": "gaussian_blur", "p": 1.0}], [crop, {"type": "gaussian_blur", "p": 0.1}]]
    ... )

    The group has V = ``len(per_view_params)`` views; every view's list must have the same op types in
    the same order (ValueError naming the first position where one differs); parameters may differ.
    The result has ``view_count = V``: ``stacked_views(images, generator=g)`` maps (B, C, H, W) uint8 or
    float in [0, 1] to (V B, C, H', W') float, rows v B ... (v + 1) B - 1 being view v, and ``views``
    returns the V blocks; any ``n_views`` other than None or V is a ValueError.

    * All V lists equal (as validated params): the pipeline is exactly ``build_pipeline(list)``, same
      class, same draws, bit-identical views (SimCLR's two views keep their numbers).
    * Otherwise view v runs its own list. Its parameters are drawn view by view (all of view 0's ops
      first), op by op, by each view's own ops' ``sample_params``. The order matters because every
      draw comes from one generator stream: drawing in the op-by-op order is what makes the fused and
      the op-by-op implementations give the same views from the same seed (to float rounding), so the
      implementation (``fused``) never changes a run's data, and a seeded run is reproducible.
      With ``fused``, the ops' fused pipeline class takes the group when its ``fuse_views`` accepts the
      lists (see :func:`fused_view_pipeline`): one batched transform for all V B rows, possible when
      the views differ only in what is drawn per sample (probabilities, ranges). Otherwise the views
      run op by op (:class:`PerViewAugmentationPipeline`).
    """
    if len(per_view_params) < 1:
        raise ValueError("a view group needs at least one view")
    view_augmentations = [
        [build("augmentation", params, registry=registry) for params in view_params]
        for view_params in per_view_params
    ]
    check_same_op_types(view_augmentations)
    first = view_augmentations[0]
    if all(
        all(op.params == reference.params for op, reference in zip(ops, first, strict=True))
        for ops in view_augmentations[1:]
    ):
        pipeline = _assemble(first, fused)
    else:
        pipeline = fused_view_pipeline(view_augmentations) if fused else None
        if pipeline is None:
            pipeline = PerViewAugmentationPipeline(view_augmentations)
    pipeline.view_count = len(view_augmentations)
    return pipeline


def fused_pipeline(augmentations: Sequence[Augmentation]) -> AugmentationPipeline | None:
    """The fused pipeline that the ops' classes offer for exactly this list, or None.

    An augmentation class offers one through a classmethod ``fused_pipeline_class()`` returning an
    :class:`AugmentationPipeline` subclass with a classmethod ``fuse(augmentations)``, which builds the
    fused pipeline or returns None when it cannot reproduce some op (e.g. a subclass it does not know).
    Every op must offer the same class: a list that mixes in any other op keeps the reference pipeline,
    so the recipe's list, not the implementation, always defines the distribution of the views.
    """
    pipeline_class = _offered_class(augmentations)
    return None if pipeline_class is None else pipeline_class.fuse(augmentations)


def fused_view_pipeline(view_augmentations: Sequence[Sequence[Augmentation]]) -> AugmentationPipeline | None:
    """The fused pipeline the ops' classes offer for a view group with per-view op lists, or None.

    The protocol of :func:`fused_pipeline`, extended: the class may also have a classmethod
    ``fuse_views(view_augmentations)`` taking the V op lists (same op types in the same order) and
    returning a pipeline with ``view_count = V`` whose ``stacked_views`` draws view by view, op by op,
    with each view's own ops; it returns None when a per-view difference changes its transform (then
    the group runs op by op). A class without ``fuse_views`` fuses no per-view group.
    """
    pipeline_class = _offered_class([op for ops in view_augmentations for op in ops])
    fuse_views = getattr(pipeline_class, "fuse_views", None)
    return None if fuse_views is None else fuse_views(view_augmentations)


def _offered_class(augmentations: Sequence[Augmentation]) -> Any:
    """The one fused pipeline class all of ``augmentations`` offer, or None."""
    offered = {
        offer() if (offer := getattr(type(op), "fused_pipeline_class", None)) is not None else None
        for op in augmentations
    }
    if len(offered) != 1 or None in offered:
        return None
    (pipeline_class,) = offered
    return pipeline_class
