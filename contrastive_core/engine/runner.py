"""Running a recipe: the run directory, its records, and the stages in order.

Layout of a run directory (the names are :mod:`contrastive_core.run_directory.names`)::

    recipe.resolved.toml   the validated recipe with every default filled in
    manifest.json          versions, plugins, git commit, command line, start time
    results.json           metrics of each finished stage, by stage key
    report.html            plots, results and recipe in one page (at the end, when matplotlib is installed)
    <stage key>/           each stage's own files; stage.json marks it finished

Running a recipe into a directory that already holds the same resolved recipe resumes it: finished
stages are skipped (their metrics and artifacts restored) and the first unfinished one starts again
(resuming from its own checkpoints if it writes any).

A stage counts as finished only while every artifact its ``stage.json`` lists still exists. One whose
artifact was deleted runs again (resuming from its checkpoints, so ``pretrain`` exports the same encoder
without training). ``stage.json`` records each artifact's SHA-256; if the re-made artifacts differ from
the recorded ones (the checkpoints were gone too, and training was not bit-exact), the later stages that
had finished were computed from artifacts that no longer exist, so they run again from the start.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from accelerate.utils import broadcast_object_list
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..components.stage import StageContext
from ..errors import ContrastiveError
from ..recipes.recipe import recipe_warnings, stage_keys
from ..recipes.toml_writer import dumps
from ..registration.registry import Registry
from ..reports.report import report_after_run
from ..run_directory.atomic import write_json_atomic, write_text_atomic
from ..run_directory.manifest import build_manifest, is_run_directory
from ..run_directory.names import (
    MANIFEST_FILE,
    RESOLVED_RECIPE_FILE,
    RESULTS_FILE,
    STAGE_DONE_FILE,
)
from ..run_directory.records import RunRecordError, read_json_record
from .accelerator import get_accelerator
from .device_description import describe_device
from .experiment_trackers import ExperimentTrackers, flat_hyperparameters

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class RunDirectoryError(ContrastiveError):
    """The run directory cannot be used as asked (another recipe in it, another run holding it)."""


class RunFileSystemError(ContrastiveError):
    """An operating-system error (disk full, read-only file system) stopped a run that had started."""

    exit_code = 1


def resolved_toml(recipe: BaseModel) -> str:
    """The recipe with every default filled in, as TOML that validates to the same recipe."""
    return dumps(recipe.model_dump(mode="json", exclude_none=True))


def run_recipe(
    recipe: BaseModel,
    *,
    registry: Registry,
    run_dir: Path,
    console: Console,
    recipe_path: Path | None = None,
    command_line: list[str] | None = None,
    fresh: bool = False,
    write_report: bool = True,
) -> dict[str, dict[str, Any]]:
    """Run every stage of ``recipe`` in ``run_dir``; returns results by stage key. ``write_report``:
    write report.html after the stages (when matplotlib is installed).

    Under a launcher (torchrun, accelerate launch) every process calls this; the main process alone
    writes the run directory's records and holds its lock, the others only run the stages.
    """
    run_dir = Path(run_dir)
    accelerator = get_accelerator(recipe.run)
    main = accelerator.is_main_process
    if not main:
        console.quiet = True
    for warning in recipe_warnings(recipe):  # valid but implausible values: said, then run as asked
        console.print(Text(f"warning: {warning}", style="yellow"), soft_wrap=True)
    with ExitStack() as held:
        problem = None
        if main:
            try:
                _refuse_a_folder_that_is_not_a_run(run_dir)
                if fresh:
                    _clear_run_dir(run_dir, console)
                run_dir.mkdir(parents=True, exist_ok=True)
                held.enter_context(_exclusive(run_dir))
                resolved = resolved_toml(recipe)
                _check_same_recipe(run_dir, resolved)
                # The manifest first: it is what marks the folder as a run directory from now on.
                write_json_atomic(
                    run_dir / MANIFEST_FILE,
                    build_manifest(registry, recipe_path=recipe_path, command_line=command_line or sys.argv)
                    | {"processes": accelerator.num_processes, "device": describe_device(accelerator.device)},
                )
                write_text_atomic(run_dir / RESOLVED_RECIPE_FILE, resolved)
            except RunDirectoryError as error:
                problem = str(error)
            except OSError as error:  # e.g. a read-only or full file system
                problem = f"cannot use the run directory {run_dir}: {error}"
        # Every process learns whether the main one could set up the directory, so none waits forever.
        problem = broadcast_object_list([problem])[0] if accelerator.num_processes > 1 else problem
        if problem is not None:
            raise RunDirectoryError(problem)
        trackers = ExperimentTrackers(
            recipe.run.trackers if main else (),
            run_dir,
            run_name=recipe.run.name or run_dir.resolve().name,
            project=recipe.run.tracker_project,
        )
        held.callback(trackers.finish)  # also when a stage fails or the run is interrupted
        if trackers.names:
            trackers.start(flat_hyperparameters(recipe.model_dump(mode="json", exclude_none=True)))
        try:
            results = _run_stages(
                recipe, registry, run_dir, console, main, accelerator.wait_for_everyone, trackers
            )
        except OSError as error:
            raise RunFileSystemError(
                f"the run stopped on an operating-system error: {error}. Checkpoints and records are written "
                f"atomically, so what {run_dir} holds is complete; fix the cause (free disk space, make the "
                "directory writable) and run the same command again to resume."
            ) from error
    console.print(results_table(results))
    console.print(Text(f"run directory: {run_dir}"))

    # --- report.html (plots, results, recipe) when the optional matplotlib is installed ------------
    # After the results are saved; report_after_run never raises, so it cannot fail a finished run.
    if main and write_report:
        report_after_run(run_dir, console)
    return results


def _run_stages(
    recipe: BaseModel,
    registry: Registry,
    run_dir: Path,
    console: Console,
    main: bool,
    barrier: Callable[[], None],
    trackers: ExperimentTrackers,
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    artifacts: dict[str, dict[str, Path]] = {}
    #: The stage that ran again and made artifacts other than those recorded: the finished stages after
    #: it were computed from the old ones and must run again too.
    changed_by: str | None = None
    for index, (key, params) in enumerate(zip(stage_keys(recipe), recipe.stages, strict=True)):
        stage_dir = run_dir / key
        position = f"stage {index + 1}/{len(recipe.stages)} {key}"
        done = _read_done(stage_dir)
        remade: dict[str, Any] | None = None  # the marker of a finished stage that runs again
        if done is not None and changed_by is not None:
            console.print(
                Text(
                    f"{position}: finished earlier, but from the artifacts of stage {changed_by!r} as they were "
                    f"before it ran again; they differ now, so its results no longer hold: removing {stage_dir} "
                    "and running it again",
                    style="yellow",
                )
            )
            if main:
                shutil.rmtree(stage_dir)
            barrier()  # no process reads the stage's old files while the main process deletes them
            done = None
        elif done is not None and (missing := _missing_artifacts(stage_dir, done)):
            console.print(
                Text(
                    f"{position}: finished earlier, but {_listed(missing)} {'is' if len(missing) == 1 else 'are'} "
                    "missing: running it again (from its latest checkpoint, if it has any)",
                    style="yellow",
                )
            )
            remade, done = done, None
        if done is not None:
            console.print(Text(f"{position}: finished earlier, skipped", style="dim"))
            results[key] = done["metrics"]
            artifacts[key] = {name: stage_dir / rel for name, rel in done.get("artifacts", {}).items()}
            continue
        console.print(Text(position, style="bold") + Text(f" ({params.type})"))
        stage_dir.mkdir(parents=True, exist_ok=True)
        stage = registry.get("stage", params.type).from_params(params)
        context = StageContext(
            recipe=recipe,
            registry=registry,
            run_dir=run_dir,
            stage_dir=stage_dir,
            key=key,
            index=index,
            console=console,
            results=results,
            artifacts=artifacts,
            log_metrics=partial(trackers.log, key),
        )
        started = time.monotonic()
        results[key] = stage.run(context)
        trackers.log_results(key, results[key])
        seconds = time.monotonic() - started
        produced = {name: Path(path).resolve() for name, path in artifacts.get(key, {}).items()}
        sums = _checksums(produced) if main else {}
        if main:
            if remade is not None and remade.get("checksums") == sums:
                # It only restored its files: the results measured when it first ran stand (a re-run that
                # resumes after its last step trains nothing, and its throughput would read 0).
                results[key] = remade["metrics"]
                seconds = remade.get("seconds", seconds)
            write_json_atomic(
                stage_dir / STAGE_DONE_FILE,
                {
                    "metrics": results[key],
                    "artifacts": {
                        name: str(path.relative_to(stage_dir.resolve())) for name, path in produced.items()
                    },
                    "checksums": sums,
                    # The wall time of the session that finished the stage (a resumed stage's earlier
                    # sessions are not counted).
                    "seconds": round(seconds, 3),
                },
            )
            write_json_atomic(run_dir / RESULTS_FILE, results)
        barrier()  # the next stage (in every process) starts after the marker is written
        if remade is not None:
            # After the barrier every artifact is complete, so every process computes the same sums.
            sums = sums if main else _checksums(produced)
            if remade.get("checksums") == sums:
                results[key] = remade["metrics"]
                console.print(
                    Text(
                        f"{key}: its artifacts are the same as before (SHA-256): its results and those of the "
                        "later stages stand",
                        style="dim",
                    )
                )
            else:
                changed_by = key
                recorded = "differ from" if remade.get("checksums") else "cannot be compared with"
                console.print(
                    Text(
                        f"{key}: its new artifacts {recorded} those recorded in {stage_dir / STAGE_DONE_FILE}: "
                        "the later stages that had finished run again",
                        style="yellow",
                    )
                )
    if main:
        # Again at the end: a run killed between the last stage's marker and results.json would otherwise
        # keep a results.json without that stage, as every stage is then skipped.
        write_json_atomic(run_dir / RESULTS_FILE, results)
    return results


def results_table(results: dict[str, dict[str, Any]]) -> Table:
    table = Table(title="results")
    table.add_column("stage")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, metrics in results.items():
        for index, (name, value) in enumerate(metrics.items()):
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            # Text: stage keys and metric names are data (read back from stage.json), never markup.
            table.add_row(Text(key if index == 0 else ""), Text(name), Text(shown))
    return table


def _read_done(stage_dir: Path) -> dict[str, Any] | None:
    marker = stage_dir / STAGE_DONE_FILE
    if not marker.is_file():
        return None
    try:
        return read_json_record(marker)
    except RunRecordError as error:
        raise RunDirectoryError(
            f"{error}. It marks stage {stage_dir.name!r} as finished; delete it to run that stage again "
            "(or --fresh to start the whole run over)."
        ) from None


def _missing_artifacts(stage_dir: Path, done: dict[str, Any]) -> list[Path]:
    """The artifacts a finished stage's marker lists that are no longer there (deleted by hand)."""
    listed = done.get("artifacts")
    if not isinstance(listed, dict):
        return []
    return [stage_dir / str(rel) for rel in listed.values() if not (stage_dir / str(rel)).exists()]


def _listed(paths: list[Path]) -> str:
    return ", ".join(str(path) for path in paths)


def _checksums(artifacts: dict[str, Path]) -> dict[str, str | None]:
    """The SHA-256 of each artifact file (None for one that is not a file, e.g. a directory)."""
    sums: dict[str, str | None] = {}
    for name, path in artifacts.items():
        if not path.is_file():
            sums[name] = None
            continue
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        sums[name] = digest.hexdigest()
    return sums


def _check_same_recipe(run_dir: Path, resolved: str) -> None:
    """Refuse a run directory of another recipe. The recipes are compared as TOML values, not text, so
    a directory written by a version that laid the same recipe out differently still resumes."""
    existing = run_dir / RESOLVED_RECIPE_FILE
    if existing.is_file() and not _same_toml(existing.read_text(encoding="utf-8"), resolved):
        raise RunDirectoryError(
            f"{run_dir} holds a run of a different recipe (see {existing}); resuming it with this recipe "
            "would mix the two. Use another --out directory, or --fresh to start this directory over."
        )


def _same_toml(text: str, other: str) -> bool:
    try:
        return tomllib.loads(text) == tomllib.loads(other)
    except tomllib.TOMLDecodeError:  # a damaged record: only the same text is the same recipe
        return text == other


def _refuse_a_folder_that_is_not_a_run(run_dir: Path) -> None:
    """A run writes into (and ``--fresh`` clears) only a new or empty folder or an earlier run's."""
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir} is a file, not a run directory; choose another --out directory.")
    if is_run_directory(run_dir) or not any(run_dir.iterdir()):
        return
    raise RunDirectoryError(
        f"{run_dir} is not empty and is not a contrastive run directory (it has no {MANIFEST_FILE} written "
        "by contrastive); refusing to write into it, and --fresh would not clear it either. Choose another "
        "--out directory: a new or empty one, or the directory of an earlier run."
    )


def _clear_run_dir(run_dir: Path, console: Console) -> None:
    """Delete what an earlier run left in ``run_dir`` (already checked to be a run directory)."""
    if not run_dir.exists():
        return
    with _exclusive(run_dir):
        for child in run_dir.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    console.print(Text(f"--fresh: cleared {run_dir}"))


@contextmanager
def _exclusive(run_dir: Path):
    """Hold an exclusive lock on the run directory so a second run into it refuses instead of mixing.

    The lock is taken on the directory itself (``flock`` on a descriptor of the folder), not on a file in
    it: there is nothing a user could delete to let a second run in while the first holds it. The kernel
    releases it when the process dies, however it dies.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    descriptor = os.open(run_dir, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirectoryError(
                f"another run is using {run_dir} (it holds the directory's lock); wait for it to finish or use "
                "another --out directory"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
