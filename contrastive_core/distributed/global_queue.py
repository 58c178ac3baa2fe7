"""A first-in first-out queue of vectors from the global batch, the same on every process.

MoCo's dictionary (He et al. 2020, "Momentum Contrast for Unsupervised Visual Representation Learning",
arXiv:1911.05722, Sec. 3.2 and Algorithm 1) decouples the number of negatives from the batch size: the
keys of the last K images, encoded by the momentum encoder, are kept in a queue, and after each step the
current batch's keys are written over the oldest ones, so every key is at most K / (global batch) steps
old. SwAV's queue (Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
Assignments", arXiv:2006.09882, Sec. 4 and Appendix A.1) keeps the embeddings of earlier batches the
same way, so that small batches still spread over all prototypes in the Sinkhorn step.

:class:`GlobalQueue` holds the queue as buffers (so it is saved, restored and moved with the method):

* ``keys``: ``(K, d)``, the stored vectors (unit-norm keys or embeddings);
* ``slot``: 0-d long, the row the next vector is written to (the oldest once the queue is full);
* ``fill``: 0-d long, how many rows hold a vector, ``min(vectors written so far, K)``.

Writing starts at row 0 and goes forward, so until the queue has wrapped around the filled rows are
exactly ``[0, fill)``: a loss masks the others using ``fill`` instead of using zeros, or the random
unit vectors MoCo's reference code starts its queue with, as negatives (cf. lightly-ai/lightly#1019).

With several processes every process writes the *global* batch, gathered in rank order, so the queue is
the same everywhere (as MoCo's reference implementation's gathered enqueue keeps it; SwAV's reference
code keeps a different local queue per process instead). All index arithmetic stays on the device: an
enqueue never reads a value back to the host.
"""

from __future__ import annotations

import torch
from torch import nn

from .collectives import gather_with_grad

__all__ = ["GlobalQueue"]


class GlobalQueue(nn.Module):
    """A FIFO queue of ``size`` keys of dimension ``dim`` (MoCo's dictionary, SwAV's queue), kept in buffers.

    Args:
        size: K, the number of keys kept (MoCo: 65536).
        dim: d, the size of a key (the projection head's ``out_dim``).
        dtype: the floating dtype of the stored keys (float32; ``module.double()`` converts it).

    The queue never takes part in autograd: every write is done under ``torch.no_grad()`` from detached
    keys, and ``keys`` never requires grad.
    """

    keys: torch.Tensor
    slot: torch.Tensor
    fill: torch.Tensor

    def __init__(self, size: int, dim: int, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"a key queue needs size >= 1 and dim >= 1, got size {size}, dim {dim}")
        # Zeros, never read as negatives: the losses mask the rows at and after `fill`.
        self.register_buffer("keys", torch.zeros(size, dim, dtype=dtype))
        self.register_buffer("slot", torch.zeros((), dtype=torch.long))
        self.register_buffer("fill", torch.zeros((), dtype=torch.long))

    @property
    def size(self) -> int:
        """K, the number of rows (a host int: the buffer's shape)."""
        return self.keys.shape[0]

    def enqueue(self, keys: torch.Tensor) -> None:
        """Write this process's ``keys`` ``(n, d)`` with every other process's, in rank order.

        The keys are gathered over processes (no gradient) into the global batch ``(W n, d)``, which
        :meth:`enqueue_gathered` writes; every process must call this with the same ``n``. With one
        process this is ``enqueue_gathered(keys)``.
        """
        with torch.no_grad():
            self.enqueue_gathered(gather_with_grad(keys.detach()))

    @torch.no_grad()
    def enqueue_gathered(self, keys: torch.Tensor) -> None:
        """Write ``keys`` ``(n, d)``, already the same on every process, over the ``n`` oldest rows.

        Row ``j`` of ``keys`` goes to row ``(slot + j) mod K``: first in, first out, wrapping around the
        end of the buffer, for any ``n <= K`` (``n`` need not divide K). ``slot`` then advances by ``n``
        (mod K) and ``fill`` by ``n``, capped at K. Device operations only, no host synchronisation.

        Raises:
            ValueError: if ``keys`` is not ``(n, d)`` with ``1 <= n <= K`` (more than K keys would write
                some rows twice in one call, in an unspecified order).
        """
        size, dim = self.keys.shape
        if keys.ndim != 2 or keys.shape[1] != dim or not 1 <= keys.shape[0] <= size:
            raise ValueError(
                f"a queue of {size} keys of dimension {dim} takes (n, {dim}) keys with 1 <= n <= {size} "
                f"per enqueue, got {tuple(keys.shape)}; make queue_size at least the global batch of keys "
                "written per step"
            )
        count = keys.shape[0]
        rows = torch.arange(count, device=self.keys.device).add_(self.slot).remainder_(size)
        self.keys.index_copy_(0, rows, keys.detach().to(self.keys.dtype))
        self.slot.add_(count).remainder_(size)
        self.fill.add_(count).clamp_(max=size)

    def extra_repr(self) -> str:
        return f"size={self.keys.shape[0]}, dim={self.keys.shape[1]}"
