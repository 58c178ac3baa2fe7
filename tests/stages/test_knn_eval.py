"""knn_eval against a plain one-query-at-a-time weighted vote."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contrastive_core import build
from contrastive_plugins.stages.knn_eval import knn_accuracy, weighted_knn_votes
from tests.stages.conftest import fashion_data, recipe, run
from tests.stages.reference import plain_features, plain_knn_votes, plain_top_k


def test_knn_eval_matches_a_plain_weighted_vote(registry, exported, tmp_path):
    stage = {"type": "knn_eval", "encoder": str(exported), "k": 20, "temperature": 0.1, "query_batch_size": 5}
    results, _ = run(registry, recipe(stage), tmp_path / "run")

    dataset = build("dataset", fashion_data(), registry=registry)
    (train_images, train_labels), (test_images, test_labels) = (
        dataset.tensors("train"),
        dataset.tensors("test"),
    )
    train = plain_features(registry, exported, train_images)
    test = plain_features(registry, exported, test_images)
    votes = plain_knn_votes(train, train_labels.numpy(), test, 10, k=20, temperature=0.1)
    assert results["knn_eval"]["top1"] == pytest.approx(plain_top_k(votes, test_labels.numpy(), 1))
    assert results["knn_eval"]["top5"] == pytest.approx(plain_top_k(votes, test_labels.numpy(), 5))


def test_votes_match_the_plain_vote_exactly():
    generator = torch.Generator().manual_seed(1)
    bank, queries = torch.randn(30, 5, generator=generator), torch.randn(6, 5, generator=generator)
    bank_labels = torch.randint(0, 4, (30,), generator=generator)
    for k, temperature in [(1, 0.1), (7, 0.1), (7, 1.0), (30, 0.05)]:
        votes = weighted_knn_votes(
            F.normalize(queries, dim=1), F.normalize(bank, dim=1), bank_labels, 4, k, temperature
        )
        expected = plain_knn_votes(
            bank.double().numpy(), bank_labels.numpy(), queries.double().numpy(), 4, k, temperature
        )
        # Equal up to one factor per query (exp(-s_max / T)), which changes no ranking.
        ours = votes.double().numpy()
        np.testing.assert_allclose(
            ours / ours.sum(1, keepdims=True), expected / expected.sum(1, keepdims=True), rtol=1e-4
        )


def test_a_small_temperature_does_not_overflow_the_votes():
    generator = torch.Generator().manual_seed(2)
    bank, queries = torch.randn(50, 8, generator=generator), torch.randn(20, 8, generator=generator)
    bank_labels = torch.randint(0, 5, (50,), generator=generator)
    temperature = 0.005  # exp(1 / 0.005) = exp(200) is inf in float32
    votes = weighted_knn_votes(
        F.normalize(queries, dim=1), F.normalize(bank, dim=1), bank_labels, 5, 10, temperature
    )
    assert torch.isfinite(votes).all() and (votes.amax(dim=1) >= 1).all()
    # The class order is the float64 plain vote's at the same temperature (computed in logs there).
    similarities = F.normalize(queries.double(), dim=1) @ F.normalize(bank.double(), dim=1).T
    top, indices = similarities.topk(10, dim=1)
    log_votes = torch.full((20, 5), -torch.inf, dtype=torch.float64)
    for query in range(20):
        for value, index in zip(top[query], indices[query], strict=True):
            label = int(bank_labels[index])
            log_votes[query, label] = torch.logaddexp(log_votes[query, label], value / temperature)
    assert torch.equal(votes.argmax(dim=1), log_votes.argmax(dim=1))


def test_query_batching_and_large_k_do_not_change_the_result():
    generator = torch.Generator().manual_seed(0)
    train, test = torch.randn(40, 6, generator=generator), torch.randn(17, 6, generator=generator)
    train_labels, test_labels = torch.randint(0, 4, (40,), generator=generator), torch.randint(0, 4, (17,))
    options = {"num_classes": 4, "temperature": 0.1}
    whole = knn_accuracy(train, train_labels, test, test_labels, k=7, query_batch_size=100, **options)
    batched = knn_accuracy(train, train_labels, test, test_labels, k=7, query_batch_size=3, **options)
    assert whole == batched
    # k beyond the bank size uses the whole bank (k = 200 is the default, larger than tiny test sets).
    everything = knn_accuracy(train, train_labels, test, test_labels, k=200, query_batch_size=5, **options)
    assert everything == knn_accuracy(
        train, train_labels, test, test_labels, k=40, query_batch_size=5, **options
    )


def test_nearest_neighbour_of_a_training_image_is_itself(registry, exported, tmp_path):
    """k = 1 with the training split as queries: every image finds itself, so top-1 is 1.0."""
    stage = {"type": "knn_eval", "encoder": str(exported), "k": 1, "test_split": "train"}
    results, _ = run(registry, recipe(stage), tmp_path / "run")
    assert results["knn_eval"]["top1"] == 1.0


def test_train_examples_uses_a_class_balanced_subset_as_the_memory_bank(registry, exported, tmp_path):
    from contrastive_plugins.datasets.label_fraction import balanced_subset

    stage = {"type": "knn_eval", "encoder": str(exported), "k": 5, "train_examples": 20}
    results, _ = run(registry, recipe(stage), tmp_path / "run")

    dataset = build("dataset", fashion_data(), registry=registry)
    (train_images, train_labels), (test_images, test_labels) = (
        dataset.tensors("train"),
        dataset.tensors("test"),
    )
    chosen = balanced_subset(train_labels, 20 / len(train_labels), seed=0)
    assert len(chosen) < len(train_labels)
    train = plain_features(registry, exported, train_images[chosen])
    test = plain_features(registry, exported, test_images)
    votes = plain_knn_votes(train, train_labels[chosen].numpy(), test, 10, k=5, temperature=0.1)
    assert results["knn_eval"]["top1"] == pytest.approx(plain_top_k(votes, test_labels.numpy(), 1))
