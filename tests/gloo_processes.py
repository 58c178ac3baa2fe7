"""Run a check in real gloo processes on the CPU and bring back what each process measured.

The distributed tests compare W processes, each holding part of a global batch, with one process
holding all of it. :func:`run_on_gloo_processes` starts the W processes (forked where possible: a
fork reuses this process's imported modules, a spawn would import torch again in every child), joins
them into a gloo group through a rendezvous file, runs ``measure(process)`` in each with one thread, and
returns the dicts they measured, indexed by rank. A failure in any process fails the caller.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["run_on_gloo_processes"]


def _one_process(process: int, measure: Callable[[int], dict[str, Any]], directory: str, world: int) -> None:
    torch.set_num_threads(1)
    init = f"file://{Path(directory) / 'rendezvous'}"
    dist.init_process_group("gloo", init_method=init, rank=process, world_size=world)
    try:
        torch.save(measure(process), Path(directory) / f"rank{process}.pt")
    finally:
        dist.destroy_process_group()


def run_on_gloo_processes(
    measure: Callable[[int], dict[str, Any]], directory: Path, world: int = 2
) -> list[dict[str, Any]]:
    """``measure(process)`` in ``world`` gloo processes; their results in rank order.

    ``measure`` must be a module-level function (a spawned child imports it by name) and return
    something ``torch.save`` can write; ``directory`` is an empty folder for the rendezvous and results.
    """
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(
        _one_process,
        args=(measure, str(directory), world),
        nprocs=world,
        join=True,
        start_method=start_method,
    )
    return [torch.load(Path(directory) / f"rank{r}.pt", weights_only=False) for r in range(world)]
