"""The quickstart recipe end to end: shortened in the default suite, in full when slow tests run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "recipes" / "quickstart.toml"
FIXTURE = ROOT / "tests" / "fixtures" / "fashion_mnist" / "gzip"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def run_quickstart(out: Path, *overrides: str) -> dict:
    command = [str(Path(sys.executable).parent / "contrastive"), "run", str(QUICKSTART), "--out", str(out)]
    for override in overrides:
        command += ["--set", override]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, env={**os.environ})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "results" in result.stdout
    return json.loads((out / "results.json").read_text())


def test_shortened_quickstart_runs_every_stage(tmp_path):
    """The same recipe on the committed real-image fixture (64 train / 32 test images), a few steps."""
    results = run_quickstart(
        tmp_path / "run",
        f"data.root={FIXTURE}",
        "stages[0].epochs=1",
        "stages[0].batch_size=32",
        "stages[0].checkpoint_every_steps=2",
        "stages[1].train_examples=64",
        "stages[2].train_examples=64",
        "stages[2].epochs=3",
    )
    assert results["pretrain"]["steps"] == 2  # 1 epoch of 64 / 32
    for stage in ("knn_eval", "linear_eval"):
        for metric in ("top1", "top5", "random_init_top1", "random_init_top5"):
            assert 0.0 <= results[stage][metric] <= 1.0


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="needs Debian's dataset-fashion-mnist package")
def test_full_quickstart_beats_random_initialisation(tmp_path):
    results = run_quickstart(tmp_path / "run")
    print(json.dumps(results, indent=2))
    for stage in ("knn_eval", "linear_eval"):
        assert results[stage]["top1"] > results[stage]["random_init_top1"], results[stage]
