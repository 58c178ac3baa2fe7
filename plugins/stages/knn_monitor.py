"""The online kNN monitor: a quick probe of the encoder during pretraining, logged to metrics.jsonl.

Every few epochs the pretrain stage asks it for the weighted kNN accuracy (k = 200, T = 0.1; Wu et al.
2018) of the current encoder: class-balanced subsets of a labelled training split form the memory bank,
a subset of the test split the queries. It shows whether representations improve while training runs,
at the cost of a few seconds; the full protocols are the evaluation stages after pretraining.
"""

from __future__ import annotations

import torch
from torch import nn

from contrastive_core import Dataset, Registry
from contrastive_core.recipes import Recipe
from contrastive_plugins.datasets.label_fraction import balanced_subset

from .features import compute_features
from .knn_eval import knn_accuracy
from .labelled_split import LabelledSplit
from .preprocessing import EvalPreprocessing, recipe_normalization


class KnnMonitor:
    """Computes ``{"knn_top1", "knn_top5"}`` of an encoder on fixed, seeded subsets of two splits."""

    def __init__(
        self,
        dataset: Dataset,
        recipe: Recipe,
        registry: Registry,
        device: torch.device,
        *,
        splits: tuple[str, str],
        train_examples: int,
        test_examples: int,
        batch_size: int,
    ) -> None:
        seed = recipe.run.seed
        where = "pretrain knn monitor"
        self.train = _subset(LabelledSplit(dataset, splits[0], device, where=where), train_examples, seed)
        self.test = _subset(LabelledSplit(dataset, splits[1], device, where=where), test_examples, seed)
        self.preprocessing = EvalPreprocessing(recipe_normalization(recipe, registry)).to(device)
        self.batch_size = batch_size
        self.precision = recipe.run.precision

    def __call__(self, encoder: nn.Module) -> dict[str, float]:
        """kNN accuracy of ``encoder`` (evaluated in eval mode, its training mode restored after)."""
        was_training = encoder.training
        options = {"batch_size": self.batch_size, "precision": self.precision}
        try:
            train_features, train_labels = compute_features(
                encoder, self.train, self.preprocessing, **options
            )
            test_features, test_labels = compute_features(encoder, self.test, self.preprocessing, **options)
        finally:
            encoder.train(was_training)
        accuracy = knn_accuracy(
            train_features,
            train_labels,
            test_features,
            test_labels,
            num_classes=self.train.num_classes,
            k=200,
            temperature=0.1,
            query_batch_size=256,
        )
        return {"knn_top1": accuracy["top1"], "knn_top5": accuracy["top5"]}


def _subset(split: LabelledSplit, examples: int, seed: int) -> LabelledSplit:
    if examples >= len(split):
        return split
    return split.restricted(balanced_subset(split.labels, examples / len(split), seed))
