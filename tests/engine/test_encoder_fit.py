"""build_fitting_encoder: an exported encoder's config is checked against its weights' header before it
is built, on the meta device, or for real with every allocation counted where meta cannot build it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

from contrastive_core import Encoder
from contrastive_core.engine.encoder_fit import WeightsMismatchError, build_fitting_encoder


class Layers(Encoder):
    """``depth`` Linear layers of ``width``; with ``reads_values`` its construction calls ``.tolist()``
    (as the ViT does), which the meta device cannot do; ``scratch`` elements of a temporary tensor that is
    never registered; ``devices`` records where each construction put its tensors."""

    devices: list[str] = []

    def __init__(self, width: int, depth: int, *, reads_values: bool = False, scratch: int = 0) -> None:
        super().__init__(SimpleNamespace(type="layers"))
        if reads_values:
            torch.linspace(0, 1, depth).tolist()
        if scratch:
            torch.zeros(scratch)
        self.layers = nn.ModuleList()
        for _ in range(depth):
            self.layers.append(nn.Linear(width, width))
        Layers.devices.append(self.layers[0].weight.device.type)

    @property
    def feature_dim(self) -> int:
        return self.layers[0].out_features

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            images = layer(images)
        return images


def header_of(encoder: Encoder) -> dict[str, tuple[int, ...]]:
    return {name: tuple(tensor.shape) for name, tensor in encoder.export_state_dict().items()}


HEADER = header_of(Layers(8, 2))


@pytest.fixture(autouse=True)
def _fresh_device_record():
    Layers.devices = []


def test_a_config_that_fits_is_built_on_meta_first_then_for_real():
    encoder = build_fitting_encoder(lambda: Layers(8, 2), HEADER)
    assert Layers.devices == ["meta", "cpu"]
    assert encoder.layers[0].weight.device.type == "cpu"


def test_a_config_of_other_shapes_is_refused_without_building_it_for_real():
    with pytest.raises(WeightsMismatchError, match=r"layers.0.weight is \[8, 8\] in the file but \[9, 9\]"):
        build_fitting_encoder(lambda: Layers(9, 2), HEADER)
    with pytest.raises(WeightsMismatchError, match="2 tensors the encoder does not have"):
        build_fitting_encoder(lambda: Layers(8, 1), HEADER)
    assert Layers.devices == ["meta", "meta"]


def test_a_config_far_larger_than_its_weights_is_stopped_while_it_is_built_on_meta():
    with pytest.raises(WeightsMismatchError, match="would hold over"):
        build_fitting_encoder(lambda: Layers(10**6, 2), HEADER)  # 4 TB of Linear weights
    with pytest.raises(WeightsMismatchError, match="modules"):
        build_fitting_encoder(lambda: Layers(1, 10**6), HEADER)
    assert Layers.devices == []  # stopped before either finished


def test_an_encoder_that_cannot_be_built_on_meta_is_built_for_real_and_checked():
    encoder = build_fitting_encoder(lambda: Layers(8, 2, reads_values=True), HEADER)
    assert Layers.devices == ["cpu"] and encoder.layers[1].bias.shape == (8,)
    with pytest.raises(WeightsMismatchError, match=r"in the file but \[9, 9\]"):
        build_fitting_encoder(lambda: Layers(9, 2, reads_values=True), HEADER)


def test_an_encoder_built_for_real_is_stopped_before_a_huge_allocation():
    # 2^40 float32 elements = 4 TB: refused from a meta run of the same operation, before it runs (were it
    # not, the allocation itself would fail with a RuntimeError, not this error).
    with pytest.raises(WeightsMismatchError, match=r"would allocate over .* bytes while it is built"):
        build_fitting_encoder(lambda: Layers(8, 2, reads_values=True, scratch=2**40), HEADER)
    # Temporaries within the allowance are fine.
    build_fitting_encoder(lambda: Layers(8, 2, reads_values=True, scratch=1000), HEADER)
