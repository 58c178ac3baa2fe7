"""Shuffling BN for MoCo's key encoder (He et al. 2020, arXiv:1911.05722, Sec. 3.3).

With batch normalisation computed per process, a query and its positive key are normalised with the
statistics of the same sub-batch of B images; the model can then lower the loss by recognising the
sub-batch from those statistics (an intra-batch "leak") instead of learning good features. MoCo breaks
the link by running the key encoder on a random regrouping of the global batch: the W B images are
shuffled, process r encodes rows ``[r B, (r + 1) B)`` of the shuffled batch, and the keys are put back
in the original order before the loss. The query encoder sees its own sub-batch unchanged.

:func:`shuffled_keys` does this with a permutation that every process draws from the same host
generator (no broadcast needed), gathering the images and the keys with :mod:`contrastive_core.distributed`
collectives under ``torch.no_grad()``. On one process it runs the network directly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from contrastive_core.distributed import gather_with_grad, rank, world_size

__all__ = ["shuffled_keys"]


def shuffled_keys(
    network: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys of this process's ``images`` computed on a shuffled regrouping of the global batch.

    Args:
        network: the key network, ``(B, ...) -> (B, d)``, run without gradient (a momentum target).
        images: ``(B, C, H, W)`` (any ``(B, ...)``) this process's images; every process passes the same
            shape.
        generator: a CPU generator in the same state on every process (seeded from the step): it draws
            the permutation, which must be identical everywhere.

    Returns:
        ``(local, everyone)``: ``(B, d)`` the keys of this process's images, in their order, and
        ``(W B, d)`` the keys of the global batch in rank order (process r's at rows ``[r B, (r + 1) B)``),
        the same on every process, ready for :meth:`GlobalQueue.enqueue_gathered`. With one process both
        are ``network(images)`` (no shuffle, no collective).
    """
    with torch.no_grad():
        if world_size() == 1:
            keys = network(images)
            return keys, keys
        batch = images.shape[0]
        mine = slice(rank() * batch, (rank() + 1) * batch)
        everyone = gather_with_grad(images)  # (W B, ...), rank order
        # Drawn on the host from the shared generator: identical on every process without a broadcast.
        permutation = torch.randperm(everyone.shape[0], generator=generator)
        if everyone.device.type == "cuda":
            permutation = permutation.pin_memory()  # so that the copy below does not wait for the device
        permutation = permutation.to(everyone.device, non_blocking=True)
        subset = everyone[permutation[mine]]  # (B, ...): a random B of the W B images
        if (
            images.ndim == 4
            and not images.is_contiguous()
            and images.is_contiguous(memory_format=torch.channels_last)
        ):
            subset = subset.contiguous(memory_format=torch.channels_last)  # the gather made it NCHW
        shuffled = gather_with_grad(network(subset))  # (W B, d): row j is the key of image permutation[j]
        # Undo the shuffle: the key of image permutation[j] goes back to row permutation[j].
        keys = torch.empty_like(shuffled).index_copy_(0, permutation, shuffled)
        return keys[mine], keys
