"""``contrastive bench``: the six measurements on a tiny recipe, the JSON file, and the real command.

Only what the run reports is checked (keys, counts, consistency of the derived numbers), never how
fast anything is: timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from contrastive_core import ContrastiveError, StepProgress, default_registry, validate_recipe
from contrastive_core.cli import main as cli_main
from contrastive_core.cli.commands.bench import result_table
from contrastive_core.engine import BenchSettings, benchmark, run_benchmark, time_interleaved
from contrastive_core.engine.benchmark import _bare_step
from tests.engine.method_steps import cpu_training_step, recipe_for
from tests.engine.recipes import FIXTURE, tiny_recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BIN = Path(sys.executable).parent
PARTS = ["data", "augmentation", "loss", "optimizer", "bare", "full"]
TINY = tiny_recipe(batch_size=16).replace("deterministic = true", "deterministic = false")


def tiny(text: str = TINY, **overrides):
    return validate_recipe(
        tomllib.loads(text), registry=default_registry(), overrides=overrides.get("set", ())
    )


def test_every_part_is_measured_and_the_json_is_consistent():
    settings = BenchSettings(steps=3, warmup=1, rounds=2)
    result = run_benchmark(tiny(), default_registry(), settings, recipe_path="tiny.toml")
    assert list(result.measurements) == PARTS
    for measurement in result.measurements.values():
        assert measurement.seconds_per_step > 0 and measurement.views_per_step == 32
        assert len(measurement.round_seconds) == 2
    document = json.loads(json.dumps(result.to_json()))
    assert set(document) == {
        "machine",
        "date",
        "recipe",
        "settings",
        "measurements",
        "full_over_bare",
        "full_over_bare_best_rounds",
    }
    assert {"cpu", "cpu_cores", "torch", "device"} <= set(document["machine"])
    assert document["machine"]["device"] == "cpu"
    settings_keys = {"steps", "warmup", "rounds", "batch_size", "views_per_step", "pipeline", "precision"}
    assert settings_keys <= set(document["settings"])
    assert document["settings"]["pipeline"] == "FusedSimCLRPipeline"
    assert document["settings"]["views"] == [1, 28, 28]
    full, bare = document["measurements"]["full"], document["measurements"]["bare"]
    assert full["share_of_full"] == 1.0
    assert full["best_seconds_per_step"] == min(full["round_seconds"]) <= full["seconds_per_step"]
    assert document["full_over_bare"] == pytest.approx(full["views_per_s"] / bare["views_per_s"])
    assert full["views_per_s"] == pytest.approx(32 / full["seconds_per_step"])


def test_batch_size_synthetic_images_and_the_reference_pipeline():
    recipe = tiny(set=["stages[0].fused_augmentations=false"])
    settings = BenchSettings(steps=1, warmup=0, rounds=1, batch_size=4, synthetic_images=(1, 30, 30))
    result = run_benchmark(recipe, default_registry(), settings)
    assert result.settings["batch_size"] == 4 and result.settings["images"] == [1, 30, 30]
    assert (
        result.settings["data"].startswith("synthetic")
        and result.settings["pipeline"] == "AugmentationPipeline"
    )
    assert result.measurements["bare"].views_per_step == 8


@pytest.mark.parametrize("decode", ["device", "workers"])
def test_a_loader_fed_recipe_times_the_loader_alone(decode):
    """An image folder is read by workers; its data part is their sustained rate, timed on its own. The
    training images are the whole photos (32 x 32 and 32 x 48 here), padded into max_side canvases."""
    folder = Path(__file__).resolve().parents[1] / "fixtures" / "image_folder"
    text = TINY.replace(
        'type = "fashion_mnist"',
        f'type = "image_folder"\nimage_size = 28\nmax_side = 48\ndecode = "{decode}"',
    )
    text = text.replace(f'root = "{FIXTURE}"', f'root = "{folder}"').replace(
        "in_channels = 1", "in_channels = 3"
    )
    text = text.replace("checkpoint_every_steps = 1", "checkpoint_every_steps = 1\nnum_workers = 2")
    settings = BenchSettings(steps=3, warmup=1, rounds=2, batch_size=2)
    result = run_benchmark(tiny(text), default_registry(), settings)
    assert list(result.measurements) == PARTS
    where = "on cpu" if decode == "device" else "by the workers"
    assert result.settings["data"] == f"image_folder 'train', 2 loader workers, decoded {where}, timed alone"
    assert len(result.measurements["data"].round_seconds) == 1  # one block, not interleaved rounds
    assert len(result.measurements["full"].round_seconds) == 2
    assert result.settings["images"] == [3, 48, 48]  # the canvas: max_side x max_side


def test_a_recipe_without_a_pretrain_stage_is_refused():
    text = TINY.replace('type = "pretrain"', 'type = "knn_eval"').split("epochs =")[0]
    with pytest.raises(ContrastiveError, match="no stage that trains its method"):
        run_benchmark(tiny(text), default_registry(), BenchSettings(steps=1))


def test_rounds_interleave_the_parts_and_split_the_steps():
    calls: list[str] = []
    parts = {name: (lambda name=name: calls.append(name)) for name in ("a", "b")}
    seconds = time_interleaved(parts, warmup=1, steps=5, rounds=2, device=torch.device("cpu"))
    assert calls == ["a", "b"] + ["a"] * 3 + ["b"] * 3 + ["a"] * 2 + ["b"] * 2
    assert [len(values) for values in seconds.values()] == [2, 2]


def test_memory_is_measured_in_an_untimed_round_after_the_timed_ones(monkeypatch):
    """A memory reset hands freed memory back to the OS, so the next step pages it in again: no timed
    round may follow one. Each part gets one more round, untimed, between a reset and a read."""
    events: list[str] = []

    class RecordingMemory:
        rise = 7

        def __init__(self, device):
            pass

        def reset(self):
            events.append("reset")

        def peak(self):
            events.append("peak")
            return 100

    monkeypatch.setattr(benchmark, "PeakMemory", RecordingMemory)
    parts = {name: (lambda name=name: events.append(name)) for name in ("a", "b")}
    peaks: dict = {}
    between = []
    time_interleaved(
        parts,
        warmup=0,
        steps=4,
        rounds=2,
        device=torch.device("cpu"),
        peaks=peaks,
        between_rounds=between.append,
    )
    assert events == ["a", "a", "b", "b"] * 2 + ["reset", "a", "a", "peak", "reset", "b", "b", "peak"]
    assert peaks == {"a": (100, 7), "b": (100, 7)} and between == [0, 1]


def test_the_bare_step_is_the_methods_own_forward_and_backward_on_random_views():
    registry = default_registry()
    recipe = validate_recipe(recipe_for(registry.get("method", "byol")), registry=registry)
    parts, step = cpu_training_step(recipe, registry)
    method = parts.method
    seen: list[dict[str, tuple[int, ...]]] = []
    method.register_forward_pre_hook(
        lambda module, args: seen.append({name: tuple(v.shape) for name, v in args[0].items()})
    )
    views = step.make_views(torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8))
    target_before = [p.clone() for p in method.target.parameters()]
    trained_before = [p.detach().clone() for p in method.trainable().parameters()]
    bare = _bare_step(method, step.accelerator, views, StepProgress(0, 3, 3))
    bare()
    assert seen == [{"global": (16, 1, 28, 28)}]  # the method itself, on its view groups' shapes
    trained_after = list(method.trainable().parameters())
    assert any(not torch.equal(a, b) for a, b in zip(trained_before, trained_after, strict=True))
    # No momentum update: that belongs to the full step.
    assert all(torch.equal(a, b) for a, b in zip(target_before, method.target.parameters(), strict=True))


def test_the_bench_command_prints_the_table_and_writes_json(tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    out = tmp_path / "out" / "bench.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(BIN / "contrastive"), "bench", str(recipe), "--steps", "2", "--warmup", "1"]
    command += ["--batch-size", "8", "--json", str(out), "--set", "loss.temperature=0.3"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    for part in PARTS:
        assert part in done.stdout
    assert "full / bare" in done.stdout
    document = json.loads(out.read_text())
    assert list(document["measurements"]) == PARTS
    assert document["settings"]["batch_size"] == 8
    assert "--steps 2 --warmup 1 --rounds 5 --batch-size 8" in document["settings"]["command"]
    assert "--set loss.temperature=0.3" in document["settings"]["command"]


def test_a_bad_image_shape_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli_main(["bench", str(tmp_path / "tiny.toml"), "--synthetic-images", "3,32"])
    assert stopped.value.code == 2 and "C,H,W" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_benchmark_runs_on_cuda():
    recipe = tiny(TINY.replace('device = "cpu"', 'device = "cuda"'))
    result = run_benchmark(recipe, default_registry(), BenchSettings(steps=2, warmup=1, rounds=2))
    assert result.machine["device"].startswith("cuda") and "gpu" in result.machine
    assert result.measurements["full"].peak_memory_bytes > 0
    assert result.full_over_bare > 0


def test_a_multi_crop_recipe_counts_every_view_of_every_group():
    registry = default_registry()
    data = recipe_for(registry.get("method", "swav"))
    crop = {"type": "random_resized_crop", "size": 28, "scale": [0.3, 1.0]}
    data["views"] = [
        {"name": "global", "augmentations": [crop]},
        {"name": "local", "count": 3, "augmentations": [{**crop, "size": 14, "scale": [0.05, 0.3]}]},
    ]
    data["method"]["prototypes"] = 10
    recipe = validate_recipe(data, registry=registry)
    result = run_benchmark(
        recipe, registry, BenchSettings(steps=2, warmup=1, rounds=1), recipe_path="mc.toml"
    )
    assert result.settings["view_groups"] == {"global": 2, "local": 3}
    assert result.settings["view_sizes"] == {"global": [1, 28, 28], "local": [1, 14, 14]}
    assert all(m.views_per_step == 8 * 5 for m in result.measurements.values())
    assert "8 images x 5 views (global 2 x 1x28x28, local 3 x 1x14x14) per step" in result_table(result).title
