"""The ``finetune`` stage: the seed's fine-tuning protocol (encoder and linear classifier trained
together with labels; see :mod:`.classifier_training`), reporting top-1/top-5 on the test split. The
fine-tuned classifier is exported to ``classifier/`` (:mod:`.classifier_export`): the teacher of a later
``distill`` stage."""

from __future__ import annotations

from typing import Any, Literal

import torch

from contrastive_core import Encoder
from contrastive_core.run_directory import CHECKPOINTS_DIR

from .classifier_export import CLASSIFIER_DIR, classifier_files, export_classifier
from .classifier_training import ClassifierTrainingParams, classifier_test_accuracy, train_classifier
from .evaluation_stage import (
    MAIN,
    EvaluationParams,
    EvaluationSetup,
    EvaluationStage,
    RandomInitBaselineParams,
)


class FinetuneParams(EvaluationParams, RandomInitBaselineParams, ClassifierTrainingParams):
    type: Literal["finetune"]


class Finetune(EvaluationStage):
    """Fine-tune the encoder with a linear classifier on the labels (the seed's protocol); top-1/top-5."""

    name = "finetune"
    Params = FinetuneParams
    params: FinetuneParams

    def training_indices(self, setup: EvaluationSetup) -> torch.Tensor | None:
        """Which training examples carry labels for this stage; None: all of them."""
        return None

    def evaluate(self, encoder: Encoder, setup: EvaluationSetup, variant: str) -> dict[str, Any]:
        context = setup.context
        model = train_classifier(
            encoder,
            setup,
            self.params,
            checkpoint_dir=context.stage_dir
            / CHECKPOINTS_DIR
            / ("encoder" if variant == MAIN else "random_init"),
            label=f"{context.key}{'' if variant == MAIN else ' (random init)'}",
            train_indices=self.training_indices(setup),
        )
        metrics = classifier_test_accuracy(model, setup, self.params)
        if variant == MAIN:
            directory = context.stage_dir / CLASSIFIER_DIR
            if setup.is_main:
                export_classifier(model, directory)
            setup.barrier()
            # Every process records the files, so a later stage finds them whatever process it runs in.
            context.artifacts.setdefault(context.key, {}).update(classifier_files(directory))
        return metrics
