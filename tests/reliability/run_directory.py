"""What a run directory must look like after any fault, and comparing a resumed run with a reference."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file as load_safetensors

from contrastive_core.engine import STATE_FILE, load_file
from contrastive_core.run_directory import read_metrics

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_CHECKPOINT = re.compile(r"^step-(\d{8,})$")


def is_hidden(path: Path, root: Path) -> bool:
    """Hidden files and directories (``.step-*.tmp``, ``.results.json.*.tmp``): the run never
    reads a temporary; it deletes those of checkpoints when it starts again."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def assert_files_parse(run_dir: Path) -> None:
    """Every visible json, toml, pt, safetensors and jsonl file of the run directory parses."""
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file() or is_hidden(path, run_dir):
            continue
        if path.suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text(encoding="utf-8"))
        elif path.suffix == ".pt":
            load_file(path)  # weights_only: raises CheckpointError for anything else
        elif path.suffix == ".safetensors":
            load_safetensors(str(path))
        elif path.suffix == ".jsonl":
            text = path.read_text(encoding="utf-8")
            # A killed writer may leave its last line unterminated; the resumed run drops it.
            complete = text if text.endswith("\n") or not text else text[: text.rfind("\n") + 1]
            for line in complete.splitlines():
                json.loads(line)


def checkpoint_steps(checkpoints: Path) -> list[int]:
    """The steps of the visible checkpoint directories, each checked to be complete and loadable."""
    steps = []
    for path in sorted(checkpoints.iterdir()) if checkpoints.is_dir() else []:
        match = _CHECKPOINT.match(path.name)
        if not match:
            continue
        assert sorted(child.name for child in path.iterdir()) == [
            "checksums.json",
            "rng-rank0.pt",
            STATE_FILE,
        ], path
        state = load_file(path / STATE_FILE)
        assert state["step"] == int(match.group(1)), path
        load_file(path / "rng-rank0.pt")
        steps.append(int(match.group(1)))
    return sorted(steps)


def assert_sound(run_dir: Path, stage: str = "pretrain") -> list[int]:
    """No corrupt file, every visible checkpoint complete; returns the checkpoint steps, oldest first."""
    assert_files_parse(run_dir)
    return checkpoint_steps(run_dir / stage / "checkpoints")


def losses(run_dir: Path) -> list[float]:
    return [record["loss"] for record in read_metrics(run_dir / "pretrain" / "metrics.jsonl")]


def assert_same_training(run_dir: Path, reference: Path) -> None:
    """The same exported encoder, bit for bit, and the same loss curve as the reference run."""
    expected = load_safetensors(str(reference / "pretrain" / "encoder.safetensors"))
    actual = load_safetensors(str(run_dir / "pretrain" / "encoder.safetensors"))
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{name} differs from the uninterrupted run"
    assert losses(run_dir) == losses(reference)


def assert_same_results(run_dir: Path, reference: Path) -> None:
    """The same training and the same evaluation results (timings aside) as the reference run."""
    assert_same_training(run_dir, reference)
    expected = json.loads((reference / "results.json").read_text())
    actual = json.loads((run_dir / "results.json").read_text())
    assert actual.keys() == expected.keys()
    for key in expected:
        timing_free = {name: value for name, value in expected[key].items() if not name.endswith("_per_s")}
        assert {name: actual[key][name] for name in timing_free} == timing_free, key


def interrupted_copy(reference: Path, destination: Path, *, last_checkpoint: int) -> Path:
    """A copy of a finished run as a kill during step ``last_checkpoint + 1`` leaves it: checkpoints up
    to ``last_checkpoint``, no stage finished, no results and no exported encoder."""
    shutil.copytree(reference, destination)
    for checkpoint in (destination / "pretrain" / "checkpoints").glob("step-*"):
        if int(checkpoint.name.split("-")[1]) > last_checkpoint:
            shutil.rmtree(checkpoint)
    for stage_dir in destination.iterdir():
        if stage_dir.is_dir() and stage_dir.name != "pretrain":
            shutil.rmtree(stage_dir)
    for name in ("results.json", "report.html", "pretrain/stage.json", "pretrain/encoder.safetensors"):
        (destination / name).unlink(missing_ok=True)
    (destination / "pretrain" / "encoder.json").unlink(missing_ok=True)
    return destination
