"""The ``semi_supervised`` stage: fine-tuning on a class-balanced fraction of the training labels.

Chen et al. (2020, Sec. 6, "Semi-supervised learning") fine-tune on 1% and 10% of the ImageNet labels,
drawn class-balanced; this stage is :class:`~.finetune.Finetune` restricted to such a subset
(:func:`contrastive_plugins.datasets.label_fraction.balanced_subset`). The subset depends only on the
labels, the fraction and ``subset_seed`` (not on [run] seed), so runs with different seeds fine-tune on
the same examples, and the 1% subset of a seed lies inside its 10% subset. ``label_list`` instead
names the labelled examples in a file (:mod:`.label_list`), such as the paper's published lists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, model_validator

from contrastive_core import Encoder
from contrastive_core.errors import ContrastiveError
from contrastive_plugins.datasets.label_fraction import balanced_subset

from .evaluation_stage import MAIN, EvaluationSetup
from .finetune import Finetune, FinetuneParams
from .label_list import LabelListError, label_list_indices


class SemiSupervisedParams(FinetuneParams):
    type: Literal["semi_supervised"]  # type: ignore[assignment]
    label_fraction: float = Field(0.1, gt=0, le=1)
    """Fraction of the training split whose labels are used (0.01 and 0.1 in the paper), the same
    number of examples from every class."""
    subset_seed: int = Field(0, ge=0)
    """Seed of the labelled subset (fixed by default, so every run uses the same examples)."""
    label_list: str | None = None
    """A text file naming the labelled training examples instead of drawing label_fraction of them: one
    per line, a file name for image folders (google-research/simclr's imagenet_subsets/1percent.txt
    and 10percent.txt, e.g. n01440764_10026.JPEG, are such files), an example index for in-memory
    datasets. Relative paths are relative to the working directory."""

    @model_validator(mode="after")
    def _one_way_to_choose_the_labels(self) -> SemiSupervisedParams:
        if self.label_list is None:
            return self
        for other in ("label_fraction", "subset_seed", "train_examples"):
            if other in self.model_fields_set:
                raise ValueError(
                    f"set label_list or {other}, not both: the list names the labelled examples of the whole "
                    "training split"
                )
        return self


class SemiSupervised(Finetune):
    """Fine-tune on a class-balanced fraction of the labels (1% / 10% in the paper); top-1/top-5."""

    name = "semi_supervised"
    Params = SemiSupervisedParams
    params: SemiSupervisedParams

    def training_indices(self, setup: EvaluationSetup) -> torch.Tensor:
        split = setup.train_split(self.params.train_split)
        if self.params.label_list is not None:
            files = getattr(split.items, "files", None)
            folder = getattr(setup.dataset, "folder", None)
            root = folder(self.params.train_split) if files is not None and folder is not None else None
            try:
                return label_list_indices(Path(self.params.label_list).expanduser(), files, root, len(split))
            except LabelListError as error:
                raise LabelListError(f"{setup.where}: {error}") from None
        labels = split.labels
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
