"""DecodeAhead: batches decoded in a background thread come out in order, errors surface at their batch,
and a consumer that stops early stops the thread."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from contrastive_core.engine import DecodeAhead
from contrastive_core.errors import ContrastiveError

CPU = torch.device("cpu")


def decode(batch, device):
    values = torch.tensor(batch, device=device)
    return values * 2, values


def test_batches_come_out_decoded_and_in_order():
    batches = iter([[index, index + 1] for index in range(0, 40, 2)])
    out = list(DecodeAhead(batches, decode, CPU))
    assert [labels.tolist() for _, labels in out] == [[index, index + 1] for index in range(0, 40, 2)]
    assert all(torch.equal(images, labels * 2) for images, labels in out)


def test_an_error_in_the_thread_is_raised_at_its_batch():
    def failing(batch, device):
        if batch == [3]:
            raise ContrastiveError("bad image 3")
        return decode(batch, device)

    seen = []
    with pytest.raises(ContrastiveError, match="bad image 3"):
        for _, labels in DecodeAhead(iter([[1], [2], [3], [4]]), failing, CPU):
            seen.append(labels.item())
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_stops_the_thread():
    produced = []

    def endless():
        index = 0
        while True:
            produced.append(index)
            yield [index]
            index += 1

    ahead = DecodeAhead(endless(), decode, CPU, depth=2)
    for _, labels in ahead:
        if labels.item() == 1:
            break
    ahead_thread = ahead._thread
    for _ in range(100):
        if not ahead_thread.is_alive():
            break
        time.sleep(0.05)
    assert not ahead_thread.is_alive()
    assert len(produced) <= 6  # two consumed, at most `depth` queued and one in hand
    assert not any(
        thread.name == "contrastive-decode" and thread.is_alive() for thread in threading.enumerate()
    )
