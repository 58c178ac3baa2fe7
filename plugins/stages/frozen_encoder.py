"""Proof that an evaluation left the encoder untouched (the linear protocol's frozen f).

A copy of every parameter and buffer (BatchNorm running statistics included: a forward pass in
training mode would change them without any optimiser) is taken before the evaluation and compared
exactly afterwards; any difference is an error naming the changed tensors.
"""

from __future__ import annotations

from itertools import chain

import torch
from torch import nn

from contrastive_core.errors import ContrastiveError


class EncoderChangedError(ContrastiveError):
    """A frozen-encoder evaluation changed the encoder: its numbers are not those of the frozen encoder."""

    exit_code = 1


def _tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: tensor.detach() for name, tensor in chain(module.named_parameters(), module.named_buffers())
    }


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Exactly equal, a NaN equal to a NaN in the same place: ``torch.equal`` counts NaN as differing
    from itself, which would blame the evaluation for weights that were NaN before it began."""
    if torch.equal(a, b):
        return True
    if a.shape != b.shape or a.dtype != b.dtype or not a.is_floating_point():
        return False
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


class FrozenEncoderCheck:
    """Snapshot of ``encoder`` (a CPU copy, so no device memory is spent) to verify it later.

    Creating it also freezes the encoder: ``requires_grad`` off and evaluation mode.
    """

    def __init__(self, encoder: nn.Module) -> None:
        encoder.requires_grad_(False)
        encoder.eval()
        self.snapshot = {name: tensor.to("cpu", copy=True) for name, tensor in _tensors(encoder).items()}

    def verify(self, encoder: nn.Module, what: str) -> None:
        """Raise :class:`EncoderChangedError` unless every tensor equals its snapshot exactly."""
        current = _tensors(encoder)
        changed = sorted(set(current) ^ set(self.snapshot))
        changed += [
            name
            for name, tensor in current.items()
            if name in self.snapshot and not _same(tensor.cpu(), self.snapshot[name])
        ]
        if changed:
            shown = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            raise EncoderChangedError(
                f"{what}: the encoder must stay frozen but these tensors changed: {shown}. This is a bug in the "
                "evaluation (or in the encoder, e.g. a buffer updated in eval mode); its numbers would not be "
                "those of the frozen encoder."
            )
