"""Run the real command line and stop it at one exact point, so that a test can SIGKILL it there.

    python -m tests.reliability.pause_at POINT COUNT READY_FILE -- run recipe.toml --out DIR

The process runs :func:`contrastive_core.cli.main` with the arguments after ``--``: the function the
``contrastive`` executable runs, in a fresh interpreter. The COUNT-th time it reaches POINT it writes
READY_FILE (``{"pid": ..., "point": ...}``) and waits, doing nothing, until the test kills it (SIGKILL) or
lets it go on (SIGUSR1).

Why this and not a sleep: a tiny checkpoint is written in about a millisecond, so a kill after a random
delay almost never lands inside the write. Here the pause is put in from the outside by wrapping the
functions the point names (``os.replace``, ``os.unlink``, the checkpoint file writer, ...); the library
has no test hook, no environment switch and no idea it is being watched. Points:

``backward``        after the backward pass of a step, before the optimizer step (mid-step)
``write:NAME``      inside the checkpoint file NAME (``state.pt``, ``rng-rank0.pt``): half of its bytes
                    are on disk, fsync'ed, the rest not yet written
``before-rename``   a checkpoint complete in its hidden temporary directory, not yet renamed into place
``after-rename``    right after that rename, before older checkpoints are pruned
``pruning``         an old checkpoint partly deleted (its first file gone)
``stage-done``      a stage's ``stage.json`` written, ``results.json`` not yet updated
``between-stages``  ``results.json`` updated, the next stage not yet started
``before-export``   the last checkpoint written, the encoder not yet exported
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

POINTS = (
    "backward",
    "write:state.pt",
    "write:rng-rank0.pt",
    "before-rename",
    "after-rename",
    "pruning",
    "stage-done",
    "between-stages",
    "before-export",
)
_TEMPORARY = re.compile(r"^\.step-\d+\.tmp$")
_CHECKPOINT_BEING_DELETED = re.compile(r"^\.?step-\d+(\.old)?$")  # not a temporary being written


class _Pause:
    """Counts arrivals at the point; the COUNT-th arrival announces itself and waits."""

    def __init__(self, point: str, count: int, ready_file: Path) -> None:
        self.point = point
        self.count = count
        self.ready_file = ready_file
        self.arrivals = 0
        self.released = False
        signal.signal(signal.SIGUSR1, self._release)

    def _release(self, signum: int, frame: Any) -> None:
        self.released = True

    def due(self) -> bool:
        """Count one arrival; True for the COUNT-th."""
        self.arrivals += 1
        return self.arrivals == self.count

    def arrive(self) -> None:
        if self.due():
            self.hold()

    def hold(self) -> None:
        """Say where this process is, then wait for SIGKILL (or SIGUSR1)."""
        partial = self.ready_file.with_name(self.ready_file.name + ".partial")
        partial.write_text(json.dumps({"pid": os.getpid(), "point": self.point}))
        os.replace(partial, self.ready_file)  # the test never reads a half-written ready file
        while not self.released:
            time.sleep(0.005)


def _wrap_after(owner: Any, name: str, when: Callable[..., bool], pause: _Pause) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if when(*args, **kwargs):
            pause.arrive()
        return result

    setattr(owner, name, wrapper)


def _wrap_before(owner: Any, name: str, when: Callable[..., bool], pause: _Pause) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if when(*args, **kwargs):
            pause.arrive()
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def _deleted_file_directory(path: Any, *, dir_fd: int | None = None) -> str:
    """The name of the directory a file is unlinked from (``shutil.rmtree`` passes a directory fd)."""
    if dir_fd is not None:
        return Path(os.readlink(f"/proc/self/fd/{dir_fd}")).name
    return Path(os.fsdecode(path)).parent.name


def install(point: str, count: int, ready_file: Path) -> None:
    """Put the pause at ``point`` into this process (before the command line runs)."""
    import accelerate

    import contrastive_core.engine.checkpoint as checkpoint
    import contrastive_core.engine.runner as runner
    import contrastive_plugins.stages.pretrain as pretrain

    pause = _Pause(point, count, ready_file)
    if point == "backward":
        _wrap_after(accelerate.Accelerator, "backward", lambda *a, **k: True, pause)
    elif point.startswith("write:"):
        file_name = point.removeprefix("write:")
        original = checkpoint._save_file

        def half_written(data: Any, path: Path) -> None:
            if Path(path).name != file_name or not pause.due():
                return original(data, path)
            import torch

            buffer = io.BytesIO()
            torch.save(data, buffer)
            with open(path, "wb") as handle:  # what the writer has put on disk when the kill lands
                handle.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
                handle.flush()
                os.fsync(handle.fileno())
            pause.hold()
            raise AssertionError("the test was to kill this process inside the write")

        checkpoint._save_file = half_written
    elif point in ("before-rename", "after-rename"):
        wrap = _wrap_before if point == "before-rename" else _wrap_after
        wrap(os, "replace", lambda src, dst, **k: bool(_TEMPORARY.match(Path(os.fsdecode(src)).name)), pause)
    elif point == "pruning":
        _wrap_after(
            os,
            "unlink",
            lambda path, **k: bool(_CHECKPOINT_BEING_DELETED.match(_deleted_file_directory(path, **k))),
            pause,
        )
    elif point in ("stage-done", "between-stages"):
        written = "stage.json" if point == "stage-done" else "results.json"
        _wrap_after(runner, "write_json_atomic", lambda path, data: Path(path).name == written, pause)
    elif point == "before-export":
        _wrap_before(pretrain, "export_encoder", lambda *a, **k: True, pause)
    else:
        raise SystemExit(f"unknown pause point {point!r}; points: {', '.join(POINTS)}")


def main(argv: list[str]) -> int:
    separator = argv.index("--")
    point, count, ready_file = argv[:separator]
    install(point, int(count), Path(ready_file))
    from contrastive_core.cli import main as cli_main

    return cli_main(argv[separator + 1 :])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
