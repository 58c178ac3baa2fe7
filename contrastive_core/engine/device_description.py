"""The device a run trains on, in words, for the run's manifest and report.

``torch.version.cuda`` says which CUDA the torch build was compiled for, not where the run ran (a CPU
run of a CUDA build of torch shows "13.0" there); this names the device itself: the GPU's model, or the
CPU's model and the cores the process may use.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def describe_device(device: torch.device) -> str:
    """E.g. ``"cuda:0 (NVIDIA H200, 139.8 GiB)"`` or ``"cpu (AMD EPYC 7B13, 2 cores)"``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        properties = torch.cuda.get_device_properties(index)
        return f"cuda:{index} ({properties.name}, {properties.total_memory / 2**30:.1f} GiB)"
    if device.type == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return f"cpu ({cpu_model()}, {cores} core{'s' * (cores != 1)})"
    return str(device)


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform reports, else "unknown CPU"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"
