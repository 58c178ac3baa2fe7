"""Activation checkpointing of an encoder's blocks, safe with BatchNorm.

Checkpointing keeps only each block's input and recomputes the block's activations during the
backward pass: more compute (about one extra forward), much less memory, so larger batches fit. The
recomputation runs in training mode, which would update BatchNorm running statistics a second time;
here the recompute runs with BatchNorm momentum 0, leaving the statistics exactly as one forward
would (``torch.utils.checkpoint``'s ``context_fn``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.checkpoint import checkpoint


@contextlib.contextmanager
def _frozen_batchnorm_statistics(module: nn.Module) -> Iterator[None]:
    layers = [m for m in module.modules() if isinstance(m, _BatchNorm)]
    saved = [
        (m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
        for m in layers
    ]
    for layer in layers:
        layer.momentum = 0.0
    try:
        yield
    finally:
        for layer, (momentum, tracked) in zip(layers, saved, strict=True):
            layer.momentum = momentum
            if tracked is not None:
                layer.num_batches_tracked.copy_(tracked)


def _checkpointed_forward(
    block: nn.Module, forward: Callable[..., torch.Tensor]
) -> Callable[..., torch.Tensor]:
    def run(*inputs: torch.Tensor) -> torch.Tensor:
        if not (block.training and torch.is_grad_enabled()):
            return forward(*inputs)
        return checkpoint(
            forward,
            *inputs,
            use_reentrant=False,
            context_fn=lambda: (contextlib.nullcontext(), _frozen_batchnorm_statistics(block)),
        )

    return run


def checkpoint_blocks(encoder: nn.Module) -> int:
    """Checkpoint the blocks of ``encoder``; returns how many were wrapped.

    A block is an ``nn.Sequential`` holding parameters, found by walking down from the encoder: a
    Sequential of Sequentials (a stack of conv blocks) is opened and each inner block wrapped; any other
    Sequential (a ResNet stage, ``layer1`` ... ``layer4``) is wrapped whole; other modules (a wrapper
    such as ``backbone``) are searched through. Only the blocks' ``forward`` is replaced, on the
    instances: parameter names and state-dict keys stay the same, so checkpoints and exported encoders
    are unaffected.
    """
    count = 0
    for child in encoder.children():
        if isinstance(child, nn.Sequential) and not all(
            isinstance(c, nn.Sequential) for c in child.children()
        ):
            if any(True for _ in child.parameters()):
                child.forward = _checkpointed_forward(child, child.forward)  # type: ignore[method-assign]
                count += 1
        else:
            count += checkpoint_blocks(child)
    return count
