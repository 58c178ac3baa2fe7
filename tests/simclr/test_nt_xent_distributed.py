"""NT-Xent over 2 real processes (gloo, CPU) equals NT-Xent over one process holding the whole batch.

Global batch order: process r holds rows [r * n, (r + 1) * n) of each view; the single-process reference
sees view a as rows of rank 0 then rank 1, and view b likewise, so row i of a and row i of b stay a pair.
Everything runs in float64 so that "equal" can mean equal to ~1e-12.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from contrastive_core.distributed import rank, world_size
from contrastive_plugins.simclr.nt_xent import NTXent, NTXentParams

WORLD = 2
LOCAL_BATCH = 3
IN_DIM, OUT_DIM = 5, 4
TEMPERATURE = 0.2


def global_problem() -> tuple[torch.Tensor, torch.Tensor, nn.Linear]:
    """The same inputs (2 views, WORLD * LOCAL_BATCH rows each) and layer in every process."""
    generator = torch.Generator().manual_seed(1234)
    x_a = torch.randn(WORLD * LOCAL_BATCH, IN_DIM, generator=generator, dtype=torch.float64)
    x_b = torch.randn(WORLD * LOCAL_BATCH, IN_DIM, generator=generator, dtype=torch.float64)
    layer = nn.Linear(IN_DIM, OUT_DIM, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(OUT_DIM, IN_DIM, generator=generator, dtype=torch.float64))
        layer.bias.copy_(torch.randn(OUT_DIM, generator=generator, dtype=torch.float64))
    return x_a, x_b, layer


def run_one_process(process: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=process, world_size=WORLD)
    try:
        x_a, x_b, layer = global_problem()
        model = DistributedDataParallel(layer)
        rows = slice(process * LOCAL_BATCH, (process + 1) * LOCAL_BATCH)
        local_a = x_a[rows].clone().requires_grad_()
        local_b = x_b[rows].clone().requires_grad_()
        # One forward over both views, as DDP expects one forward per backward.
        z_a, z_b = model(torch.cat([local_a, local_b])).chunk(2)
        loss = NTXent(NTXentParams(temperature=TEMPERATURE))(z_a, z_b)
        loss.backward()  # DDP averages the parameter gradients over the processes here.
        local_only = NTXent(NTXentParams(temperature=TEMPERATURE, gather_across_processes=False))(
            z_a.detach(), z_b.detach()
        )
        torch.save(
            {
                "rank_world": (rank(), world_size()),
                "loss": loss.detach(),
                "local_only_loss": local_only,
                "grad_a": local_a.grad,
                "grad_b": local_b.grad,
                "grad_weight": layer.weight.grad,
                "grad_bias": layer.bias.grad,
            },
            Path(out_dir) / f"rank{process}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_two_processes_equal_one_process_with_the_global_batch(tmp_path: Path) -> None:
    # fork reuses this process's imported modules; spawn would re-import torch in each child (~10 s).
    # DistributedDataParallel imports torch._dynamo on first use (~1.5 s): do it once, before forking.
    importlib.import_module("torch._dynamo")
    start_method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(
        run_one_process,
        args=(str(tmp_path / "rendezvous"), str(tmp_path)),
        nprocs=WORLD,
        join=True,
        start_method=start_method,
    )
    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    x_a, x_b, layer = global_problem()
    x_a.requires_grad_()
    x_b.requires_grad_()
    z_a, z_b = layer(torch.cat([x_a, x_b])).chunk(2)
    loss_fn = NTXent(NTXentParams(temperature=TEMPERATURE))
    reference = loss_fn(z_a, z_b)
    reference.backward()

    for process, result in enumerate(results):
        rows = slice(process * LOCAL_BATCH, (process + 1) * LOCAL_BATCH)
        assert result["rank_world"] == (process, WORLD)
        # The value is the global-batch loss on every process.
        torch.testing.assert_close(result["loss"], reference.detach(), rtol=1e-12, atol=1e-12)
        # The input gradient on each process is W times the global one for its rows; DDP's division
        # by W (visible on the parameters below) makes it exact.
        torch.testing.assert_close(result["grad_a"] / WORLD, x_a.grad[rows], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(result["grad_b"] / WORLD, x_b.grad[rows], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(result["grad_weight"], layer.weight.grad, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(result["grad_bias"], layer.bias.grad, rtol=1e-10, atol=1e-12)
        # Without gathering, each process's loss only sees its own 2n projections.
        local_reference = loss_fn(z_a[rows].detach(), z_b[rows].detach())
        torch.testing.assert_close(result["local_only_loss"], local_reference, rtol=1e-12, atol=1e-12)

    # The check above is not vacuous: the local-only losses differ from the global one.
    assert not torch.allclose(results[0]["local_only_loss"], reference.detach())
