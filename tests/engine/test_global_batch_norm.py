"""GlobalBatchNorm over 2 real gloo processes equals BatchNorm over the whole batch in one process."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from contrastive_core.distributed import GlobalBatchNorm, convert_to_global_batchnorm

WORLD = 2


def _reference(inputs: torch.Tensor, weights: dict) -> tuple[torch.Tensor, dict, dict]:
    norm = nn.BatchNorm2d(3)
    norm.load_state_dict(weights)
    x = inputs.clone().requires_grad_(True)
    out = norm(x)
    (out * torch.arange(out.numel()).reshape(out.shape).sin()).sum().backward()
    grads = {"x": x.grad, "weight": norm.weight.grad, "bias": norm.bias.grad}
    return out.detach(), grads, {k: v.clone() for k, v in norm.state_dict().items()}


def _worker(rank: int, init_file: str, inputs: torch.Tensor, weights: dict, queue, received) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        norm = convert_to_global_batchnorm(nn.BatchNorm2d(3), torch.device("cpu"))
        assert isinstance(norm, GlobalBatchNorm)
        norm.load_state_dict(weights)
        local = inputs.chunk(WORLD)[rank].clone().requires_grad_(True)
        out = norm(local)
        n = out.numel()
        # The same per-element weights as the reference sees for these rows of the global batch.
        scale = torch.arange(n * WORLD).reshape(WORLD * out.shape[0], *out.shape[1:]).sin().chunk(WORLD)[rank]
        (out * scale).sum().backward()
        # Parameter gradients are summed over processes here (DDP would average a mean loss).
        for grad in (norm.weight.grad, norm.bias.grad):
            dist.all_reduce(grad)
        queue.put((rank, out.detach(), local.grad, norm.weight.grad, norm.bias.grad, norm.state_dict()))
        # Tensors cross the queue as shared memory handed over by this process: it must outlive the read.
        received.wait(timeout=120)
    finally:
        dist.destroy_process_group()


def test_matches_single_process_batchnorm(tmp_path):
    torch.manual_seed(0)
    inputs = torch.randn(8, 3, 5, 5) * 3 + 1
    weights = nn.BatchNorm2d(3).state_dict()
    weights["weight"] = torch.tensor([0.5, 1.5, -1.0])
    weights["bias"] = torch.tensor([0.1, -0.2, 0.3])
    expected_out, expected_grads, expected_state = _reference(inputs, weights)

    context = mp.get_context("spawn")
    queue, received = context.Queue(), context.Event()
    processes = [
        context.Process(target=_worker, args=(rank, str(tmp_path / "init"), inputs, weights, queue, received))
        for rank in range(WORLD)
    ]
    for process in processes:
        process.start()
    results = sorted((queue.get(timeout=120) for _ in range(WORLD)), key=lambda item: item[0])
    received.set()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0

    torch.testing.assert_close(torch.cat([r[1] for r in results]), expected_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat([r[2] for r in results]), expected_grads["x"], rtol=1e-5, atol=1e-5)
    for _, _, _, weight_grad, bias_grad, state in results:
        torch.testing.assert_close(weight_grad, expected_grads["weight"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(bias_grad, expected_grads["bias"], rtol=1e-5, atol=1e-5)
        for key in ("running_mean", "running_var", "num_batches_tracked"):
            torch.testing.assert_close(state[key], expected_state[key], rtol=1e-5, atol=1e-6)


def test_conversion_keeps_state_and_leaves_single_process_alone():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm1d(2)))
    model[1].running_mean.fill_(0.7)
    converted = convert_to_global_batchnorm(model, torch.device("cpu"))
    assert isinstance(converted[1], GlobalBatchNorm) and isinstance(converted[2][0], GlobalBatchNorm)
    assert set(converted.state_dict()) == set(model.state_dict())
    torch.testing.assert_close(converted[1].running_mean, torch.full((4,), 0.7))
    # Without a process group it is plain BatchNorm.
    x = torch.randn(6, 4, 3, 3)
    reference = nn.BatchNorm2d(4)
    reference.load_state_dict(converted[1].state_dict())
    torch.testing.assert_close(converted[1](x), reference(x))
