"""One Accelerate ``Accelerator`` per process, made from the recipe's ``[run]`` settings."""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState, PartialState
from accelerate.utils import InitProcessGroupKwargs

from ..distributed.unresponsive import set_answer_wait
from ..errors import ContrastiveError
from ..recipes.run_settings import RunSettings

_current: tuple[tuple[str, str], Accelerator] | None = None


class DeviceError(ContrastiveError):
    """The recipe asks for a device or precision this machine cannot provide."""


def get_accelerator(run: RunSettings) -> Accelerator:
    """The process's Accelerator for ``run.device`` and ``run.precision`` (reused across stages).

    Under ``torchrun`` or ``accelerate launch`` the process group is set up from the launcher's
    environment (NCCL on GPUs, gloo on CPUs), with ``run.collective_timeout_s`` as the collectives'
    timeout; otherwise the run uses one process.
    """
    global _current
    key = (run.device, run.precision, run.collective_timeout_s)
    if _current is not None and _current[0] == key:
        return _current[1]
    if run.device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("run.device = 'cuda' but no CUDA device is available here; use 'auto' or 'cpu'")
    use_cpu = run.device == "cpu" or not torch.cuda.is_available()
    if use_cpu and run.precision == "fp16":
        raise DeviceError("run.precision = 'fp16' needs a GPU; on the CPU use 'bf16' or 'no'")
    if _current is not None:  # Accelerate keeps process-wide state; settings changed between stages
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()
        PartialState._reset_state()
    if run.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    # The timeout turns a hung process into an error the CLI explains (distributed/unresponsive.py).
    timeout = timedelta(seconds=run.collective_timeout_s)
    set_answer_wait(run.collective_timeout_s)
    _join_torchrun_group(backend="gloo" if use_cpu else "nccl", timeout=timeout)
    accelerator = Accelerator(
        cpu=use_cpu, mixed_precision=run.precision, kwargs_handlers=[InitProcessGroupKwargs(timeout=timeout)]
    )
    _current = (key, accelerator)
    return accelerator


def _join_torchrun_group(*, backend: str, timeout: timedelta) -> None:
    """Under torchrun, create the default process group on a store prefixed by the restart attempt.

    torchrun's elastic agent keeps one key-value store for the whole job, and a group made the usual
    way (``env://``) publishes and reads its peers' addresses under the same keys in every attempt:
    after ``--max-restarts`` restarts the job, a fast process can read a dead peer's address from the
    previous attempt and fail ("Gloo connectFullMesh failed ... Connection refused"). Keys under
    ``contrastive/attempt_<TORCHELASTIC_RESTART_COUNT>/`` belong to one attempt only. Accelerate then
    finds the group made and uses it. Nothing happens without torchrun or once a group exists.
    """
    if "TORCHELASTIC_RESTART_COUNT" not in os.environ or not dist.is_available() or dist.is_initialized():
        return
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    store, _, _ = next(dist.rendezvous("env://", rank, world, timeout=timeout))
    attempt = os.environ["TORCHELASTIC_RESTART_COUNT"]
    prefixed = dist.PrefixStore(f"contrastive/attempt_{attempt}/", store)
    dist.init_process_group(backend, store=prefixed, rank=rank, world_size=world, timeout=timeout)
