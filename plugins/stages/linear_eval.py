"""The ``linear_eval`` stage: the seed's linear evaluation protocol on a frozen encoder.

    min_W  (1/N) sum_i CE(W^T f(x_i) + b, y_i) + lambda ||W||_2^2,   f frozen

Features ``f(x)`` of the training and test splits are computed once (eval view, encoder in eval mode,
no gradients); the classifier is then trained on them with mini-batch SGD with momentum and a cosine
learning-rate decay to 0, the L2 penalty ``lambda = weight_decay`` on the weight matrix W written
explicitly into the loss (the bias is not penalised). The encoder is verified unchanged afterwards
(every parameter and buffer compared with a copy taken before): the numbers are those of the frozen f.

Unlike Chen et al. (2020, Appendix B.5), who train the linear layer on randomly cropped and flipped
images, this uses the fixed eval view, so features are computed once and the classifier trains in
seconds; reported accuracies can be slightly lower than with augmentation.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from safetensors.torch import save
from torch import nn

from contrastive_core import Encoder
from contrastive_core.engine import cosine_schedule
from contrastive_core.run_directory import write_atomic

from .evaluation_stage import EvaluationParams, EvaluationSetup, EvaluationStage, RandomInitBaselineParams
from .metrics import TopKAccuracy

FeatureNorm = Literal["standardize", "l2", "none"]


class LinearEvalParams(EvaluationParams, RandomInitBaselineParams):
    type: Literal["linear_eval"]
    epochs: int = Field(100, ge=1)
    """Passes of the classifier over the training features."""
    batch_size: int = Field(256, ge=1)
    """Features per SGD step (clipped to the size of the training split)."""
    lr: float = Field(0.1, gt=0)
    """Initial learning rate of SGD; decays to 0 along a cosine over all steps."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """SGD momentum."""
    weight_decay: float = Field(1e-6, ge=0)
    """lambda of the L2 penalty lambda * ||W||^2 on the classifier's weight matrix (not its bias)."""
    feature_norm: FeatureNorm = "standardize"
    """Feature normalisation before the classifier: "standardize" (subtract the training features' mean,
    divide by their std, per dimension), "l2" (unit length) or "none"."""
    train_split: str = "train"
    """Split the classifier is trained on."""
    test_split: str = "test"
    """Split the reported accuracies are measured on."""


class FeatureNormalization:
    """Per-dimension standardisation with training statistics, L2 normalisation, or the identity."""

    def __init__(self, mode: FeatureNorm, train_features: torch.Tensor) -> None:
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
        data = setup.frozen_features(encoder, params.train_split, params.test_split, "linear_eval")
        normalization = FeatureNormalization(params.feature_norm, data.train_features)
        classifier = train_linear_classifier(
            normalization(data.train_features),
            data.train_labels,
            data.num_classes,
            epochs=params.epochs,
            batch_size=params.batch_size,
            lr=params.lr,
            momentum=params.momentum,
            weight_decay=params.weight_decay,
            seed=setup.seed,
        )
        accuracy = TopKAccuracy()
        with torch.no_grad():
            accuracy.update(classifier(normalization(data.test_features)), data.test_labels)
        self._save_classifier(classifier, normalization, setup, variant)
        return accuracy.compute()

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
