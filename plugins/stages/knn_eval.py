"""The ``knn_eval`` stage: weighted k-nearest-neighbour classification on frozen features.

The protocol of Wu et al. (2018, "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination", Sec. 3.4): the L2-normalised training features form a memory bank; each test feature
q votes with its k most cosine-similar bank entries, neighbour i adding ``exp(s_i / T)`` to its class,
and the classes are ranked by their summed votes (``k = 200``, ``T = 0.1`` by default). No training is
involved, which makes it a quick, hyperparameter-light probe of the representation.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from contrastive_core import Encoder

from .evaluation_progress import EvaluationProgress
from .evaluation_stage import EvaluationParams, EvaluationSetup, EvaluationStage, RandomInitBaselineParams
from .metrics import TopKAccuracy


class KnnEvalParams(EvaluationParams, RandomInitBaselineParams):
    type: Literal["knn_eval"]
    k: int = Field(200, ge=1)
    """Neighbours that vote (clipped to the size of the training split)."""
    temperature: float = Field(0.1, gt=0)
    """T of the vote weight exp(similarity / T): lower values let the closest neighbours dominate."""
    train_split: str = "train"
    """Split whose features form the memory bank (the neighbours)."""
    test_split: str = "test"
    """Split whose images are classified (the queries)."""
    query_batch_size: int = Field(256, ge=1)
    """Queries compared with the bank at once; memory grows with query_batch_size x training images."""


def weighted_knn_votes(
    queries: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    num_classes: int,
    k: int,
    temperature: float,
) -> torch.Tensor:
    """Class votes (B, C) of queries (B, d) from the k nearest of bank (N, d) with labels (N,).

    Both feature sets must be L2-normalised, so ``queries @ bank.T`` are cosine similarities. Each
    query's votes are ``exp((s_i - s_max) / T)`` summed per class: the plain ``exp(s_i / T)`` scaled by
    ``exp(-s_max / T)``, the same for every class of that query, so the ranking of its classes is the
    plain vote's, and the weights stay in (0, 1] instead of overflowing float32 once T < 1/88.
    """
    similarities = queries @ bank.T  # (B, N)
    top_similarities, top_indices = similarities.topk(min(k, bank.shape[0]), dim=1)  # (B, k), sorted
    weights = ((top_similarities - top_similarities[:, :1]) / temperature).exp()
    votes = torch.zeros(queries.shape[0], num_classes, device=queries.device, dtype=weights.dtype)
    return votes.scatter_add_(1, bank_labels[top_indices], weights)


def knn_accuracy(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    *,
    num_classes: int,
    k: int,
    temperature: float,
    query_batch_size: int,
    progress: EvaluationProgress | None = None,
) -> dict[str, float]:
    """Top-1/top-5 accuracy of the weighted kNN vote, over the test queries in batches (each batch told
    to ``progress``)."""
    bank = F.normalize(train_features, dim=1)
    queries = F.normalize(test_features, dim=1)
    accuracy = TopKAccuracy()
    for start in range(0, queries.shape[0], query_batch_size):
        batch = slice(start, start + query_batch_size)
        votes = weighted_knn_votes(queries[batch], bank, train_labels, num_classes, k, temperature)
        accuracy.update(votes, test_labels[batch])
        if progress is not None:
            progress.advance(votes.shape[0])
    if progress is not None:
        progress.finish()
    return accuracy.compute()


class KnnEval(EvaluationStage):
    """Weighted kNN classification (k = 200, T = 0.1) of frozen features (Wu et al., 2018); top-1/top-5."""

    name = "knn_eval"
    Params = KnnEvalParams
    params: KnnEvalParams

    def evaluate(self, encoder: Encoder, setup: EvaluationSetup, variant: str) -> dict[str, Any]:
        params = self.params
        data = setup.frozen_features(encoder, params.train_split, params.test_split, "knn_eval")
        return knn_accuracy(
            data.train_features,
            data.train_labels,
            data.test_features,
            data.test_labels,
            num_classes=data.num_classes,
            k=params.k,
            temperature=params.temperature,
            query_batch_size=params.query_batch_size,
            progress=setup.progress("kNN votes", len(data.test_labels), "queries"),
        )
