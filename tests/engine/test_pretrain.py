"""The pretrain stage end to end: learning, resume after SIGKILL, SIGTERM, 2 processes, bf16, NaN guard."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from contrastive_core import ComponentParams, Loss, Registry, get_plugin_manager, hookimpl, validate_recipe
from contrastive_core.cli import main as cli_main
from contrastive_core.engine import load_encoder, run_recipe
from contrastive_core.run_directory import read_metrics
from contrastive_plugins.stages.pretrain import NonFiniteLossError
from tests.engine.recipes import FIXTURE, tiny_recipe

BIN = Path(sys.executable).parent
if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def write(tmp_path: Path, text: str, name: str = "recipe.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run_cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [str(BIN / "contrastive"), *args], capture_output=True, text=True, env=env, timeout=300, **kwargs
    )


def losses(run_dir: Path) -> list[float]:
    return [record["loss"] for record in read_metrics(run_dir / "pretrain" / "metrics.jsonl")]


def test_loss_goes_down_on_real_images(tmp_path):
    recipe = write(tmp_path, tiny_recipe(epochs=15, batch_size=32, lr=1.0))
    assert cli_main(["run", str(recipe), "--out", str(tmp_path / "run")]) == 0
    curve = losses(tmp_path / "run")
    assert len(curve) == 30
    assert sum(curve[-5:]) / 5 < sum(curve[:5]) / 5 - 0.1, curve
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["pretrain"]["steps"] == 30
    # The exported encoder loads through the public function and as plain tensors.
    encoder = load_encoder(tmp_path / "run" / "pretrain")
    weights = load_file(str(tmp_path / "run" / "pretrain" / "encoder.safetensors"))
    for name, tensor in encoder.state_dict().items():
        torch.testing.assert_close(tensor, weights[name], rtol=0, atol=0)
    done = json.loads((tmp_path / "run" / "pretrain" / "stage.json").read_text())
    assert done["artifacts"] == {"encoder": "encoder.safetensors", "encoder_config": "encoder.json"}


def _wait_for_checkpoint(run_dir: Path, step: int, process: subprocess.Popen, timeout: float = 120) -> None:
    target = run_dir / "pretrain" / "checkpoints" / f"step-{step:08d}"
    deadline = time.monotonic() + timeout
    while not target.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"no checkpoint {target}"
        time.sleep(0.02)


def test_resume_after_sigkill_ends_with_identical_weights(tmp_path):
    recipe = write(tmp_path, tiny_recipe(epochs=3))  # 4 steps per epoch, 12 steps
    reference = run_cli("run", str(recipe), "--out", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr

    kill_after = random.Random().randint(2, 10)
    interrupted = tmp_path / "interrupted"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [str(BIN / "contrastive"), "run", str(recipe), "--out", str(interrupted)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    _wait_for_checkpoint(interrupted, kill_after, process)
    process.kill()  # SIGKILL: no handler runs, whatever was being written is cut short
    process.wait()
    resumed = run_cli("run", str(recipe), "--out", str(interrupted))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stdout, f"killed after step {kill_after}"

    expected = load_file(str(tmp_path / "reference" / "pretrain" / "encoder.safetensors"))
    actual = load_file(str(interrupted / "pretrain" / "encoder.safetensors"))
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{name} differs (killed after step {kill_after})"
    assert losses(interrupted) == losses(tmp_path / "reference")


def test_sigterm_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    recipe = write(tmp_path, tiny_recipe(epochs=20))
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [str(BIN / "contrastive"), "run", str(recipe), "--out", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    _wait_for_checkpoint(run_dir, 3, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "stopped by SIGTERM at step" in stderr
    assert f"Resume with the same command: contrastive run {recipe} --out {run_dir}" in stderr
    stopped_at = int(stderr.split("stopped by SIGTERM at step ")[1].split()[0])
    assert (run_dir / "pretrain" / "checkpoints" / f"step-{stopped_at:08d}" / "state.pt").is_file()
    assert not (run_dir / "pretrain" / "stage.json").exists()


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    recipe = write(tmp_path, tiny_recipe(epochs=2, augmentations="none", lr=0.2))
    single = run_cli("run", str(recipe), "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        str(BIN / "torchrun"),
        "--nproc_per_node",
        "2",
        "-m",
        "contrastive_core.cli",
        "run",
        str(recipe),
        "--out",
        str(tmp_path / "two"),
    ]
    double = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert double.returncode == 0, double.stderr[-3000:]
    assert "global batch 16 = 2 processes x 8 images" in double.stdout
    assert json.loads((tmp_path / "two" / "manifest.json").read_text())["processes"] == 2
    # Same images per step, global BatchNorm, gathered negatives: the same curve up to float rounding
    # (summation order differs, and the difference grows slowly with training).
    torch.testing.assert_close(losses(tmp_path / "two"), losses(tmp_path / "one"), rtol=1e-4, atol=1e-5)
    # Both processes resume from the checkpoint (as if stopped after its last step).
    (tmp_path / "two" / "pretrain" / "stage.json").unlink()
    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout and "step 8 of 8" in resumed.stdout


def test_bf16_mixed_precision_on_cpu(tmp_path):
    recipe = write(tmp_path, tiny_recipe(epochs=1, extra_run='precision = "bf16"'))
    assert cli_main(["run", str(recipe), "--out", str(tmp_path / "run")]) == 0
    curve = losses(tmp_path / "run")
    assert len(curve) == 4 and all(value == value for value in curve)


class _NanAfterParams(ComponentParams):
    type: Literal["nan_after"]
    calls: int = 2
    """Number of finite calls before the loss turns NaN."""


class NanAfter(Loss):
    """A finite loss that becomes NaN after a number of calls."""

    name = "nan_after"
    Params = _NanAfterParams

    def __init__(self, params):
        super().__init__(params)
        self.count = 0

    def forward(self, z_a, z_b):
        self.count += 1
        loss = ((z_a - z_b) ** 2).mean()
        return loss * float("nan") if self.count > self.params.calls else loss


class _NanPlugin:
    @hookimpl
    def register_losses(self):
        return [NanAfter]


def test_nan_guard_stops_without_checkpointing_the_bad_state(tmp_path):
    manager = get_plugin_manager()
    manager.register(_NanPlugin(), name="nan_test")
    registry = Registry.from_plugin_manager(manager)
    text = tiny_recipe(epochs=3, loss='type = "nan_after"\ncalls = 5')
    recipe = validate_recipe(tomllib.loads(text), registry=registry)
    run_dir = tmp_path / "run"
    with pytest.raises(NonFiniteLossError) as caught:
        run_recipe(recipe, registry=registry, run_dir=run_dir, console=Console(file=open(os.devnull, "w")))
    message = str(caught.value)
    assert "the loss became NaN or infinite at step 6" in message
    assert "step-00000005" in message
    checkpoints = sorted(p.name for p in (run_dir / "pretrain" / "checkpoints").iterdir())
    assert checkpoints == ["step-00000004", "step-00000005"]
    assert cli_main(["validate", str(write(tmp_path, text))]) == 2  # the test loss is not installed


def test_online_knn_monitor_logs_to_metrics_and_agrees_with_knn_eval(tmp_path):
    monitor = "knn_monitor_every_epochs = 2\nknn_monitor_examples = [64, 32]"
    text = tiny_recipe(epochs=3, extra_stage=monitor) + '\n[[stages]]\ntype = "knn_eval"\n'
    recipe = write(tmp_path, text)
    assert cli_main(["run", str(recipe), "--out", str(tmp_path / "run")]) == 0
    records = read_metrics(tmp_path / "run" / "pretrain" / "metrics.jsonl")
    monitored = {record["step"]: record["knn_top1"] for record in records if "knn_top1" in record}
    assert sorted(monitored) == [8, 12]  # every 2 epochs of 4 steps, and at the end
    assert all(0.0 <= value <= 1.0 for value in monitored.values())
    # At the end the monitor sees the exported encoder on the whole fixture splits, as knn_eval does.
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert monitored[12] == pytest.approx(results["knn_eval"]["top1"])


def test_pretraining_on_jpegs_decoded_on_the_device_equals_decoding_in_workers(tmp_path):
    """The image-folder path end to end: with decode = "device" (workers read bytes, the training process
    decodes each batch in a background thread; on this CPU the same libjpeg as the workers) the run
    trains on the same images as with decode = "workers", so the loss curves are identical."""
    from torchvision.io import encode_jpeg

    from tests.datasets.reference import fashion, rgb32

    images, labels = fashion("train")
    for index in range(48):
        folder = tmp_path / "jpegs" / "train" / f"class_{int(labels[index])}"
        folder.mkdir(parents=True, exist_ok=True)
        image = torch.from_numpy(rgb32(images[index]))
        (folder / f"{index:03d}.jpg").write_bytes(encode_jpeg(image, quality=90).numpy().tobytes())
    curves = {}
    for decode in ("device", "workers"):
        text = tiny_recipe(epochs=2, batch_size=16).replace(
            'type = "fashion_mnist"', f'type = "image_folder"\nimage_size = 28\ndecode = "{decode}"'
        )
        text = text.replace(f'root = "{FIXTURE}"', f'root = "{tmp_path / "jpegs"}"')
        text = text.replace("in_channels = 1", "in_channels = 3").replace(
            "checkpoint_every_steps = 1", "checkpoint_every_steps = 1\nnum_workers = 2"
        )
        recipe = write(tmp_path, text, f"{decode}.toml")
        assert cli_main(["run", str(recipe), "--out", str(tmp_path / decode)]) == 0
        curves[decode] = losses(tmp_path / decode)
    assert len(curves["device"]) == 6
    assert curves["device"] == curves["workers"]


def test_session_steps_train_a_run_in_pieces_that_equal_one_run(tmp_path, capsys):
    """session_steps = 5 on a 12-step stage: two invocations pause (exit 130, checkpoint saved, the
    stage not marked finished), the third finishes; the loss of every step and the exported encoder
    equal those of one uninterrupted run, and every record's timing fields are there."""
    text = tiny_recipe(epochs=3, batch_size=16)
    whole = tmp_path / "whole"
    assert cli_main(["run", str(write(tmp_path, text)), "--out", str(whole)]) == 0
    pieces = tmp_path / "pieces"
    recipe = write(
        tmp_path,
        text.replace("checkpoint_every_steps = 1", "checkpoint_every_steps = 100\nsession_steps = 5"),
        "pieces.toml",
    )
    for expected_exit, last_step in ((130, 5), (130, 10), (0, 12)):
        assert cli_main(["run", str(recipe), "--out", str(pieces)]) == expected_exit
        records = read_metrics(pieces / "pretrain" / "metrics.jsonl")
        assert records[-1]["step"] == last_step
        assert (pieces / "pretrain" / "stage.json").exists() == (expected_exit == 0)
    assert "trained session_steps = 5 at step 10 of 12" in capsys.readouterr().err
    reference = read_metrics(whole / "pretrain" / "metrics.jsonl")
    assert [r["loss"] for r in records] == pytest.approx([r["loss"] for r in reference], rel=1e-6)
    assert [r["lr"] for r in records] == pytest.approx([r["lr"] for r in reference], rel=1e-9)
    assert all({"elapsed_s"} <= set(r) for r in records)
    for name, tensor in load_file(whole / "pretrain" / "encoder.safetensors").items():
        torch.testing.assert_close(load_file(pieces / "pretrain" / "encoder.safetensors")[name], tensor)


def test_a_session_that_ends_between_log_steps_logs_its_last_steps(tmp_path):
    """log_every_steps = 4 and session_steps = 5: each pause writes a record of its own, so every step's
    loss is in a record: records 4, 5 | 8, 10 | 12, each the mean of the steps since the one before."""
    every_step = tmp_path / "every_step"
    assert cli_main(["run", str(write(tmp_path, tiny_recipe(epochs=3))), "--out", str(every_step)]) == 0
    reference = losses(every_step)
    text = tiny_recipe(epochs=3).replace("log_every_steps = 1", "log_every_steps = 4\nsession_steps = 5")
    recipe, pieces = write(tmp_path, text, "pieces.toml"), tmp_path / "pieces"
    for expected_exit in (130, 130, 0):
        assert cli_main(["run", str(recipe), "--out", str(pieces)]) == expected_exit
    records = read_metrics(pieces / "pretrain" / "metrics.jsonl")
    assert [r["step"] for r in records] == [4, 5, 8, 10, 12]
    spans = [(0, 4), (4, 5), (5, 8), (8, 10), (10, 12)]
    expected = [sum(reference[first:last]) / (last - first) for first, last in spans]
    assert [r["loss"] for r in records] == pytest.approx(expected, rel=1e-5)
