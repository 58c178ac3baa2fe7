"""Tiny float64 pieces for exact checks of multi-crop methods (SwAV, DINO).

The encoder pools to a fixed grid, so it takes global and smaller local views alike; nothing normalises
over the batch, so one process holding a whole batch and W processes holding a share each compute the
same outputs row by row.
"""

from __future__ import annotations

import torch
from torch import nn

DTYPE = torch.float64
CHANNELS = 2
GLOBAL_SIZE, LOCAL_SIZE = 6, 4
FEATURES = 6


def pooled_encoder() -> nn.Module:
    """(N, CHANNELS, H, W) of any size >= 2 -> (N, FEATURES); float32 until the caller converts it."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(CHANNELS * 4, FEATURES), nn.Tanh())


def multi_crop_views(batch: int, local_views: int, seed: int = 7) -> dict[str, torch.Tensor]:
    """Random float64 views of ``batch`` images: global (2 batch, C, 6, 6) and, if asked, local
    (local_views batch, C, 4, 4), rows v batch ... (v + 1) batch - 1 view v."""
    generator = torch.Generator().manual_seed(seed)
    size = (CHANNELS, GLOBAL_SIZE, GLOBAL_SIZE)
    views = {"global": torch.randn(2 * batch, *size, generator=generator, dtype=DTYPE)}
    if local_views:
        size = (CHANNELS, LOCAL_SIZE, LOCAL_SIZE)
        views["local"] = torch.randn(local_views * batch, *size, generator=generator, dtype=DTYPE)
    return views


def rows_of_process(
    views: dict[str, torch.Tensor], batch: int, process: int, world: int
) -> dict[str, torch.Tensor]:
    """Process ``process``'s share of every view: rows ``[p n, (p + 1) n)`` of each view, n = batch / world."""
    share = batch // world
    local = {}
    for name, tensor in views.items():
        per_view = tensor.view(-1, batch, *tensor.shape[1:])
        local[name] = per_view[:, process * share : (process + 1) * share].reshape(-1, *tensor.shape[1:])
    return local


def assert_processes_equal_one(results: list[dict], single: dict, world: int) -> None:
    """What W processes measured at each step against one process holding the whole batch: the mean of
    the processes' losses (each its rows' mean) is the global loss, and every process applied the
    single process's (DDP-averaged) gradients. ``results[r]`` and ``single`` hold per-step lists
    ``losses`` (0-d tensors) and ``grads`` (name -> gradient)."""
    assert [r["rank_world"] for r in results] == [(rank, world) for rank in range(world)]
    for step, expected_loss in enumerate(single["losses"]):
        mean_loss = sum(r["losses"][step] for r in results) / world
        torch.testing.assert_close(mean_loss, expected_loss, rtol=1e-10, atol=1e-12, msg=f"step {step}")
        for name, grad in single["grads"][step].items():
            for r in results:
                torch.testing.assert_close(
                    r["grads"][step][name], grad, rtol=1e-8, atol=1e-12, msg=f"{name} at step {step}"
                )
