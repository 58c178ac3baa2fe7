"""Odd inputs through the command line: numbers of the wrong kind, implausible temperatures, a finished
stage's artifacts deleted or full of NaN, previews asked for too much, and a folder of unreadable images.

Each is stopped with one line naming the key or file and what to do (or, for a value that may be meant,
a warning and the run as asked), never a traceback, a crash or a silently wrong result.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from contrastive_core.cli import main
from contrastive_core.recipes import dumps
from tests.engine.recipes import FIXTURE, tiny_recipe
from tests.reliability.cases import ODD_INPUTS
from tests.reliability.interrupted_run import KILL_RECIPE
from tests.reliability.parametrize import mark_suite
from tests.reliability.processes import Finished
from tests.reliability.run_directory import assert_same_results

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec; they still work (see the docs).
pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision are deprecated:DeprecationWarning"
)


def _command(*args: str) -> Finished:
    """``contrastive_core.cli.main`` in this process, as ``contrastive_in_process`` runs it, and also for
    argparse's usage errors, which leave through SystemExit."""
    stdout, stderr = io.StringIO(), io.StringIO()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = main(list(args))
            except SystemExit as stopped:
                code = int(stopped.code)
    finally:
        torch.set_num_threads(threads)
    return Finished(code, stdout.getvalue(), stderr.getvalue())


class Setting:
    """The temporary folder of one case, the kill tests' recipe and its finished reference run."""

    def __init__(self, kill_recipe: Path, reference_run: Path, tmp_path: Path) -> None:
        self.kill_recipe, self.reference_run, self.tmp_path = kill_recipe, reference_run, tmp_path
        self.run_dir = tmp_path / "run"

    def recipe(self, changes: dict[tuple, Any]) -> Path:
        """The kill tests' recipe with ``changes`` (path -> value), written as TOML."""
        data = tomllib.loads(KILL_RECIPE)
        for path, value in changes.items():
            node = data
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value
        file = self.tmp_path / "recipe.toml"
        file.write_text(dumps(data), encoding="utf-8")
        return file


def _validate(changes: dict[tuple, Any], *also: str) -> Callable[[Setting], Finished]:
    def run(setting: Setting) -> Finished:
        finished = _command("validate", str(setting.recipe(changes)))
        said = " ".join(finished.stderr.split())
        for fragment in also:
            assert fragment in said
        return finished

    return run


def _integer_for_a_boolean(setting: Setting) -> Finished:
    changes = {("run", "deterministic"): 1, ("stages", 0, "epochs"): 3.0, ("optimizer", "lr"): 1}
    finished = _validate(changes, "stages[0].epochs: expected an integer, got 3.0; write 3")(setting)
    assert "optimizer.lr" not in finished.stderr  # an integer for a float is a float
    assert "2 problems" in finished.stderr
    return finished


def _too_small_temperature(setting: Setting) -> Finished:
    return _validate({("loss", "temperature"): 1e-9}, "use at least 0.0001", "(got 1e-09)")(setting)


def _unusual_temperature(setting: Setting) -> Finished:
    validated = _command("validate", str(setting.recipe({("loss", "temperature"): 0.001})))
    assert validated.returncode == 0, validated.stderr
    recipe = setting.tmp_path / "short.toml"
    recipe.write_text(tiny_recipe(epochs=1, loss='type = "nt_xent"\ntemperature = 0.001'))
    ran = _command("run", str(recipe), "--out", str(setting.run_dir))
    assert ran.returncode == 0, ran.stderr
    assert (setting.run_dir / "pretrain" / "encoder.safetensors").is_file()
    for finished in (validated, ran):
        assert "warning: loss.temperature: 0.001 is outside the usual range" in " ".join(
            finished.stdout.split()
        )
    return validated


def _non_finite_encoder(setting: Setting) -> Finished:
    directory = setting.tmp_path / "encoder"
    directory.mkdir()
    shutil.copy(setting.reference_run / "pretrain" / "encoder.json", directory)
    weights = load_file(str(setting.reference_run / "pretrain" / "encoder.safetensors"))
    save_file(
        {
            name: torch.full_like(t, float("nan")) if t.is_floating_point() else t
            for name, t in weights.items()
        },
        str(directory / "encoder.safetensors"),
    )
    recipe = setting.tmp_path / "evaluate.toml"
    recipe.write_text(
        f'[run]\nseed = 0\ndevice = "cpu"\n\n[data]\ntype = "fashion_mnist"\nroot = "{FIXTURE}"\n\n'
        f'[[stages]]\ntype = "knn_eval"\nk = 5\nnum_workers = 0\nencoder = "{directory}"\n'
    )
    finished = _command("run", str(recipe), "--out", str(setting.run_dir))
    said = " ".join(finished.stderr.split())
    assert f"error: {directory / 'encoder.safetensors'}: " in said
    assert "train it again with a lower learning rate" in said and "a bug" not in said
    assert not (setting.run_dir / "knn_eval" / "stage.json").exists()
    return finished


def _deleted_encoder(setting: Setting) -> Finished:
    shutil.copytree(setting.reference_run, setting.run_dir)
    results = json.loads((setting.run_dir / "results.json").read_text())
    (setting.run_dir / "pretrain" / "encoder.safetensors").unlink()
    finished = _command("run", str(setting.kill_recipe), "--out", str(setting.run_dir))
    said = " ".join(finished.stdout.split())
    assert f"{setting.run_dir / 'pretrain' / 'encoder.safetensors'} is missing" in said
    assert "resuming from" in said and "step 12 of 12" in said  # no step trained again
    assert "stage 2/2 knn_eval: finished earlier, skipped" in said
    assert json.loads((setting.run_dir / "results.json").read_text()) == results  # throughput too
    assert_same_results(setting.run_dir, setting.reference_run)
    return finished


def _deleted_encoder_and_checkpoints(setting: Setting) -> Finished:
    shutil.copytree(setting.reference_run, setting.run_dir)
    pretrain = setting.run_dir / "pretrain"
    (pretrain / "encoder.json").unlink()
    shutil.rmtree(pretrain / "checkpoints")
    marker = json.loads((pretrain / "stage.json").read_text())
    marker.pop("checksums")  # as written before markers recorded them: the new encoder cannot be compared
    (pretrain / "stage.json").write_text(json.dumps(marker))
    (setting.run_dir / "knn_eval" / "left-by-the-old-run").write_text("")
    finished = _command("run", str(setting.kill_recipe), "--out", str(setting.run_dir))
    said = " ".join(finished.stdout.split())
    assert "pretrain epoch 3/3 step 12/12" in said  # trained again, from the start
    assert "the later stages that had finished run again" in said
    assert "stage 2/2 knn_eval: finished earlier, but from the artifacts of stage 'pretrain'" in said
    assert not (setting.run_dir / "knn_eval" / "left-by-the-old-run").exists()
    assert "checksums" in json.loads((pretrain / "stage.json").read_text())
    assert_same_results(setting.run_dir, setting.reference_run)
    return finished


def _preview_brackets(setting: Setting) -> Finished:
    recipe = setting.tmp_path / "plain.toml"
    recipe.write_text(
        f'[run]\nseed = 0\n\n[data]\ntype = "fashion_mnist"\nroot = "{FIXTURE}"\n\n'
        '[model.encoder]\ntype = "small_cnn"\nin_channels = 1\n\n[[stages]]\ntype = "knn_eval"\n'
    )
    out = setting.tmp_path / "grid[1].png"
    finished = _command("preview", str(recipe), "--n", "2", "--views", "1", "--out", str(out))
    assert out.is_file()
    assert f"wrote {out} (2 images" in " ".join(finished.stdout.split())
    return finished


def _preview_too_many_images(setting: Setting) -> Finished:
    views = _command("preview", str(setting.kill_recipe), "--views", "1000")
    assert views.returncode == 2 and "argument --views: at most 64 views, got 1000" in views.stderr
    return _command("preview", str(setting.kill_recipe), "--n", "100000000")


def _preview_too_many_pixels(setting: Setting) -> Finished:
    out = setting.tmp_path / "huge.png"
    args = ("--n", "64", "--views", "30", "--scale", "64", "--out", str(out))
    finished = _command("preview", str(setting.kill_recipe), *args)
    assert not out.exists()
    return finished


def _all_images_skipped(setting: Setting) -> Finished:
    root = setting.tmp_path / "images"
    for label in ("bag", "trouser"):
        (root / "train" / label).mkdir(parents=True)
        for name in ("a.jpg", "b.png"):
            (root / "train" / label / name).write_bytes(b"not an image")
    text = tiny_recipe(epochs=1, batch_size=4, extra_stage="num_workers = 0")
    data = f'type = "image_folder"\nroot = "{root}"\nimage_size = 28\non_bad_image = "skip"'
    text = text.replace(f'type = "fashion_mnist"\nroot = "{FIXTURE}"', data).replace(
        "in_channels = 1", "in_channels = 3"
    )
    recipe = setting.tmp_path / "recipe.toml"
    recipe.write_text(text)
    finished = _command("run", str(recipe), "--out", str(setting.run_dir))
    assert "set on_bad_image" not in finished.stderr
    assert "the 4 files of its split" in finished.stderr
    return finished


COMMANDS: dict[str, Callable[[Setting], Finished]] = {
    "string-for-an-integer": _validate({("stages", 0, "batch_size"): "32"}),
    "string-in-an-array": _validate({("augmentations", 0, "scale"): ["0.3", 1.0]}),
    "integer-for-a-boolean": _integer_for_a_boolean,
    "temperature-that-cannot-train": _too_small_temperature,
    "unusual-temperature": _unusual_temperature,
    "non-finite-encoder": _non_finite_encoder,
    "deleted-encoder": _deleted_encoder,
    "deleted-encoder-and-checkpoints": _deleted_encoder_and_checkpoints,
    "preview-brackets": _preview_brackets,
    "preview-too-many-images": _preview_too_many_images,
    "preview-too-many-pixels": _preview_too_many_pixels,
    "all-images-skipped": _all_images_skipped,
}


def test_every_odd_input_case_has_a_command():
    assert sorted(COMMANDS) == sorted(case.id for case in ODD_INPUTS)


@pytest.mark.parametrize("case", mark_suite(ODD_INPUTS))
def test_an_odd_input_gets_a_clear_answer(case, kill_recipe, reference_run, tmp_path):
    finished = COMMANDS[case.id](Setting(kill_recipe, reference_run, tmp_path))
    assert finished.returncode == case.exit_code, finished.stderr
    assert "Traceback" not in finished.stderr
    said = " ".join((finished.stdout + finished.stderr).split())
    assert case.message in said
    if case.exit_code == 2:  # one line of ours, or argparse's usage and its error line
        assert finished.stderr.startswith(("error: ", "usage: "))
