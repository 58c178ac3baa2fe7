"""Which processes stopped responding, asked after a collective operation failed or timed out.

When one process of a distributed run hangs (a deadlock, a stopped job step, a stuck file system) or
dies, the others wait in their next collective until ``[run] collective_timeout_s`` passes, and get an
error that names no process (gloo: "Timed out waiting 10000ms for recv operation to complete";
"Connection closed by peer"). The process group itself cannot be asked any more, but the launcher's
key-value store (torchrun's rendezvous store, which lives in the launcher and outlives the workers)
can: every process that reaches the failure writes a key saying it is alive, waits a few seconds for
the others to do the same (a fifth of the timeout, at most 10 s), and the processes that never wrote
are the ones that stopped.
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch.distributed as dist

from ..errors import ContrastiveError

__all__ = ["DistributedFailure", "looks_like_a_collective_failure", "unresponsive_ranks"]

#: What the process-group backends say when a peer does not answer or has gone away.
_FAILURE_WORDS = (
    "timed out",
    "timeout",
    "connection closed by peer",
    "connection reset",
    "broken pipe",
    "watchdog",
)


def looks_like_a_collective_failure(error: BaseException) -> bool:
    """Whether ``error`` is a process group's failure to hear from a peer (not a bug in the run)."""
    if isinstance(error, dist.DistError):
        return True
    return isinstance(error, RuntimeError) and any(word in str(error).lower() for word in _FAILURE_WORDS)


def _default_store() -> Any | None:
    try:
        return dist.distributed_c10d._get_default_store()
    except (RuntimeError, ValueError, AttributeError):
        return None


#: How long a process waits for the others to report alive: live processes reach their failure within
#: moments of each other. Set from ``[run] collective_timeout_s`` (a fifth of it, at most 10 s).
ANSWER_WAIT_S = 10.0


def set_answer_wait(collective_timeout_s: float) -> None:
    """Wait ``min(10, collective_timeout_s / 5)`` seconds for answers (at least 1)."""
    global ANSWER_WAIT_S
    ANSWER_WAIT_S = max(1.0, min(10.0, collective_timeout_s / 5))


def unresponsive_ranks(grace_s: float | None = None) -> list[int] | None:
    """The ranks that did not report within ``grace_s`` seconds (default :data:`ANSWER_WAIT_S`) after
    this one did (this process excluded), or None when this cannot be known (no process group, or no
    store to ask).

    Every live process calls this from its failure path; a key per launcher attempt (torchrun's restart
    count) keeps the answers of a restarted run apart from the previous attempt's.
    """
    if not dist.is_available() or not dist.is_initialized():
        return None
    store = _default_store()
    if store is None:
        return None
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
        keys = [f"contrastive/alive/{attempt}/{other}" for other in range(world)]
        store.set(keys[rank], "1")
        deadline = time.monotonic() + (ANSWER_WAIT_S if grace_s is None else grace_s)
        missing = [other for other in range(world) if other != rank]
        while missing and time.monotonic() < deadline:
            missing = [other for other in missing if not store.check([keys[other]])]
            if missing:
                time.sleep(0.2)
        return missing
    except (RuntimeError, OSError, dist.DistError):  # the store went away too
        return None


class DistributedFailure(ContrastiveError):
    """A collective operation failed because other processes stopped responding (exit code 1)."""

    exit_code = 1

    @classmethod
    def explain(cls, error: BaseException, unresponsive: list[int] | None) -> DistributedFailure:
        """The error to show for ``error``, naming the ``unresponsive`` ranks when they are known."""
        rank = dist.get_rank() if dist.is_initialized() else 0
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if unresponsive:
            names = ", ".join(str(other) for other in unresponsive)
            who = (
                f"rank {names} stopped responding (hung or dead: see its log for where it stopped)"
                if len(unresponsive) == 1
                else f"ranks {names} stopped responding (hung or dead: see their logs for where they stopped)"
            )
        elif unresponsive == []:
            who = "every process is still alive, so the failure is in the connection between them"
        else:
            who = "which process stopped could not be determined (no launcher store to ask)"
        return cls(
            f"rank {rank}: a collective operation with the other processes failed ({first_line}): {who}. "
            "The last complete checkpoint is intact; resume by running the same launcher command again "
            "(torchrun --max-restarts N does it by itself). [run] collective_timeout_s sets how long a "
            "process waits for the others."
        )
