"""The ``alignment`` stage: the seed's Representation Alignment between the encoder and a target.

    RA = (1/N) sum_i cos(f(x_i), f_target(x_i))

over the images x_i of a split (eval view, both encoders frozen). RA = 1 when both encoders map every
image to the same direction (e.g. an encoder with itself). It compares feature spaces coordinate by
coordinate, so it is meaningful for encoders that share an origin (two checkpoints of one run, an
encoder before and after fine-tuning, pretraining runs from the same initialisation); two independently
trained encoders can represent the same information in rotated coordinates and score near 0.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from contrastive_core import Encoder
from contrastive_core.errors import ContrastiveError

from . import features
from .encoder_source import resolve_encoder
from .evaluation_stage import EvaluationParams, EvaluationSetup, EvaluationStage, RandomInitBaselineParams
from .frozen_encoder import FrozenEncoderCheck


class AlignmentParams(EvaluationParams, RandomInitBaselineParams):
    type: Literal["alignment"]
    target: str
    """The target encoder f_target: the key of a preceding stage that exported one, or the path of an
    exported encoder directory. It must have the same feature size as the evaluated encoder."""
    split: str = "test"
    """Split whose images both encoders embed."""


def representation_alignment(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Mean cosine similarity of matching rows: (N, d), (N, d) -> RA in [-1, 1]."""
    if features_a.shape != features_b.shape:
        raise ValueError(f"feature shapes differ: {tuple(features_a.shape)} and {tuple(features_b.shape)}")
    return float(F.cosine_similarity(features_a, features_b, dim=1).mean())


class Alignment(EvaluationStage):
    """Representation alignment RA = mean cos(f(x), f_target(x)) with a target encoder (the seed's RA)."""

    name = "alignment"
    Params = AlignmentParams
    params: AlignmentParams
    _target_features: torch.Tensor | None = None

    def evaluate(self, encoder: Encoder, setup: EvaluationSetup, variant: str) -> dict[str, Any]:
        split = setup.split(self.params.split)
        target = self._target(setup)
        if target.shape[1] != encoder.feature_dim:
            raise ContrastiveError(
                f"{setup.where}: the encoder has {encoder.feature_dim} features but the target has "
                f"{target.shape[1]}; alignment compares features of the same size"
            )
        encoder.to(setup.device)
        frozen = FrozenEncoderCheck(encoder)
        own, _ = features.compute_features(
            encoder, split, setup.preprocessing, batch_size=setup.eval_batch_size, precision=setup.precision
        )
        frozen.verify(encoder, f"{setup.where} alignment")
        features.require_finite(own, self.params.split, setup.precision, f"{setup.where} alignment")
        return {"alignment": representation_alignment(own, target)}

    def _target(self, setup: EvaluationSetup) -> torch.Tensor:
        """The target encoder's features of the split (N, d_target), computed once per stage run."""
        if self._target_features is None:
            source = resolve_encoder(self.params.target, setup.context, param="target", random_fallback=False)
            setup.say(f"{setup.context.key}: target encoder {source.description}")
            target = source.encoder.to(setup.device)
            frozen = FrozenEncoderCheck(target)
            self._target_features, _ = features.compute_features(
                target,
                setup.split(self.params.split),
                setup.preprocessing,
                batch_size=setup.eval_batch_size,
                precision=setup.precision,
            )
            frozen.verify(target, f"{setup.where} alignment target")
            features.require_finite(
                self._target_features,
                self.params.split,
                setup.precision,
                f"{setup.where} alignment target ({source.description})",
            )
        return self._target_features
