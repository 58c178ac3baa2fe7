"""The ``linear_eval`` stage: the seed's linear evaluation protocol on a frozen encoder.

    min_W  (1/N) sum_i CE(W^T f(x_i) + b, y_i) + lambda ||W||_2^2,   f frozen

Features ``f(x)`` of the training and test splits are computed once (eval view, encoder in eval mode,
no gradients); the classifier is then trained on them with mini-batch SGD with momentum and a cosine
learning-rate decay to 0, the L2 penalty ``lambda = weight_decay`` on the weight matrix W written
explicitly into the loss (the bias is not penalised). The encoder is verified unchanged afterwards
(every parameter and buffer compared with a copy taken before): the numbers are those of the frozen f.

Two protocols (``protocol``; every result records which one produced it, as ``protocol``):

* ``"precomputed"`` (default): the fixed eval view, so features are computed once and the classifier
  trains in seconds, on standardised features by default; accuracies can be slightly lower than the
  paper's.
* ``"augmented"``: the paper's protocol (Chen et al., 2020, Appendix B.5; google-research/simclr's
  linear-evaluation command: ``--train_mode=finetune --fine_tune_after_block=4
  --zero_init_logits_layer=True --optimizer=momentum``). Every step draws a random resized crop
  (scale 0.08-1) and horizontal flip of each training image, runs the frozen encoder on it (eval mode,
  no gradients) and trains the zero-initialised linear layer on the raw features with SGD + Nesterov
  momentum and a cosine decay; resumable from per-epoch checkpoints like ``finetune``. It costs an
  encoder forward pass per image per epoch. The paper's ImageNet settings: 90 epochs, batch 4096,
  lr 0.1 x batch / 256 (``lr_scaling = "linear"``), momentum 0.9, the reference's decay 1e-6 as
  tf.nn.l2_loss (penalty 1e-6/2 ||W||^2, i.e. ``weight_decay = 5e-7`` here).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from safetensors.torch import save
from torch import nn

from contrastive_core import Encoder
from contrastive_core.engine import cosine_schedule
from contrastive_core.run_directory import CHECKPOINTS_DIR, write_atomic

from .classifier_training import ClassifierTrainingParams, classifier_test_accuracy, train_classifier
from .evaluation_stage import (
    MAIN,
    EvaluationParams,
    EvaluationSetup,
    EvaluationStage,
    RandomInitBaselineParams,
)
from .frozen_encoder import FrozenEncoderCheck
from .metrics import TopKAccuracy

FeatureNorm = Literal["standardize", "l2", "none"]
LinearProtocol = Literal["precomputed", "augmented"]


class LinearEvalParams(EvaluationParams, RandomInitBaselineParams):
    type: Literal["linear_eval"]
    epochs: int = Field(100, ge=1)
    """Passes of the classifier over the training features."""
    batch_size: int = Field(256, ge=1)
    """Features per SGD step (clipped to the size of the training split)."""
    lr: float = Field(0.1, gt=0)
    """Initial learning rate of SGD; decays to 0 along a cosine over all steps."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """SGD momentum (Nesterov momentum with protocol "augmented", as the paper)."""
    weight_decay: float = Field(1e-6, ge=0)
    """lambda of the L2 penalty lambda * ||W||^2 on the classifier's weight matrix (not its bias)."""
    protocol: LinearProtocol = "precomputed"
    """"precomputed": features of the fixed eval view computed once, the classifier trained on them
    (fast). "augmented": the paper's protocol (Chen et al. 2020, App. B.5): random crop + flip of every
    training image at every step through the frozen encoder, raw features, a zero-initialised
    classifier, Nesterov momentum; an encoder pass per image per epoch."""
    lr_scaling: Literal["none", "linear"] = "none"
    """"linear": the learning rate is lr x batch_size / 256 (the paper's linear evaluation: 0.1 x
    4096 / 256 = 1.6); "none": lr as given."""
    feature_norm: FeatureNorm | None = None
    """Feature normalisation before the classifier: "standardize" (subtract the training features' mean,
    divide by their std, per dimension), "l2" (unit length) or "none". None: "standardize" with
    protocol "precomputed", "none" (raw features, as the paper) with "augmented", which accepts only
    "none"."""

    @model_validator(mode="after")
    def _raw_features_when_augmented(self) -> LinearEvalParams:
        if self.protocol == "augmented" and self.feature_norm not in (None, "none"):
            raise ValueError(
                f'feature_norm = "{self.feature_norm}" needs the training features\' statistics, which '
                'protocol = "augmented" does not compute (its features change every step); remove '
                'feature_norm, or use protocol = "precomputed"'
            )
        return self

    @property
    def resolved_feature_norm(self) -> FeatureNorm:
        if self.feature_norm is not None:
            return self.feature_norm
        return "standardize" if self.protocol == "precomputed" else "none"

    @property
    def scaled_lr(self) -> float:
        return self.lr * self.batch_size / 256 if self.lr_scaling == "linear" else self.lr

    train_split: str = "train"
    """Split the classifier is trained on."""
    test_split: str = "test"
    """Split the reported accuracies are measured on."""


class FeatureNormalization:
    """Per-dimension standardisation with training statistics, L2 normalisation, or the identity."""

    def __init__(self, mode: FeatureNorm, train_features: torch.Tensor | None) -> None:
        self.mode = mode
        self.mean = train_features.mean(dim=0) if mode == "standardize" else None
        # A constant feature (std 0) is only centred; dividing by 0 would make it NaN.
        self.std = train_features.std(dim=0).clamp(min=1e-6) if mode == "standardize" else None

    def __call__(self, feature_batch: torch.Tensor) -> torch.Tensor:
        """(N, d) -> (N, d)."""
        if self.mode == "standardize":
            return (feature_batch - self.mean) / self.std
        if self.mode == "l2":
            return F.normalize(feature_batch, dim=1)
        return feature_batch

    def tensors(self) -> dict[str, torch.Tensor]:
        return {} if self.mean is None else {"feature_mean": self.mean, "feature_std": self.std}


def train_linear_classifier(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    num_classes: int,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
    weight_decay: float,
    seed: int,
) -> nn.Linear:
    """Fit ``W, b`` on features (N, d) and labels (N,) with the seed's regularised cross-entropy.

    Deterministic for a seed: the initialisation and the per-epoch shuffles draw from it only.
    """
    count, dim = train_features.shape
    device = train_features.device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = nn.Linear(dim, num_classes).to(device)
    shuffles = torch.Generator().manual_seed(seed)
    batch_size = min(batch_size, count)
    steps_per_epoch = math.ceil(count / batch_size)
    total_steps = epochs * steps_per_epoch
    optimizer = torch.optim.SGD(classifier.parameters(), lr=lr, momentum=momentum)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(cosine_schedule, 1.0, 0.0, total_steps=total_steps)
    )
    for _ in range(epochs):
        order = torch.randperm(count, generator=shuffles).to(device)
        for indices in order.split(batch_size):
            logits = classifier(train_features[indices])
            loss = (
                F.cross_entropy(logits, train_labels[indices]) + weight_decay * classifier.weight.pow(2).sum()
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return classifier


class LinearEval(EvaluationStage):
    """Linear classifier on frozen features (the seed's linear evaluation protocol); top-1/top-5."""

    name = "linear_eval"
    Params = LinearEvalParams
    params: LinearEvalParams
    lsi_role = "linear"

    def evaluate(self, encoder: Encoder, setup: EvaluationSetup, variant: str) -> dict[str, Any]:
        params = self.params
        if params.protocol == "augmented":
            metrics = self._evaluate_augmented(encoder, setup, variant)
        else:
            metrics = self._evaluate_precomputed(encoder, setup, variant)
        return {**metrics, "protocol": params.protocol} if variant == MAIN else metrics

    def _evaluate_precomputed(self, encoder: Encoder, setup: EvaluationSetup, variant: str) -> dict[str, Any]:
        params = self.params
        data = setup.frozen_features(encoder, params.train_split, params.test_split, "linear_eval")
        normalization = FeatureNormalization(params.resolved_feature_norm, data.train_features)
        classifier = train_linear_classifier(
            normalization(data.train_features),
            data.train_labels,
            data.num_classes,
            epochs=params.epochs,
            batch_size=params.batch_size,
            lr=params.scaled_lr,
            momentum=params.momentum,
            weight_decay=params.weight_decay,
            seed=setup.seed,
        )
        accuracy = TopKAccuracy()
        with torch.no_grad():
            accuracy.update(classifier(normalization(data.test_features)), data.test_labels)
        self._save_classifier(classifier, normalization, setup, variant)
        return accuracy.compute()

    def _evaluate_augmented(self, encoder: Encoder, setup: EvaluationSetup, variant: str) -> dict[str, Any]:
        """The paper's protocol: the frozen encoder on a fresh crop + flip of every image at every step."""
        params = self.params
        context = setup.context
        encoder.to(setup.device)
        frozen = FrozenEncoderCheck(encoder)
        training = ClassifierTrainingParams(
            epochs=params.epochs,
            batch_size=params.batch_size,
            lr=params.scaled_lr,
            momentum=params.momentum,
            # SGD's decay adds wd W to the gradient: that of lambda ||W||^2 is 2 lambda W.
            weight_decay=2 * params.weight_decay,
            augment=True,
            train_split=params.train_split,
            test_split=params.test_split,
        )
        model = train_classifier(
            encoder,
            setup,
            training,
            checkpoint_dir=context.stage_dir
            / CHECKPOINTS_DIR
            / ("encoder" if variant == MAIN else "random_init"),
            label=f"{context.key}{'' if variant == MAIN else ' (random init)'}",
            frozen_encoder=True,
        )
        metrics = classifier_test_accuracy(model, setup, training)
        frozen.verify(encoder, f"{setup.where} linear_eval")
        self._save_classifier(model.classifier, FeatureNormalization("none", None), setup, variant)
        return metrics

    def _save_classifier(
        self, classifier: nn.Linear, normalization: FeatureNormalization, setup: EvaluationSetup, variant: str
    ) -> None:
        """``classifier.safetensors``: weight (C, d), bias (C,) and, for "standardize", the feature
        mean and std (d,); logits = weight @ normalised(h) + bias."""
        name, path = setup.artifact(variant, "classifier.safetensors")
        tensors = {"weight": classifier.weight, "bias": classifier.bias, **normalization.tensors()}
        state = {key: value.detach().to("cpu").contiguous() for key, value in tensors.items()}
        if setup.is_main:
            metadata = {"feature_norm": normalization.mode}
            write_atomic(path, lambda file: file.write(save(state, metadata=metadata)))
        setup.context.artifacts.setdefault(setup.context.key, {})[name] = path
