"""Each method's loss is its paper's formula over its own networks (float64 references, per-row loops).

The online networks are moved away from the momentum copies first, so that a key computed by the wrong
network, or of the wrong view, changes the loss. Parameter gradients are compared too.
"""

from __future__ import annotations

import pytest
import torch

from contrastive_core import StepProgress
from tests.engine.tiny_networks import moved_apart
from tests.moco.references import ctr_reference, info_nce_reference
from tests.moco.tiny_methods import IMAGE, tiny_method

DTYPE = torch.float64
CLOSE = {"rtol": 1e-10, "atol": 1e-12}
BATCH = 3


def _views() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(4)
    return tuple(torch.randn(BATCH, *IMAGE, generator=generator, dtype=DTYPE) for _ in range(2))


def _gradients(method) -> dict[str, torch.Tensor]:
    found = {name: p.grad.clone() for name, p in method.trainable().named_parameters() if p.grad is not None}
    method.zero_grad(set_to_none=True)
    return found


def _assert_same_gradients(measured: dict, expected: dict) -> None:
    assert set(measured) == set(expected) and measured
    for name, grad in expected.items():
        torch.testing.assert_close(measured[name], grad, **CLOSE, msg=name)


@pytest.mark.parametrize("symmetric", [False, True])
def test_moco_v2_loss_is_info_nce_of_the_query_against_its_key_and_the_queue(symmetric):
    method = moved_apart(tiny_method("moco_v2", queue_size=13, symmetric=symmetric))
    generator = torch.Generator().manual_seed(6)
    earlier = torch.nn.functional.normalize(torch.randn(5, 4, generator=generator, dtype=DTYPE), dim=1)
    method.queue.enqueue(earlier)
    first, second = _views()

    output = method({"global": torch.cat([first, second])}, StepProgress(0, 10, 10))
    output.loss.backward()
    measured = _gradients(method)

    def query(x):
        return method.head(method.encoder(x))

    def key(x):
        with torch.no_grad():
            return method.target.network(x)

    negatives = list(earlier)
    expected = info_nce_reference(query(first), key(second), negatives, 0.2)
    if symmetric:
        expected = (expected + info_nce_reference(query(second), key(first), negatives, 0.2)) / 2
    expected.backward()
    torch.testing.assert_close(output.loss, expected.detach(), **CLOSE)
    _assert_same_gradients(measured, _gradients(method))
    # This step's unit keys were written after the loss, view 2's first (then view 1's).
    written = [key(second), key(first)] if symmetric else [key(second)]
    expected_rows = torch.nn.functional.normalize(torch.cat(written), dim=1)
    torch.testing.assert_close(method.queue.keys[5 : 5 + len(expected_rows)], expected_rows, **CLOSE)
    assert int(method.queue.fill) == 5 + len(expected_rows)


def test_moco_v3_loss_is_the_symmetrised_ctr_of_predictions_against_momentum_keys():
    method = moved_apart(tiny_method("moco_v3", temperature=0.5))
    first, second = _views()

    output = method({"global": torch.cat([first, second])}, StepProgress(0, 10, 10))
    output.loss.backward()
    measured = _gradients(method)

    def query(x):
        return method.predictor(method.head(method.encoder(x)))

    def key(x):
        with torch.no_grad():
            return method.target.network(x)

    expected = ctr_reference(query(first), key(second), 0.5) + ctr_reference(query(second), key(first), 0.5)
    expected.backward()
    torch.testing.assert_close(output.loss, expected.detach(), **CLOSE)
    _assert_same_gradients(measured, _gradients(method))
    # The momentum network is f and g only: no predictor.
    online = [*method.encoder.parameters(), *method.head.parameters()]
    assert [p.shape for p in method.target.parameters()] == [p.shape for p in online]
