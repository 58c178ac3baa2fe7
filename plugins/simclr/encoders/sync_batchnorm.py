"""Cross-device batch normalisation for encoders built inside a multi-process run.

SimCLR (Chen et al., 2020, Sec. 2.2, "Global BN") aggregates the batch-norm mean and variance over all
devices: with per-device statistics the two views of an image, seen by the same device, can share
normalisation statistics that leak which samples are positives, and the model "cheats" on the
contrastive task instead of learning good representations.
"""

from __future__ import annotations

import torch.distributed as dist
from torch import nn

#: Backends whose tensors live on the CPU. PyTorch's SyncBatchNorm raises on CPU inputs in training
#: mode, so converting for these backends would break the run instead of synchronising anything.
_CPU_BACKENDS = frozenset({"gloo", "mpi"})


def should_sync_batchnorm() -> bool:
    """True when torch.distributed is initialised with more than one process on an accelerator backend."""
    if not (dist.is_available() and dist.is_initialized()):
        return False
    if dist.get_world_size() <= 1:
        return False
    return str(dist.get_backend()).lower() not in _CPU_BACKENDS


def sync_batchnorm_if_distributed(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm layer converted to SyncBatchNorm when :func:`should_sync_batchnorm`.

    Returns ``module`` itself, unchanged, otherwise. The conversion keeps parameters, running statistics
    and parameter names, so state dicts are the same either way. Converting again (an engine that
    converts the whole model after the encoder did) is harmless: it carries the same tensors over.
    """
    if not should_sync_batchnorm():
        return module
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)
