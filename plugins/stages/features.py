"""Frozen features h = f(x) of a whole split, computed in batches on the device.

The encoder runs in evaluation mode (BatchNorm uses its running statistics) without gradients, on the
eval view of each image (see :mod:`.preprocessing`), in the run's precision; features come back as
float32.
"""

from __future__ import annotations

import torch
from torch import nn

from .labelled_split import LabelledSplit
from .mixed_precision import autocast


@torch.no_grad()
def compute_features(
    encoder: nn.Module,
    split: LabelledSplit,
    preprocessing: nn.Module,
    *,
    batch_size: int,
    precision: str = "no",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features float32 (N, d), labels int64 (N,)) of ``split``, in its order, on the split's device.

    ``encoder`` must already be on that device; it is put in evaluation mode.
    """
    encoder.eval()
    features, labels = [], []
    for images, batch_labels in split.in_order(batch_size):
        with autocast(split.device, precision):
            features.append(encoder(preprocessing(images)).float())
        labels.append(batch_labels)
    return torch.cat(features), torch.cat(labels)
