"""Class-balanced label fractions for semi-supervised evaluation.

SimCLR (Chen et al., 2020, Sec. 6 "Semi-supervised learning") fine-tunes on 1% and 10% of the ImageNet
training labels, sampled in a class-balanced way (about 13 and 128 images per class). This picks such a
subset for any labelled split.
"""

from __future__ import annotations

import torch


def balanced_subset(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Indices of a class-balanced ``fraction`` of ``labels``: the same number of examples per class.

    Args:
        labels: int (N,) class indices, all >= 0.
        fraction: in (0, 1]. Each class present in ``labels`` contributes
            ``k = max(1, round(fraction * N / C))`` examples, C being the number of classes present;
            1.0 returns every index, balanced or not.
        seed: the subset is a deterministic function of ``(labels, fraction, seed)``.

    Returns:
        int64 (C * k,) sorted, distinct indices into ``labels``.

    For one seed, the subset of a smaller fraction is contained in that of a larger one (each class
    draws one permutation and takes its first k), so 1% and 10% experiments are nested as in the paper.
    Raises ValueError if a class has fewer than k examples or a label is negative (unlabelled).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {tuple(labels.shape)}")
    if labels.numel() == 0:
        raise ValueError("labels is empty")
    if int(labels.min()) < 0:
        raise ValueError("labels contain negative values (unlabelled examples); pass a labelled split")
    labels = labels.cpu()
    if fraction == 1:
        return torch.arange(labels.numel(), dtype=torch.int64)
    classes = torch.unique(labels)  # sorted, so the draws below happen in a fixed class order
    per_class = max(1, round(fraction * labels.numel() / classes.numel()))
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for class_index in classes.tolist():
        members = torch.nonzero(labels == class_index).flatten()
        if members.numel() < per_class:
            raise ValueError(
                f"class {class_index} has {members.numel()} examples, fewer than the {per_class} per class that "
                f"fraction {fraction} of {labels.numel()} labels over {classes.numel()} classes needs"
            )
        # Always draw the full permutation (not just k) so the generator advances the same way for any
        # fraction: that is what makes smaller fractions subsets of larger ones.
        order = torch.randperm(members.numel(), generator=generator)
        chosen.append(members[order[:per_class]])
    return torch.sort(torch.cat(chosen)).values.to(torch.int64)
