"""Training checkpoints: complete or absent, never half-written, and safe to load.

A checkpoint is a directory ``checkpoints/step-00000123/`` holding ``state.pt`` (model, optimizer,
scheduler, counters; written by the main process) and ``rng-rank<R>.pt`` (each process's random number
generator states). It is first written as a hidden temporary directory and renamed into place only
when every file is complete and fsync'ed, so a crash at any moment leaves the previous checkpoint
intact. Files are loaded with ``torch.load(weights_only=True)``: a crafted file cannot run code.

``checksums.json`` holds the SHA-256 of every other file of the checkpoint, written last before the
rename: a file changed or damaged afterwards (a disk fault, a hand edit) is detected when loading, and
:meth:`CheckpointManager.load_latest` then falls back to the previous complete checkpoint, saying so.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import ContrastiveError
from .random_state import rng_for_a_new_rank

_NAME = re.compile(r"^step-(\d{8,})$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
STATE_FILE = "state.pt"
CHECKSUMS_FILE = "checksums.json"


class CheckpointError(ContrastiveError):
    """A checkpoint could not be written or read."""

    exit_code = 1


def _no_barrier() -> None:
    return None


class CheckpointManager:
    """Writes, lists, prunes and loads the checkpoints of one training stage.

    ``barrier`` synchronises the processes of a distributed run (a no-op for one process); every
    process calls :meth:`save` at the same step.
    """

    def __init__(
        self,
        directory: Path,
        *,
        keep_last: int = 2,
        rank: int = 0,
        world_size: int = 1,
        barrier: Callable[[], None] = _no_barrier,
    ) -> None:
        self.directory = Path(directory)
        self.keep_last = keep_last
        self.rank = rank
        self.world_size = world_size
        self.barrier = barrier

    def completed(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [
            (int(m.group(1)), p)
            for p in self.directory.iterdir()
            if (m := _NAME.match(p.name)) and p.is_dir()
        ]
        return [path for _, path in sorted(found)]

    def latest(self) -> Path | None:
        completed = self.completed()
        return completed[-1] if completed else None

    def save(self, step: int, state: dict[str, Any], rng_state: dict[str, Any]) -> Path:
        """Write the checkpoint of ``step`` atomically; ``state`` is only used on the main process."""
        final = self.directory / f"step-{step:08d}"
        temporary = self.directory / f".step-{step:08d}.tmp"
        try:
            if self.rank == 0:
                self.directory.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(temporary, ignore_errors=True)
                temporary.mkdir()
            self.barrier()
            _save_file(rng_state, temporary / f"rng-rank{self.rank}.pt")
            if self.rank == 0:
                _save_file(state, temporary / STATE_FILE)
            self.barrier()
            if self.rank == 0:
                _write_checksums(temporary)
                _fsync(temporary)
                if final.exists():  # the same step saved again (e.g. end of epoch == every-N step)
                    _discard(final)
                os.replace(temporary, final)
                _fsync(self.directory)
                for old in self.completed()[: -self.keep_last]:
                    _discard(old)
            self.barrier()
        except OSError as error:
            if self.rank == 0:
                shutil.rmtree(temporary, ignore_errors=True)
            previous = self.latest()
            raise CheckpointError(
                f"could not write the checkpoint of step {step} in {self.directory}: {error}. "
                + (
                    f"The previous checkpoint {previous} is intact."
                    if previous
                    else "No earlier checkpoint exists."
                )
            ) from error
        return final

    def load(
        self, path: Path, map_location: str | torch.device = "cpu"
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(state, this process's RNG state) of the checkpoint at ``path``.

        A checkpoint written by fewer processes has no generator states for this rank: it continues
        from rank 0's, with its own augmentation generator seeded from them and its rank
        (:func:`~.random_state.rng_for_a_new_rank`). The data order does not depend on the number of
        processes, so a run resumes on any count; only the new ranks' random views differ from those
        an uninterrupted run would have drawn.
        """
        rng_file = path / f"rng-rank{self.rank}.pt"
        new_rank = not rng_file.is_file()
        if new_rank:
            rng_file = path / "rng-rank0.pt"
            if not rng_file.is_file():
                raise CheckpointError(f"{path} has no rng-rank0.pt: it is not a complete checkpoint")
        _check_checksums(path, [STATE_FILE, rng_file.name])
        state = load_file(path / STATE_FILE, map_location)
        step = _step_of(path)
        if not isinstance(state, dict) or state.get("step") != step:
            found = state.get("step") if isinstance(state, dict) else type(state).__name__
            raise CheckpointError(
                f"{path / STATE_FILE} says step {found!r}, but it is the checkpoint of step {step}"
            )
        rng = load_file(rng_file, "cpu")
        return state, rng_for_a_new_rank(rng, self.rank) if new_rank else rng

    def processes_of(self, path: Path) -> int:
        """How many processes wrote the checkpoint at ``path`` (its ``rng-rank<R>.pt`` files)."""
        return sum(1 for _ in path.glob("rng-rank*.pt"))

    def load_latest(
        self, map_location: str | torch.device = "cpu", say: Callable[[str], None] = lambda _: None
    ) -> tuple[Path, dict[str, Any], dict[str, Any]] | None:
        """(path, state, RNG state) of the newest checkpoint that loads, or None when there is none.

        A checkpoint that fails to load (damaged, or changed after it was written) is skipped for the
        one before it, with a message to ``say`` naming the file and the reason; if none loads, the
        :class:`CheckpointError` names them all and how to proceed.
        """
        completed = self.completed()
        refused: list[str] = []
        for path in reversed(completed):
            try:
                state, rng = self.load(path, map_location)
            except CheckpointError as error:
                refused.append(str(error))
                say(f"warning: {error}; trying the previous checkpoint")
                continue
            if refused:
                say(f"resuming from {path}, the newest checkpoint that loads")
            return path, state, rng
        if refused:
            raise CheckpointError(
                "no checkpoint of this stage loads: "
                + "; ".join(refused)
                + f". Delete {self.directory} to train this stage from its start (or --fresh for the whole run)."
            )
        return None

    def remove_stale_temporaries(self) -> None:
        """Delete half-written and half-deleted checkpoints left by a crash (main process only)."""
        if self.rank == 0 and self.directory.is_dir():
            for pattern in (".step-*.tmp", ".step-*.old"):
                for path in self.directory.glob(pattern):
                    shutil.rmtree(path, ignore_errors=True)


def load_file(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """Load a checkpoint file without unpickling arbitrary objects (``weights_only=True``)."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file {path} does not exist") from None
    except Exception as error:  # noqa: BLE001 - any unpickling refusal or corruption
        first_line = _ANSI.sub("", str(error)).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(
            f"refusing to load {path}: it is not a plain tensor checkpoint or is corrupt ({type(error).__name__}: "
            f"{first_line})"
        ) from None


def _discard(checkpoint: Path) -> None:
    """Delete a checkpoint directory without ever showing an incomplete ``step-*`` directory.

    Deleting removes one file after another, so a crash midway would leave a ``step-*`` directory that
    looks complete but lacks files. Renaming it to a hidden ``.step-*.old`` first is atomic; what a
    crash leaves of that is deleted by :meth:`CheckpointManager.remove_stale_temporaries`.
    """
    hidden = checkpoint.with_name(f".{checkpoint.name}.old")
    shutil.rmtree(hidden, ignore_errors=True)
    try:
        os.replace(checkpoint, hidden)
    except OSError:  # cannot rename (e.g. permissions): delete in place, as well as possible
        hidden = checkpoint
    shutil.rmtree(hidden, ignore_errors=True)


def _step_of(path: Path) -> int:
    match = _NAME.match(path.name)
    if match is None:
        raise CheckpointError(f"{path} is not named like a checkpoint (step-<8 digits>)")
    return int(match.group(1))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_checksums(directory: Path) -> None:
    """``checksums.json``: the SHA-256 of every file of the (complete, still hidden) checkpoint directory."""
    sums = {path.name: _sha256(path) for path in sorted(directory.iterdir()) if path.name != CHECKSUMS_FILE}
    _save_bytes((json.dumps(sums, indent=1) + "\n").encode(), directory / CHECKSUMS_FILE)


def _check_checksums(directory: Path, names: list[str]) -> None:
    """Refuse files of ``directory`` whose content differs from ``checksums.json`` (absent: not checked,
    as in checkpoints written before checksums were)."""
    listing = directory / CHECKSUMS_FILE
    if not listing.is_file():
        return
    try:
        sums = json.loads(listing.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as error:
        # RecursionError: JSON nested deeper than the parser's recursion allows, so damaged too.
        raise CheckpointError(f"{listing} is damaged ({error})") from None
    for name in names:
        expected = sums.get(name) if isinstance(sums, dict) else None
        if expected is None:
            raise CheckpointError(f"{listing} has no checksum for {name}")
        if (directory / name).is_file() and _sha256(directory / name) != expected:
            raise CheckpointError(
                f"{directory / name} is damaged or was changed after it was written (its SHA-256 differs "
                f"from {CHECKSUMS_FILE})"
            )


def _save_bytes(data: bytes, path: Path) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _save_file(data: Any, path: Path) -> None:
    with open(path, "wb") as handle:
        torch.save(data, handle)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
