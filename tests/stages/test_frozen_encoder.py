"""The frozen-encoder check: any parameter or buffer change is caught, none is a false alarm."""

from __future__ import annotations

import pytest
import torch

from contrastive_core import build
from contrastive_plugins.stages.frozen_encoder import EncoderChangedError, FrozenEncoderCheck
from tests.stages.conftest import TINY_ENCODER


def tiny(registry):
    torch.manual_seed(0)
    return build("encoder", TINY_ENCODER, registry=registry)


def test_an_untouched_encoder_passes_and_is_frozen(registry):
    encoder = tiny(registry)
    check = FrozenEncoderCheck(encoder)
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    with torch.no_grad():
        encoder(torch.rand(4, 1, 12, 12))  # eval mode: BatchNorm statistics are not updated
    check.verify(encoder, "test")


def test_a_changed_parameter_is_caught(registry):
    encoder = tiny(registry)
    check = FrozenEncoderCheck(encoder)
    name, parameter = next(iter(encoder.named_parameters()))
    with torch.no_grad():
        parameter.view(-1)[0] += 1e-6
    with pytest.raises(EncoderChangedError, match=name):
        check.verify(encoder, "test")


def test_a_training_mode_forward_pass_is_caught(registry):
    encoder = tiny(registry)
    check = FrozenEncoderCheck(encoder)
    encoder.train()
    with torch.no_grad():
        encoder(torch.rand(4, 1, 12, 12))
    with pytest.raises(EncoderChangedError, match="running_mean"):
        check.verify(encoder, "test")


def test_nan_weights_are_not_taken_for_a_changed_encoder(registry):
    # torch.equal counts NaN as differing from itself: an encoder that held NaN before the evaluation
    # was once reported as changed by it ("a bug in the evaluation").
    encoder = tiny(registry)
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.fill_(float("nan"))
    check = FrozenEncoderCheck(encoder)
    check.verify(encoder, "test")
    name, parameter = next(iter(encoder.named_parameters()))
    with torch.no_grad():
        parameter.view(-1)[0] = 1.0  # a real change among the NaN is still caught
    with pytest.raises(EncoderChangedError, match=name):
        check.verify(encoder, "test")
