"""The ``supervised`` stage: the same encoder architecture trained from scratch with all labels.

It is the reference of the seed's Linear Separability Index (LSI = linear-eval accuracy / supervised
accuracy, see :mod:`.lsi`): same architecture, same data, same test split, but weights learned from
labels instead of by self-supervision. Training is :mod:`.classifier_training`'s, from the seeded random
initialisation (the weights pretraining starts from, for the recipe's own encoder and seed).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from contrastive_core import Encoder
from contrastive_core.run_directory import CHECKPOINTS_DIR

from .classifier_training import ClassifierTrainingParams, classifier_test_accuracy, train_classifier
from .encoder_source import EncoderSource, random_init_like
from .evaluation_stage import EvaluationParams, EvaluationSetup, EvaluationStage
from .preprocessing import TrainCrop


class SupervisedParams(EvaluationParams, ClassifierTrainingParams):
    type: Literal["supervised"]
    encoder: str | None = None
    """Whose ARCHITECTURE to train (its weights are not used): a stage key or an exported encoder
    directory, as for the other evaluation stages; default: that of the nearest preceding exported
    encoder, else the recipe's model.encoder."""
    epochs: int = Field(90, ge=1)
    """Passes over the training split (training from scratch needs more than fine-tuning)."""
    lr: float = Field(0.1, gt=0)
    """Initial learning rate; decays to 0 along a cosine over all steps."""
    weight_decay: float = Field(5e-4, ge=0)
    """L2 weight decay on all parameters (usual for supervised training from scratch)."""
    train_crop: TrainCrop = "auto"
    """The training crop: "auto" (default) uses the usual supervised augmentation of small images
    (4 px padding + random crop + flip, He et al. 2016) up to 64 px a side and the Inception crop
    (area 0.08-1) above; "inception" or "padded" force one. A too-strong crop lowers this baseline and
    inflates the LSI measured against it."""


class Supervised(EvaluationStage):
    """Supervised training from scratch of the same architecture (the LSI's reference); top-1/top-5."""

    name = "supervised"
    Params = SupervisedParams
    params: SupervisedParams
    lsi_role = "supervised"

    def describe_source(self, source: EncoderSource, key: str) -> str:
        return f"{key}: architecture of the encoder {source.description} (its weights are not used)"

    def evaluate(self, encoder: Encoder, setup: EvaluationSetup, variant: str) -> dict[str, Any]:
        scratch = random_init_like(encoder.params, setup.context.registry, setup.seed)
        setup.say(
            f"{setup.context.key}: training {scratch.name} from random initialisation (seed {setup.seed})"
        )
        model = train_classifier(
            scratch,
            setup,
            self.params,
            checkpoint_dir=setup.context.stage_dir / CHECKPOINTS_DIR,
            label=setup.context.key,
        )
        return classifier_test_accuracy(model, setup, self.params)
