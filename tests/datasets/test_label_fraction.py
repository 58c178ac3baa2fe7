"""balanced_subset: equal counts per class, determinism per seed, nesting, and refused inputs."""

from __future__ import annotations

import pytest
import torch

from contrastive_plugins.datasets.label_fraction import balanced_subset


def unbalanced_labels() -> torch.Tensor:
    """1000 labels over 4 classes with 400, 300, 200 and 100 examples, shuffled."""
    labels = torch.cat([torch.full((count,), label) for label, count in enumerate((400, 300, 200, 100))])
    return labels[torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(0))]


@pytest.mark.parametrize(("fraction", "per_class"), [(0.01, 2), (0.1, 25), (0.4, 100), (0.0001, 1)])
def test_every_class_gets_the_same_number_of_distinct_indices(fraction, per_class):
    labels = unbalanced_labels()
    indices = balanced_subset(labels, fraction, seed=3)
    assert indices.dtype == torch.int64
    assert indices.unique().numel() == indices.numel() == 4 * per_class  # no index twice
    assert torch.equal(indices, indices.sort().values)
    assert 0 <= int(indices.min()) and int(indices.max()) < labels.numel()
    assert torch.bincount(labels[indices], minlength=4).tolist() == [per_class] * 4


def test_same_seed_same_subset_other_seed_other_subset():
    labels = unbalanced_labels()
    first = balanced_subset(labels, 0.1, seed=7)
    assert torch.equal(first, balanced_subset(labels, 0.1, seed=7))
    assert not torch.equal(first, balanced_subset(labels, 0.1, seed=8))


def test_smaller_fractions_are_subsets_of_larger_ones():
    labels = unbalanced_labels()
    small = set(balanced_subset(labels, 0.01, seed=5).tolist())
    large = set(balanced_subset(labels, 0.1, seed=5).tolist())
    assert small < large


def test_fraction_one_keeps_every_index_even_when_unbalanced():
    labels = unbalanced_labels()
    assert torch.equal(balanced_subset(labels, 1.0, seed=0), torch.arange(1000))


@pytest.mark.parametrize(
    ("labels", "fraction", "message"),
    [
        (torch.tensor([0, 1, 1]), 0.0, r"fraction must lie in \(0, 1\]"),
        (torch.tensor([0, 1, 1]), 1.5, r"fraction must lie in \(0, 1\]"),
        (torch.tensor([[0, 1]]), 0.5, "one-dimensional"),
        (torch.tensor([], dtype=torch.int64), 0.5, "empty"),
        (torch.tensor([0, -1, 1]), 0.5, "unlabelled"),
        (torch.tensor([0] * 9 + [1]), 0.8, "class 1 has 1 examples, fewer than the 4 per class"),
    ],
)
def test_bad_inputs_are_refused(labels, fraction, message):
    with pytest.raises(ValueError, match=message):
        balanced_subset(labels, fraction, seed=0)
