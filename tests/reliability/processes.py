"""Starting, pausing, killing and resuming runs: real processes, and the command line in process."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: One thread everywhere: the in-process runs must compute exactly what the subprocesses compute.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@dataclass
class Finished:
    """A process that has ended: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


class PausedRun:
    """A real process running the command line (``pause_at.py``) that stops at a pause point.

    ``wrapper`` goes before the Python command (for example ``unshare`` and a shell that mounts a file
    system first); the pid of the paused Python process comes from its ready file.
    """

    def __init__(
        self,
        point: str,
        count: int,
        args: list[str],
        workdir: Path,
        *,
        wrapper: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        name = uuid.uuid4().hex[:8]
        self.ready = workdir / f"paused-{name}.json"
        self.stdout_path = workdir / f"paused-{name}.out"
        self.stderr_path = workdir / f"paused-{name}.err"
        command = [sys.executable, "-m", "tests.reliability.pause_at", point, str(count), str(self.ready)]
        self.pid: int | None = None
        # Output goes to files: a pipe nobody reads while the process waits could fill up and block it.
        with open(self.stdout_path, "w") as stdout, open(self.stderr_path, "w") as stderr:
            self.process = subprocess.Popen(
                [*(wrapper or []), *command, "--", *args],
                cwd=REPO,
                stdout=stdout,
                stderr=stderr,
                env=env or ENV,
            )

    def wait_until_paused(self, timeout: float = 180) -> int:
        """The pid of the process, once it waits at its pause point."""
        deadline = time.monotonic() + timeout
        while not self.ready.exists():
            if self.process.poll() is not None:
                finished = self.finish()
                raise AssertionError(
                    f"the run ended (exit code {finished.returncode}) before its pause point:\n{finished.stderr}"
                )
            assert time.monotonic() < deadline, "the run did not reach its pause point in time"
            time.sleep(0.01)
        self.pid = json.loads(self.ready.read_text())["pid"]
        return self.pid

    def kill(self) -> Finished:
        """SIGKILL at the pause point: no handler, no cleanup, whatever was being written stays so."""
        assert self.pid is not None, "kill() before wait_until_paused()"
        os.kill(self.pid, signal.SIGKILL)
        return self.finish()

    def release(self) -> None:
        """Let the paused process go on."""
        assert self.pid is not None, "release() before wait_until_paused()"
        os.kill(self.pid, signal.SIGUSR1)

    def finish(self, timeout: float = 180) -> Finished:
        self.process.wait(timeout=timeout)
        return Finished(self.process.returncode, self.stdout_path.read_text(), self.stderr_path.read_text())


def contrastive(*args: str, timeout: float = 300) -> Finished:
    """The ``contrastive`` executable in a process of its own."""
    done = subprocess.run(
        [str(BIN / "contrastive"), *args], capture_output=True, text=True, env=ENV, timeout=timeout
    )
    return Finished(done.returncode, done.stdout, done.stderr)


def contrastive_in_process(*args: str) -> Finished:
    """``contrastive_core.cli.main`` in this process (no interpreter start-up), on one thread."""
    from contrastive_core.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(list(args))
    finally:
        torch.set_num_threads(threads)
    return Finished(code, stdout.getvalue(), stderr.getvalue())
