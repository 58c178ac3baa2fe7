"""The global queue (MoCo keys, SwAV embeddings): first in first out with wrap-around, fill level, no gradient, checkpointed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastive_core.distributed import GlobalQueue


def identified(ids: list[int]) -> torch.Tensor:
    """Keys whose rows say which key they are: key j is (j, -j)."""
    values = torch.tensor(ids, dtype=torch.float32)
    return torch.stack([values, -values], dim=1)


def test_keys_go_in_first_in_first_out_with_wrap_around():
    queue = GlobalQueue(5, 2)
    # Batches of 2, 2, 2 and 3 keys (ids 0..8) into 5 rows: the third batch wraps (rows 4, 0), the fourth
    # overwrites the oldest rows 1, 2, 3.
    batches = [[0, 1], [2, 3], [4, 5], [6, 7, 8]]
    slots, fills = [], []
    for ids in batches:
        queue.enqueue(identified(ids))
        slots.append(int(queue.slot))
        fills.append(int(queue.fill))
    assert slots == [2, 4, 1, 4]
    assert fills == [2, 4, 5, 5]
    assert torch.equal(queue.keys, identified([5, 6, 7, 8, 4]))


def test_rows_not_yet_written_stay_zero_and_the_fill_counts_the_written_ones():
    queue = GlobalQueue(7, 2)
    queue.enqueue(identified([1, 2, 3]))
    assert int(queue.fill) == 3 and int(queue.slot) == 3
    assert torch.equal(queue.keys[:3], identified([1, 2, 3]))
    assert torch.equal(queue.keys[3:], torch.zeros(4, 2))


def test_a_batch_of_the_whole_queue_replaces_every_row_in_order():
    queue = GlobalQueue(4, 2)
    queue.enqueue(identified([10]))
    queue.enqueue(identified([20, 21, 22, 23]))  # starts at row 1 and wraps to row 0
    assert torch.equal(queue.keys, identified([23, 20, 21, 22]))
    assert (int(queue.slot), int(queue.fill)) == (1, 4)


@pytest.mark.parametrize("shape", [(6, 2), (2, 3), (2,), (0, 2)])
def test_keys_of_a_wrong_shape_are_refused(shape):
    with pytest.raises(ValueError, match="per enqueue"):
        GlobalQueue(5, 2).enqueue(torch.ones(shape))


def test_the_queue_never_takes_part_in_autograd():
    queue = GlobalQueue(6, 3)
    layer = nn.Linear(4, 3)
    keys = layer(torch.randn(2, 4))  # keys with a graph behind them
    assert keys.requires_grad
    queue.enqueue(keys)
    queue.enqueue_gathered(keys)
    assert not queue.keys.requires_grad and queue.keys.grad_fn is None
    torch.testing.assert_close(queue.keys[:4], torch.cat([keys, keys]).detach())


def test_keys_are_stored_in_the_queue_dtype():
    queue = GlobalQueue(3, 2)
    queue.enqueue(torch.ones(2, 2, dtype=torch.float64))
    assert queue.keys.dtype == torch.float32
    assert queue.double().keys.dtype == torch.float64
    assert queue.fill.dtype == torch.long and queue.slot.dtype == torch.long


def test_the_queue_is_saved_and_restored_with_its_position():
    queue = GlobalQueue(5, 2)
    for ids in ([0, 1, 2], [3, 4, 5]):
        queue.enqueue(identified(ids))
    state = queue.state_dict()
    assert set(state) == {"keys", "slot", "fill"}
    restored = GlobalQueue(5, 2)
    restored.load_state_dict(state)
    for q in (queue, restored):
        q.enqueue(identified([6, 7]))
    for name in ("keys", "slot", "fill"):
        assert torch.equal(getattr(restored, name), getattr(queue, name))
    assert torch.equal(restored.keys, identified([5, 6, 7, 3, 4]))
