"""Crafted checkpoints and exported encoders: refused with a clear error, and their code never runs.

The crafted files hold an object whose unpickling would run ``touch MARKER``; a test fails if MARKER
appears, which is what ``torch.load(weights_only=False)`` or ``pickle.load`` would do.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from contrastive_core.engine import EncoderFileError, load_encoder
from tests.engine.recipes import FIXTURE
from tests.reliability.cases import CRAFTED_CHECKPOINTS, CRAFTED_ENCODERS
from tests.reliability.parametrize import mark_suite
from tests.reliability.processes import contrastive_in_process
from tests.reliability.run_directory import interrupted_copy


class RunsCode:
    """Unpickling this runs ``touch <marker>``: the classic malicious pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _craft(form: str, path: Path, marker: Path) -> None:
    payload = {"model": RunsCode(marker), "step": 11}
    if form == "a plain pickle":
        path.write_bytes(pickle.dumps(payload))
    else:  # a torch.save file: the zip format torch writes, with the payload in its data.pkl
        torch.save(payload, path)


# torch warns that the plain pickle uses a protocol its weights-only unpickler was not made for.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("case", mark_suite(CRAFTED_CHECKPOINTS))
def test_a_crafted_checkpoint_is_refused_when_resuming(case, kill_recipe, reference_run, tmp_path):
    run_dir = interrupted_copy(reference_run, tmp_path / "run", last_checkpoint=11)
    crafted = run_dir / "pretrain" / "checkpoints" / "step-00000011" / case.file
    marker = tmp_path / "MARKER"
    _craft(case.form, crafted, marker)
    # An attacker who can write the file can write its checksum too: what then stops it is weights_only.
    sums_file = crafted.parent / "checksums.json"
    sums = json.loads(sums_file.read_text())
    sums[crafted.name] = hashlib.sha256(crafted.read_bytes()).hexdigest()
    sums_file.write_text(json.dumps(sums))

    finished = contrastive_in_process("run", str(kill_recipe), "--out", str(run_dir))
    assert finished.returncode == 1, finished.stderr
    said = " ".join(finished.stderr.split())
    assert (
        f"error: no checkpoint of this stage loads: refusing to load {crafted}: it is not a plain tensor"
        in said
    )
    assert "Traceback" not in finished.stderr
    assert not marker.exists(), "loading the checkpoint ran its code"
    assert not (run_dir / "pretrain" / "stage.json").exists()


def _rewrite_json(change: Callable[[dict], object]) -> Callable[[Path, Path], None]:
    def mutate(directory: Path, marker: Path) -> None:
        config = json.loads((directory / "encoder.json").read_text())
        change(config)  # in place
        (directory / "encoder.json").write_text(json.dumps(config))

    return mutate


def _rewrite_tensors(change: Callable[[dict], None]) -> Callable[[Path, Path], None]:
    def mutate(directory: Path, marker: Path) -> None:
        tensors = load_file(str(directory / "encoder.safetensors"))
        change(tensors)
        save_file(tensors, str(directory / "encoder.safetensors"))

    return mutate


def _first_weight(tensors: dict) -> str:
    return next(name for name in sorted(tensors) if name.endswith(".weight"))


def _write(name: str, content: bytes) -> Callable[[Path, Path], None]:
    return lambda directory, marker: (directory / name).write_bytes(content)


MUTATIONS: dict[str, Callable[[Path, Path], None]] = {
    "pickle-as-safetensors": lambda directory, marker: (directory / "encoder.safetensors").write_bytes(
        pickle.dumps({"weights": RunsCode(marker)})
    ),
    "truncated-safetensors": lambda directory, marker: (directory / "encoder.safetensors").write_bytes(
        (directory / "encoder.safetensors").read_bytes()[:100]
    ),
    "huge-header": _write("encoder.safetensors", (2**62).to_bytes(8, "little") + b"{}"),
    "empty-safetensors": _write("encoder.safetensors", b""),
    "wrong-shapes": _rewrite_tensors(
        lambda tensors: tensors.update({_first_weight(tensors): torch.zeros(3)})
    ),
    "missing-tensor": _rewrite_tensors(lambda tensors: tensors.pop(_first_weight(tensors))),
    "invalid-json": _write("encoder.json", b"{not json"),
    "not-utf8": _write("encoder.json", b"\xff\xfe{"),
    "json-list": _write("encoder.json", b"[1, 2]"),
    "wrong-format": _rewrite_json(lambda config: config.update(format="pickle")),
    "future-version": _rewrite_json(lambda config: config.update(version=99)),
    "no-encoder-table": _rewrite_json(lambda config: config.pop("encoder")),
    "import-path-type": _rewrite_json(lambda config: config.update(encoder={"type": "os.system"})),
    "bad-params": _rewrite_json(lambda config: config["encoder"].update(widths="x")),
    "absurd-widths": _rewrite_json(lambda config: config["encoder"].update(widths=[1_000_000, 1_000_000])),
    "a-hundred-thousand-layers": _rewrite_json(lambda config: config["encoder"].update(widths=[1] * 100_000)),
    "another-encoders-config": _rewrite_json(lambda config: config["encoder"].update(widths=[8, 32])),
}


@pytest.fixture
def crafted_encoder(reference_run, tmp_path) -> Callable[[str], tuple[Path, Path]]:
    """A copy of the reference run's exported encoder with the named case's fault; (directory, MARKER)."""

    def make(case_id: str) -> tuple[Path, Path]:
        directory, marker = tmp_path / "encoder", tmp_path / "MARKER"
        directory.mkdir()
        for name in ("encoder.json", "encoder.safetensors"):
            shutil.copy(reference_run / "pretrain" / name, directory / name)
        load_encoder(directory)  # the unchanged copy loads
        MUTATIONS[case_id](directory, marker)
        return directory, marker

    return make


def test_every_crafted_encoder_case_has_a_mutation():
    assert sorted(MUTATIONS) == sorted(case.id for case in CRAFTED_ENCODERS)


@pytest.mark.parametrize("case", mark_suite(CRAFTED_ENCODERS))
def test_a_crafted_encoder_is_refused_by_load_encoder(case, crafted_encoder):
    directory, marker = crafted_encoder(case.id)
    with pytest.raises(EncoderFileError) as caught:
        load_encoder(directory)
    assert case.message in str(caught.value)
    assert str(directory) in str(caught.value)
    assert not marker.exists(), "loading the encoder ran its code"


@pytest.mark.parametrize("case", mark_suite([case for case in CRAFTED_ENCODERS if case.through_stage]))
def test_a_crafted_encoder_stops_an_evaluation_stage(case, crafted_encoder, tmp_path):
    directory, marker = crafted_encoder(case.id)
    recipe = tmp_path / "evaluate.toml"
    recipe.write_text(
        f"""
[run]
seed = 0
device = "cpu"

[data]
type = "fashion_mnist"
root = "{FIXTURE}"

[[stages]]
type = "knn_eval"
k = 5
num_workers = 0
encoder = "{directory}"
"""
    )
    finished = contrastive_in_process("run", str(recipe), "--out", str(tmp_path / "run"))
    assert finished.returncode == 2, finished.stderr
    assert "error: " in finished.stderr and case.message in finished.stderr
    assert "Traceback" not in finished.stderr
    assert not marker.exists(), "loading the encoder ran its code"
    assert not (tmp_path / "run" / "knn_eval" / "stage.json").exists()
