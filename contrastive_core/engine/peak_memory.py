"""The peak memory of a stretch of work, for ``contrastive bench``.

CUDA: the caching allocator's ``max_memory_allocated`` (tensors only, the figure that decides whether
a batch fits), reset with ``reset_peak_memory_stats``. CPU: the process's peak resident set size
(``VmHWM`` of ``/proc/self/status``), which Linux resets to the current size when ``5`` is written to
``/proc/self/clear_refs``; it counts everything the process holds (Python, libraries, datasets held in
memory), so :attr:`PeakMemory.rise` (the peak above the size at the reset) is the part's own working
memory; freed heap memory is handed back to the OS first (glibc ``malloc_trim``), or it would still
count as resident. Where the reset is not possible (another OS, a restricted /proc), figures are None.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


class PeakMemory:
    """``reset()`` before the work, ``peak()`` after; bytes, or None where they cannot be measured."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.start: int | None = None

    def reset(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            return
        _release_free_heap()
        try:
            _CLEAR_REFS.write_text("5")
        except OSError:
            self.start = None
            return
        self.start = _status_bytes("VmRSS")

    def peak(self) -> int | None:
        """Bytes at the highest point since :meth:`reset` (the whole process's, on the CPU)."""
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        return _status_bytes("VmHWM") if self.start is not None else None

    @property
    def rise(self) -> int | None:
        """The peak minus the memory in use at :meth:`reset`: what the work itself needed at most."""
        peak = self.peak()
        return None if peak is None or self.start is None else max(0, peak - self.start)


def _release_free_heap() -> None:
    """Hand memory the C allocator keeps after ``free`` back to the OS (glibc's ``malloc_trim``), so the
    resident set is what is in use and a part's peak is its own, not an earlier part's high water."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None (another C library); looked up once (``find_library`` runs
    ldconfig)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` in bytes (None if absent)."""
    try:
        lines = _STATUS.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return None
