"""Gradient caching: the loss and gradients of a whole batch with the activation memory of a micro-batch.

Gao, Zhang, Han, Callan 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited
Setup" (arXiv:2101.06983), Sec. 3. A contrastive loss couples every row of the batch, so gradient
accumulation over small batches is a different objective (fewer negatives). When the loss depends on
the networks only through their per-image outputs z = h(x), its gradient factors as

    dL/dtheta = sum_i (dL/dz_i) . dz_i/dtheta,

and the step becomes (for micro-batches of m images):

1. **embed without a graph**: z for every micro-batch under ``torch.no_grad()`` (the method's
   :meth:`~contrastive_core.Method.embed`), plus the outputs of networks that take no gradient
   (:meth:`~contrastive_core.Method.embed_targets`: momentum targets, teachers), once;
2. **the loss of the whole batch** (:meth:`~contrastive_core.Method.objective`) on the concatenated z,
   made leaves of a small graph; its backward gives the cached gradient G = dL/dz (and trains the
   objective's own parameters, such as SwAV's prototypes, directly);
3. **embed again with a graph**, one micro-batch at a time, and back-propagate G's rows of that
   micro-batch: ``backward(z_mb, G_mb)`` accumulates exactly its term of the sum above.

The views are made once and sliced, so both passes see the same pixels, and each micro-batch's random
number generator state is restored before its second pass, so dropout and stochastic depth draw the same
masks. BatchNorm's statistics are the one thing that couple rows inside the networks; see
:mod:`.micro_batch_norm` for the two behaviours (``micro_batch_norm``). With several processes the
method runs unwrapped (its micro-batches must not each trigger DDP's all-reduce) and the gradients are
averaged over processes once, after the last micro-batch, which is what DDP would have done.

Cost: one more forward pass of the trained networks (with ``whole_batch``: that pass on the whole batch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torchvision.ops import StochasticDepth

from ..components.method import Method, MethodOutput, StepProgress, merge_embeddings
from ..distributed import all_reduce_with_grad, world_size
from ..errors import ContrastiveError
from .method_output_check import check_method_loss
from .micro_batch_norm import (
    MicroBatchNorm,
    WholeBatchStatistics,
    batch_norm_layers,
    running_statistics_frozen,
)


class GradientCache:
    """Runs ``method``'s split forward over micro-batches of ``micro_batch_size`` images per process.

    ``view_counts``: the number of views of every group (the views tensors hold ``count * B`` rows);
    ``accelerator``: supplies ``autocast()`` and ``backward(loss)`` (the fp16 gradient scaler's scaling).
    Calling it with the step's views fills the trained parameters' ``.grad`` (averaged over processes) and
    returns the method's output; the optimizer step is the caller's.
    """

    def __init__(
        self,
        method: Method,
        micro_batch_size: int,
        view_counts: Mapping[str, int],
        accelerator: Any,
        batch_norm: MicroBatchNorm = "per_micro_batch",
    ) -> None:
        if not type(method).splits_forward():
            raise ContrastiveError(unsupported_method_message(type(method).name))
        self.method = method
        self.micro_batch_size = micro_batch_size
        self.view_counts = dict(view_counts)
        self.accelerator = accelerator
        self.batch_norm = batch_norm
        self._layers = batch_norm_layers(method)
        self._whole_batch: WholeBatchStatistics | None = None
        if batch_norm == "whole_batch":
            random_layers = random_layer_names(method)
            if random_layers:
                raise ContrastiveError(
                    'micro_batch_norm = "whole_batch" runs the first pass on the whole batch, so the random '
                    f"masks of {', '.join(random_layers[:3])}{' ...' if len(random_layers) > 3 else ''} "
                    'could not be replayed per micro-batch; use micro_batch_norm = "per_micro_batch" or '
                    "set their drop rates to 0"
                )
            self._whole_batch = WholeBatchStatistics(self._layers)
            self._whole_batch.install()
        self._trained = [p for p in method.trainable().parameters() if p.requires_grad]

    def __call__(self, views: Mapping[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        batch = self._images(views)
        slices = [
            slice(start, min(start + self.micro_batch_size, batch))
            for start in range(0, batch, self.micro_batch_size)
        ]

        # 1. embeddings without a graph: micro-batch by micro-batch, or the whole batch at once
        random_states: list[Any] = []
        with torch.no_grad(), self.accelerator.autocast():
            if self._whole_batch is not None:
                with self._whole_batch.recording():
                    embeddings = dict(self.method.embed(views, progress))
                targets = dict(self.method.embed_targets(views, progress))
                self._check_layout(embeddings, batch)
            else:
                pieces, target_pieces = [], []
                for rows in slices:
                    part = micro_batch_views(views, self.view_counts, batch, rows)
                    random_states.append(_random_state())
                    pieces.append(dict(self.method.embed(part, progress)))
                    target_pieces.append(dict(self.method.embed_targets(part, progress)))
                embeddings = {name: self._join([p[name] for p in pieces], name, slices) for name in pieces[0]}
                targets = {
                    name: self._join([p[name] for p in target_pieces], name, slices)
                    for name in target_pieces[0]
                }
        after_first_pass = _random_state()

        # 2. the whole batch's loss on leaves; its backward caches dL/dz
        leaves = {
            name: value.detach().requires_grad_(value.is_floating_point())
            for name, value in embeddings.items()
        }
        with self.accelerator.autocast():
            output = self.method.objective(merge_embeddings(leaves, targets, type(self.method)), progress)
        check_method_loss(output, self.method)
        self.accelerator.backward(output.loss)
        cached = {name: leaf.grad for name, leaf in leaves.items() if leaf.grad is not None}
        del leaves

        # 3. embed again with a graph, one micro-batch at a time, and push its rows of dL/dz through it
        try:
            for index, rows in enumerate(slices):
                part = micro_batch_views(views, self.view_counts, batch, rows)
                if random_states:
                    _set_random_state(random_states[index])
                with self.accelerator.autocast(), self._second_pass_norm():
                    outputs = self.method.embed(part, progress)
                    pairs = [
                        (outputs[name], rows_of(gradient, batch, rows))
                        for name, gradient in cached.items()
                        if outputs[name].requires_grad
                    ]
                if pairs:
                    torch.autograd.backward([z for z, _ in pairs], [g.to(z.dtype) for z, g in pairs])
                del outputs, pairs
        finally:
            _set_random_state(after_first_pass)
            if self._whole_batch is not None:
                self._whole_batch.clear()
        if world_size() > 1:
            average_gradients_over_processes(self._trained)
        return output

    def _second_pass_norm(self):
        if self._whole_batch is not None:
            return self._whole_batch.replaying()
        return running_statistics_frozen(self._layers)

    def _images(self, views: Mapping[str, torch.Tensor]) -> int:
        name, tensor = next(iter(views.items()))
        return tensor.shape[0] // self.view_counts[name]

    def _join(self, pieces: list[torch.Tensor], name: str, slices: list[slice]) -> torch.Tensor:
        """Micro-batch outputs ``(k * m_j, ...)`` -> the whole batch's ``(k * B, ...)``, view-major."""
        for piece, rows in zip(pieces, slices, strict=True):
            self._check_rows(piece, name, rows.stop - rows.start)
        views_per_image = pieces[0].shape[0] // (slices[0].stop - slices[0].start)
        split = [
            p.reshape(views_per_image, rows.stop - rows.start, *p.shape[1:])
            for p, rows in zip(pieces, slices, strict=True)
        ]
        joined = torch.cat(split, dim=1)
        return joined.reshape(-1, *joined.shape[2:])

    def _check_layout(self, embeddings: Mapping[str, torch.Tensor], batch: int) -> None:
        for name, value in embeddings.items():
            self._check_rows(value, name, batch)

    def _check_rows(self, value: Any, name: str, images: int) -> None:
        method = type(self.method).name
        if not isinstance(value, torch.Tensor) or value.ndim == 0 or value.shape[0] % images:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ContrastiveError(
                f"method {method!r}: embed returned {name!r} as {shape} for {images} images; gradient "
                "caching needs (k * images, ...) tensors, view-major (row v * images + i: view v of image i)"
            )


def micro_batch_views(
    views: Mapping[str, torch.Tensor], view_counts: Mapping[str, int], batch: int, rows: slice
) -> dict[str, torch.Tensor]:
    """The views of images ``rows`` of the batch: each group's ``(count * B, ...)`` -> ``(count * m, ...)``."""
    return {name: rows_of(tensor, batch, rows, view_counts[name]) for name, tensor in views.items()}


def rows_of(
    tensor: torch.Tensor, batch: int, rows: slice, views_per_image: int | None = None
) -> torch.Tensor:
    """Rows of images ``rows`` in a view-major ``(k * batch, ...)`` tensor, as ``(k * m, ...)``."""
    if views_per_image is None:
        views_per_image = tensor.shape[0] // batch
    grouped = tensor.reshape(views_per_image, batch, *tensor.shape[1:])[:, rows]
    picked = grouped.reshape(-1, *tensor.shape[1:])
    if (
        tensor.dim() == 4
        and not tensor.is_contiguous()
        and tensor.is_contiguous(memory_format=torch.channels_last)
    ):
        picked = picked.contiguous(memory_format=torch.channels_last)  # a channels-last model's views stay so
    return picked


def average_gradients_over_processes(parameters: list[nn.Parameter]) -> None:
    """Replace every gradient by its mean over processes, one all-reduce per dtype (as DDP's buckets do)."""
    by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
    for parameter in parameters:
        if parameter.grad is not None:
            by_dtype.setdefault(parameter.grad.dtype, []).append(parameter.grad)
    with torch.no_grad():
        for gradients in by_dtype.values():
            flat = torch.cat([g.reshape(-1) for g in gradients])
            flat = all_reduce_with_grad(flat, "sum") / world_size()
            offset = 0
            for gradient in gradients:
                gradient.copy_(flat[offset : offset + gradient.numel()].view_as(gradient))
                offset += gradient.numel()


def random_layer_names(module: nn.Module) -> list[str]:
    """Names of the layers that draw random numbers in training: dropout and stochastic depth with p > 0."""
    return [
        name
        for name, layer in module.named_modules()
        if isinstance(layer, nn.modules.dropout._DropoutNd | StochasticDepth) and layer.p > 0
    ]


def unsupported_method_message(method: str) -> str:
    return (
        f"method {method!r} overrides forward instead of splitting it into embed (the networks' outputs "
        "per image) and objective (the loss of the whole batch), so gradient caching cannot run it; "
        "remove micro_batch_size, or implement embed/objective (see contrastive_core.Method)"
    )


def _random_state() -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The CPU generator's state and every CUDA device's (host copies: reading them needs no sync)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    return torch.get_rng_state(), cuda


def _set_random_state(state: tuple[torch.Tensor, list[torch.Tensor]]) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
