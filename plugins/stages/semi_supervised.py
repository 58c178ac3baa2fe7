"""The ``semi_supervised`` stage: fine-tuning on a class-balanced fraction of the training labels.

Chen et al. (2020, Sec. 6, "Semi-supervised learning") fine-tune on 1% and 10% of the ImageNet labels,
drawn class-balanced; this stage is :class:`~.finetune.Finetune` restricted to such a subset
(:func:`contrastive_plugins.datasets.label_fraction.balanced_subset`). The subset depends only on the
labels, the fraction and ``subset_seed`` (not on [run] seed), so runs with different seeds fine-tune on
the same examples, and the 1% subset of a seed lies inside its 10% subset.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field

from contrastive_core import Encoder
from contrastive_core.errors import ContrastiveError
from contrastive_plugins.datasets.label_fraction import balanced_subset

from .evaluation_stage import MAIN, EvaluationSetup
from .finetune import Finetune, FinetuneParams


class SemiSupervisedParams(FinetuneParams):
    type: Literal["semi_supervised"]  # type: ignore[assignment]
    label_fraction: float = Field(0.1, gt=0, le=1)
    """Fraction of the training split whose labels are used (0.01 and 0.1 in the paper), the same
    number of examples from every class."""
    subset_seed: int = Field(0, ge=0)
    """Seed of the labelled subset (fixed by default, so every run uses the same examples)."""


class SemiSupervised(Finetune):
    """Fine-tune on a class-balanced fraction of the labels (1% / 10% in the paper); top-1/top-5."""

    name = "semi_supervised"
    Params = SemiSupervisedParams
    params: SemiSupervisedParams

    def training_indices(self, setup: EvaluationSetup) -> torch.Tensor:
        labels = setup.train_split(self.params.train_split).labels
        try:
            return balanced_subset(labels, self.params.label_fraction, self.params.subset_seed)
        except ValueError as error:
            raise ContrastiveError(
                f"{setup.where}: cannot draw label_fraction {self.params.label_fraction}: {error}"
            ) from None

    def evaluate(self, encoder: Encoder, setup: EvaluationSetup, variant: str) -> dict[str, Any]:
        metrics = super().evaluate(encoder, setup, variant)
        labelled = len(self.training_indices(setup))
        if variant == MAIN:
            setup.say(f"{setup.context.key}: fine-tuned on {labelled} labelled examples")
        return {**metrics, "labelled_examples": labelled}
