"""Global batch normalisation across processes (SimCLR, Chen et al. 2020, Sec. 2.2 "Global BN").

With data parallelism each process sees only its local batch; BatchNorm over the local batch lets the
model "cheat" the contrastive task through information leaked by per-device statistics, so SimCLR
aggregates BN mean and variance over all devices. On CUDA this is ``torch.nn.SyncBatchNorm``; that
class refuses CPU tensors, so for CPU process groups (gloo) :class:`GlobalBatchNorm` does the same with a
differentiable all-reduce of the per-channel sums
(:func:`~contrastive_core.distributed.collectives.all_reduce_with_grad`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import ContrastiveError
from .collectives import all_reduce_with_grad, world_size


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics are computed over the batch of every process.

    Input ``(B, C, *)``; normalises each channel with the mean and biased variance of all processes'
    batches together, and updates the running statistics with the unbiased global variance, exactly as
    one process holding the whole batch would.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        channels = input.shape[1]
        dims = [0, *range(2, input.dim())]
        count = torch.tensor([input.numel() // channels], dtype=input.dtype, device=input.device)
        # One collective for count, sum and sum of squares; its backward all-reduces (sums) the gradients,
        # so every process's input receives the gradient flowing through the global statistics.
        local = torch.cat([count, input.sum(dims), (input * input).sum(dims)])
        total = all_reduce_with_grad(local, "sum")
        global_count = total[0]
        mean = total[1 : 1 + channels] / global_count
        variance = total[1 + channels :] / global_count - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (
                    self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                )
                unbiased = variance * global_count / (global_count - 1).clamp(min=1)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(unbiased.detach(), momentum)
        shape = [1, channels] + [1] * (input.dim() - 2)
        output = (input - mean.view(shape)) * torch.rsqrt(variance.view(shape) + self.eps)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        return output


class BatchNormNotConvertibleError(ContrastiveError):
    """A BatchNorm layer whose own forward does more than normalise, which a conversion would drop."""


def convert_to_global_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm layer of ``module`` by its cross-process version for ``device``.

    CUDA uses ``torch.nn.SyncBatchNorm`` (NCCL-optimised kernels); other devices use
    :class:`GlobalBatchNorm`. Parameters and running statistics are carried over. A BatchNorm subclass
    with a forward of its own (timm's ``BatchNormAct2d`` also applies an activation) is refused with
    :class:`BatchNormNotConvertibleError`: both conversions would replace it by a plain BatchNorm and
    silently drop what else its forward does.
    """
    _refuse_extended_batchnorm(module)
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _to_global_batchnorm(module, device)


def _to_global_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    converted = module
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm | nn.SyncBatchNorm):
        converted = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        if module.affine:
            # The same Parameter objects, so flags such as a frozen bias (requires_grad=False) carry over.
            converted.weight = module.weight
            converted.bias = module.bias
        if module.track_running_stats:
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        converted.to(device)
    for name, child in module.named_children():
        converted.add_module(name, _to_global_batchnorm(child, device))
    return converted


def _refuse_extended_batchnorm(module: nn.Module) -> None:
    extended = [
        (name, layer)
        for name, layer in module.named_modules()
        if isinstance(layer, _BatchNorm)
        and not isinstance(layer, GlobalBatchNorm | nn.SyncBatchNorm)
        and type(layer).forward is not _BatchNorm.forward
    ]
    if extended:
        name, layer = extended[0]
        kind = f"{type(layer).__module__}.{type(layer).__qualname__}"
        raise BatchNormNotConvertibleError(
            f"global BatchNorm: {len(extended)} BatchNorm layers ({name or 'the model'}, a {kind}, and the "
            "like) have a forward of their own that does more than normalise (an activation after it), "
            "which converting them to global BatchNorm would drop. Train with one process, or set the "
            "pretrain stage's global_batchnorm = false (each process then normalises over its own batch)"
        )
