"""One Accelerate ``Accelerator`` per process, made from the recipe's ``[run]`` settings."""

from __future__ import annotations

import os

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState, PartialState

from ..errors import ContrastiveError
from ..recipes.run_settings import RunSettings

_current: tuple[tuple[str, str], Accelerator] | None = None


class DeviceError(ContrastiveError):
    """The recipe asks for a device or precision this machine cannot provide."""


def get_accelerator(run: RunSettings) -> Accelerator:
    """The process's Accelerator for ``run.device`` and ``run.precision`` (reused across stages).

    Under ``torchrun`` or ``accelerate launch`` the process group is set up from the launcher's
    environment (NCCL on GPUs, gloo on CPUs); otherwise the run uses one process.
    """
    global _current
    key = (run.device, run.precision)
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
    accelerator = Accelerator(cpu=use_cpu, mixed_precision=run.precision)
    _current = (key, accelerator)
    return accelerator
