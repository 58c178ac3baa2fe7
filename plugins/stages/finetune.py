"""The ``finetune`` stage: the seed's fine-tuning protocol (encoder and linear classifier trained
together with labels; see :mod:`.classifier_training`), reporting top-1/top-5 on the test split."""

from __future__ import annotations

from typing import Any, Literal

import torch

from contrastive_core import Encoder
from contrastive_core.run_directory import CHECKPOINTS_DIR

from .classifier_training import ClassifierTrainingParams, train_and_test
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
        return train_and_test(
            encoder,
            setup,
            self.params,
            checkpoint_dir=setup.context.stage_dir
            / CHECKPOINTS_DIR
            / ("encoder" if variant == MAIN else "random_init"),
            label=f"{setup.context.key}{'' if variant == MAIN else ' (random init)'}",
            train_indices=self.training_indices(setup),
        )
