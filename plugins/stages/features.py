"""Frozen features h = f(x) of a whole split, computed in batches on the device.

The encoder runs in evaluation mode (BatchNorm uses its running statistics) without gradients, on the
eval view of each image (see :mod:`.preprocessing`), in the run's precision; features come back as
float32.
"""

from __future__ import annotations

import torch
from torch import nn

from contrastive_core.errors import ContrastiveError

from .evaluation_progress import EvaluationProgress
from .labelled_split import LabelledSplit
from .mixed_precision import autocast


class NonFiniteFeaturesError(ContrastiveError):
    """The features of a split hold NaN or infinite values: no evaluation means anything on them."""

    exit_code = 1


def require_finite(features: torch.Tensor, split: str, precision: str, where: str) -> None:
    """Raise :class:`NonFiniteFeaturesError` unless every feature (N, d) is finite, saying what to do."""
    bad = ~features.isfinite().all(dim=1)
    if not bool(bad.any()):
        return
    count, first = int(bad.sum()), int(bad.nonzero()[0])
    if precision in ("bf16", "fp16"):
        advice = (
            f"The run's precision is {precision}, whose range the encoder's activations may exceed "
            '(fp16 stops at 65504): evaluate with run.precision = "no"; if that does not help, the encoder '
            "itself is broken: train it again"
        )
    else:
        advice = (
            "The encoder's weights are finite, so its activations overflow or it divides by zero: train it "
            "again with a lower learning rate or grad_clip_norm, or check a plugin encoder's forward"
        )
    raise NonFiniteFeaturesError(
        f"{where}: the encoder gives NaN or infinite features for {count} of the {features.shape[0]} "
        f"images of split {split!r} (the first: image {first}), so nothing can be evaluated. {advice}."
    )


@torch.no_grad()
def compute_features(
    encoder: nn.Module,
    split: LabelledSplit,
    preprocessing: nn.Module,
    *,
    batch_size: int,
    precision: str = "no",
    progress: EvaluationProgress | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features float32 (N, d), labels int64 (N,)) of ``split``, in its order, on the split's device.

    ``encoder`` must already be on that device; it is put in evaluation mode. ``progress`` is told of
    every batch (progress lines with an ETA on long passes).
    """
    encoder.eval()
    features, labels = [], []
    for images, batch_labels in split.in_order(batch_size):
        with autocast(split.device, precision):
            features.append(encoder(preprocessing(images)).float())
        labels.append(batch_labels)
        if progress is not None:
            progress.advance(images.shape[0])
    if progress is not None:
        progress.finish()
    return torch.cat(features), torch.cat(labels)
