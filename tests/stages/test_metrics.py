"""Top-k accuracy against a plain argsort."""

from __future__ import annotations

import pytest
import torch

from contrastive_plugins.stages.metrics import TopKAccuracy, correct_in_top_k
from tests.stages.reference import plain_top_k


@pytest.mark.parametrize("num_classes", [3, 10])
def test_top_k_accuracy_matches_a_plain_argsort_over_batches(num_classes):
    generator = torch.Generator().manual_seed(num_classes)
    scores = torch.randn(50, num_classes, generator=generator)
    labels = torch.randint(0, num_classes, (50,), generator=generator)
    accuracy = TopKAccuracy()
    for start in range(0, 50, 7):  # uneven batches
        accuracy.update(scores[start : start + 7], labels[start : start + 7])
    result = accuracy.compute()
    assert result["top1"] == pytest.approx(plain_top_k(scores.numpy(), labels.numpy(), 1))
    # With 3 classes, top-5 covers every class: 1.0 by definition.
    expected_top5 = plain_top_k(scores.numpy(), labels.numpy(), 5)
    assert result["top5"] == pytest.approx(expected_top5)
    assert (expected_top5 == 1.0) == (num_classes <= 5)


def test_correct_in_top_k_marks_each_row():
    scores = torch.tensor([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1], [0.2, 0.3, 0.5]])
    labels = torch.tensor([1, 2, 1])
    assert correct_in_top_k(scores, labels, 1).tolist() == [True, False, False]
    assert correct_in_top_k(scores, labels, 2).tolist() == [True, False, True]


def test_empty_accuracy_is_an_error():
    with pytest.raises(ValueError, match="no examples"):
        TopKAccuracy().compute()


def test_accuracies_are_fractions_named_top1_and_top5():
    accuracy = TopKAccuracy()
    accuracy.update(torch.eye(4), torch.tensor([0, 1, 2, 0]))
    assert accuracy.compute() == {"top1": 0.75, "top5": 1.0}
