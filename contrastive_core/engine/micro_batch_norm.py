"""BatchNorm under gradient caching: which statistics each micro-batch is normalised with.

A BatchNorm layer in training mode normalises with the statistics of the rows it is given, so running a
network on micro-batches changes what it computes unless something is done about it (the known trap of
gradient caching: statistics per chunk of the batch). The pretrain stage's ``micro_batch_norm`` picks
one of two behaviours, implemented here:

* ``"per_micro_batch"`` (default): every micro-batch is normalised with its own statistics, in both
  passes, exactly as a run at batch size ``micro_batch_size`` would; the second (graph) pass replays the
  first with the running statistics left alone (:func:`running_statistics_frozen`), so they are updated
  once per micro-batch. Memory stays flat; BN sees ``micro_batch_size`` images.
* ``"whole_batch"``: :class:`WholeBatchStatistics`. The first pass runs on the whole batch at once,
  without a graph, recording the mean and biased variance each BN call normalised with (over every
  process for global BN) and updating the running statistics once, as the full batch does. The second
  pass normalises every micro-batch with those recorded statistics, so embeddings and loss are the full
  batch's. The statistics enter the second pass as constants: the gradient flowing *through* them (the
  batch-coupling terms of BN's backward) is left out, because computing it exactly would take one
  more pass per BN layer. The first pass holds the whole batch's activations of one layer at a time
  (no graph), which is what this mode costs in memory.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..distributed import all_reduce_with_grad, world_size
from ..distributed.global_batch_norm import GlobalBatchNorm
from ..errors import ContrastiveError

MicroBatchNorm = Literal["per_micro_batch", "whole_batch"]


def batch_norm_layers(module: nn.Module) -> list[_BatchNorm]:
    """Every BatchNorm layer (plain, synchronised or global) inside ``module``."""
    return [layer for layer in module.modules() if isinstance(layer, _BatchNorm)]


@contextmanager
def running_statistics_frozen(layers: list[_BatchNorm]) -> Iterator[None]:
    """Inside: layers that track running statistics normalise with batch statistics as before but leave
    their running mean, variance and batch count untouched (``track_running_stats`` is what PyTorch's
    BatchNorm reads to decide both)."""
    tracking = [layer for layer in layers if layer.track_running_stats]
    for layer in tracking:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in tracking:
            layer.track_running_stats = True


class WholeBatchStatistics:
    """Records each BN call's whole-batch statistics in one pass and normalises later micro-batches with them.

    Installed once per training step object (:meth:`install` puts a dispatching ``forward`` on every
    layer, so a compiled network sees the same function each step); outside :meth:`recording` and
    :meth:`replaying` the layers run their own forward. A layer called several times per pass (once per
    view, as Barlow Twins does) records one entry per call, and the replay of every micro-batch uses them
    in the same order.
    """

    def __init__(self, layers: list[_BatchNorm]) -> None:
        self.layers = layers
        self.mode: Literal["off", "record", "replay"] = "off"
        self._recorded: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._calls: dict[int, int] = {}

    def install(self) -> None:
        for layer in self.layers:
            layer.forward = types.MethodType(_dispatching_forward(self, type(layer).forward), layer)

    @contextmanager
    def recording(self) -> Iterator[None]:
        """The first pass (whole batch, no graph): each training-mode call records and updates."""
        self._recorded = {id(layer): [] for layer in self.layers}
        self.mode = "record"
        try:
            yield
        finally:
            self.mode = "off"

    @contextmanager
    def replaying(self) -> Iterator[None]:
        """One micro-batch of the second pass: calls use the recorded statistics in order."""
        self._calls = {id(layer): 0 for layer in self.layers}
        self.mode = "replay"
        try:
            yield
        finally:
            self.mode = "off"

    def clear(self) -> None:
        self._recorded = {}

    def record(self, layer: _BatchNorm, input: torch.Tensor) -> torch.Tensor:
        """Normalise ``input`` (N, C, *) with its (global) batch statistics, keep them, update the running ones."""
        dims = [0, *range(2, input.dim())]
        # Half-precision activations (autocast) are summed in float32, as BatchNorm's kernels do.
        values = input.float() if input.dtype in (torch.float16, torch.bfloat16) else input
        channels = values.shape[1]
        rows = values.numel() // channels
        if isinstance(layer, GlobalBatchNorm | nn.SyncBatchNorm) and world_size() > 1:
            # One all-reduce of count, sums and sums of squares over every process's batch (the count
            # is filled on the device: no host-to-device copy).
            count = torch.full((1,), float(rows), dtype=values.dtype, device=values.device)
            sums = all_reduce_with_grad(
                torch.cat([count, values.sum(dims), (values * values).sum(dims)]), "sum"
            )
            total = sums[0]
            mean = sums[1 : 1 + channels] / total
            variance = (sums[1 + channels :] / total - mean * mean).clamp(min=0)
            bessel = total / (total - 1).clamp(min=1)
        else:
            mean = values.mean(dims)
            variance = values.var(dims, unbiased=False)
            bessel = rows / max(rows - 1, 1)
        if layer.track_running_stats:
            layer.num_batches_tracked.add_(1)
            momentum = (
                layer.momentum if layer.momentum is not None else 1.0 / float(layer.num_batches_tracked)
            )
            layer.running_mean.lerp_(mean.to(layer.running_mean.dtype), momentum)
            layer.running_var.lerp_((variance * bessel).to(layer.running_var.dtype), momentum)
        self._recorded[id(layer)].append((mean, variance))
        return _normalise(layer, input, mean, variance)

    def replay(self, layer: _BatchNorm, input: torch.Tensor) -> torch.Tensor:
        """Normalise ``input`` with the statistics this layer recorded for its next call."""
        recorded = self._recorded.get(id(layer), [])
        call = self._calls[id(layer)]
        if call >= len(recorded):
            raise ContrastiveError(
                f"a BatchNorm layer ({layer}) ran {call + 1} times on a micro-batch but {len(recorded)} "
                'times on the whole batch; micro_batch_norm = "whole_batch" needs the method\'s embed to '
                "call its layers the same way for any number of images"
            )
        self._calls[id(layer)] = call + 1
        mean, variance = recorded[call]
        return _normalise(layer, input, mean, variance)


def _normalise(
    layer: _BatchNorm, input: torch.Tensor, mean: torch.Tensor, variance: torch.Tensor
) -> torch.Tensor:
    """BN's output with the given statistics as constants: gamma (x - mean) / sqrt(var + eps) + beta."""
    return F.batch_norm(
        input,
        mean,
        variance,
        layer.weight,
        layer.bias,
        training=False,
        momentum=0.0,
        eps=layer.eps,
    )


def _dispatching_forward(statistics: WholeBatchStatistics, own_forward):
    def forward(layer: _BatchNorm, input: torch.Tensor) -> torch.Tensor:
        if not layer.training or statistics.mode == "off":
            return own_forward(layer, input)
        if statistics.mode == "record":
            return statistics.record(layer, input)
        return statistics.replay(layer, input)

    return forward
