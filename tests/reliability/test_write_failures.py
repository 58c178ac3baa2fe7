"""A full disk and a read-only run directory, made real: a tmpfs and a read-only bind mount.

The tests run as root, which ignores permission bits, so ``chmod`` cannot make a directory read-only
here; a read-only mount stops root too. The mounts live in a private mount namespace (``unshare``) of
the run's process, so nothing outside it sees them and nothing is left mounted if a test fails.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.reliability.cases import WRITE_FAILURES
from tests.reliability.parametrize import mark_suite
from tests.reliability.processes import BIN, ENV, Finished, PausedRun, contrastive_in_process
from tests.reliability.run_directory import assert_same_results, assert_sound, interrupted_copy

CASES = {case.id: case for case in WRITE_FAILURES}
PRIVATE_MOUNTS = ["unshare", "--mount", "--propagation", "private"]
# $1 the mount point, $2 where to copy the run directory when the run has ended, then the command.
ON_A_SMALL_DISK = (
    'mnt=$1; copy=$2; shift 2; mount -t tmpfs -o size=16m tmpfs "$mnt" || exit 97; '
    '"$@"; code=$?; cp -a "$mnt/run" "$copy"; exit $code'
)
# $0 the directory made read-only, then the command.
READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'


@pytest.fixture(scope="module")
def mount_namespaces(tmp_path_factory) -> None:
    """Skip where a private mount namespace with a tmpfs cannot be made (not root, no unshare)."""
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        pytest.skip("needs unshare and nsenter (util-linux)")
    target = tmp_path_factory.mktemp("probe")
    probe = subprocess.run(
        [*PRIVATE_MOUNTS, "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs "$0"', str(target)],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount in a private mount namespace here: {probe.stderr.strip()}")


def _fill(directory: Path) -> None:
    """Write a file into ``directory`` until its file system has no byte left."""
    descriptor = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)  # unbuffered: each write is one
    try:
        for size in (1 << 20, 4096, 1):
            block = b"\0" * size
            while True:
                try:
                    os.write(descriptor, block)
                except OSError as error:
                    assert error.errno == errno.ENOSPC, error
                    break
    finally:
        os.close(descriptor)


def _assert_clean_failure(finished: Finished, exit_code: int, message: str) -> None:
    assert finished.returncode == exit_code, finished.stderr
    assert "error: " in finished.stderr and message in finished.stderr, finished.stderr
    assert "Traceback" not in finished.stderr, finished.stderr


def _digests(run_dir: Path) -> dict[str, str]:
    return {
        str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(run_dir.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize(
    "case", mark_suite([case for case in WRITE_FAILURES if case.id.startswith("disk-full")])
)
def test_a_full_disk_stops_the_run_cleanly_and_it_resumes(
    case, mount_namespaces, kill_recipe, reference_run, tmp_path
):
    mount_point, copy = tmp_path / "small_disk", tmp_path / "run"
    mount_point.mkdir()
    paused = PausedRun(
        case.point,
        case.count,
        ["run", str(kill_recipe), "--out", str(mount_point / "run")],
        tmp_path,
        wrapper=[*PRIVATE_MOUNTS, "sh", "-c", ON_A_SMALL_DISK, "sh", str(mount_point), str(copy)],
    )
    pid = paused.wait_until_paused()
    # The mount exists only in the run's namespace; /proc/<pid>/root shows the run's view of the files.
    _fill(Path(f"/proc/{pid}/root") / mount_point.relative_to("/"))
    paused.release()
    _assert_clean_failure(paused.finish(), case.exit_code, case.message)

    assert assert_sound(copy)[-1] == case.intact_checkpoint
    resumed = contrastive_in_process("run", str(kill_recipe), "--out", str(copy))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_results(copy, reference_run)


def test_a_read_only_run_directory_is_refused_and_left_as_it_was(
    mount_namespaces, kill_recipe, reference_run, tmp_path
):
    case = CASES["read-only-run-directory"]
    run_dir = interrupted_copy(reference_run, tmp_path / "run", last_checkpoint=case.intact_checkpoint)
    before = _digests(run_dir)

    command = [str(BIN / "contrastive"), "run", str(kill_recipe), "--out", str(run_dir)]
    done = subprocess.run(
        [*PRIVATE_MOUNTS, "sh", "-c", READ_ONLY, str(run_dir), *command],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
    )
    _assert_clean_failure(Finished(done.returncode, done.stdout, done.stderr), case.exit_code, case.message)
    assert "Read-only file system" in done.stderr
    assert _digests(run_dir) == before
    assert assert_sound(run_dir)[-1] == case.intact_checkpoint

    resumed = contrastive_in_process("run", str(kill_recipe), "--out", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {run_dir / 'pretrain' / 'checkpoints' / 'step-00000011'}" in resumed.stdout
    assert_same_results(run_dir, reference_run)


@pytest.mark.parametrize("case", mark_suite([CASES["checkpoints-become-read-only"]]))
def test_checkpoints_becoming_read_only_mid_run_stop_it_cleanly(
    case, mount_namespaces, kill_recipe, reference_run, tmp_path
):
    run_dir = tmp_path / "run"
    paused = PausedRun(
        case.point,
        case.count,
        ["run", str(kill_recipe), "--out", str(run_dir)],
        tmp_path,
        wrapper=PRIVATE_MOUNTS,
    )
    pid = paused.wait_until_paused()
    checkpoints = run_dir / "pretrain" / "checkpoints"
    # The run is between two checkpoint writes: no file under checkpoints/ is open, so the remount works.
    remount = subprocess.run(
        ["nsenter", "-t", str(pid), "-m", "sh", "-c", READ_ONLY, str(checkpoints), "true"],
        capture_output=True,
        text=True,
    )
    assert remount.returncode == 0, remount.stderr
    paused.release()
    finished = paused.finish()
    _assert_clean_failure(finished, case.exit_code, case.message)
    assert "Read-only file system" in finished.stderr
    assert f"The previous checkpoint {checkpoints / 'step-00000004'} is intact" in finished.stderr

    assert assert_sound(run_dir)[-1] == case.intact_checkpoint
    resumed = contrastive_in_process("run", str(kill_recipe), "--out", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert_same_results(run_dir, reference_run)
