"""Bad data through ``contrastive run``: unreadable images are skipped and counted or stop the run, and a
dataset that contradicts itself or the model stops it with a clear error before training."""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from contrastive_plugins.datasets.idx import read_idx
from tests.engine.recipes import FIXTURE, tiny_recipe
from tests.reliability.cases import BAD_DATA
from tests.reliability.parametrize import mark_suite
from tests.reliability.processes import contrastive_in_process

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PLAIN_IDX = FIXTURES / "fashion_mnist" / "plain"

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec; they still work (see the docs).
pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision are deprecated:DeprecationWarning"
)


def _image_folder(root: Path, on_bad_image: str) -> str:
    """One epoch of 4-image batches over an image folder, read by 2 DataLoader workers."""
    text = tiny_recipe(epochs=1, batch_size=4, extra_stage="num_workers = 2")
    data = f'type = "image_folder"\nroot = "{root}"\nimage_size = 28\non_bad_image = "{on_bad_image}"'
    return text.replace(f'type = "fashion_mnist"\nroot = "{FIXTURE}"', data).replace(
        "in_channels = 1", "in_channels = 3"
    )


def _idx(dtype_code: int, array) -> bytes:
    """The IDX bytes of a uint8 ``array`` (header: magic, element type, dimensions, sizes)."""
    header = struct.pack(">BBBB", 0, 0, dtype_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.numpy().tobytes()


def _fashion_mnist_copy(tmp_path: Path, change: Callable[[Path], None]) -> str:
    root = tmp_path / "fashion_mnist"
    shutil.copytree(PLAIN_IDX, root)
    change(root)
    return tiny_recipe(epochs=1).replace(f'root = "{FIXTURE}"', f'root = "{root}"')


def _labels_of_the_test_split(root: Path) -> None:
    shutil.copy(root / "t10k-labels-idx1-ubyte", root / "train-labels-idx1-ubyte")


def _a_label_out_of_range(root: Path) -> None:
    labels = read_idx(root / "train-labels-idx1-ubyte")
    labels[0] = 10
    (root / "train-labels-idx1-ubyte").write_bytes(_idx(0x08, labels))


def _images_of_another_shape(root: Path) -> None:
    images = read_idx(root / "train-images-idx3-ubyte")[:, :, :27].contiguous()
    (root / "train-images-idx3-ubyte").write_bytes(_idx(0x08, images))


RECIPES: dict[str, Callable[[Path], str]] = {
    "skip-bad-images": lambda tmp: _image_folder(FIXTURES / "image_folder_bad", "skip"),
    "stop-on-bad-images": lambda tmp: _image_folder(FIXTURES / "image_folder_bad", "error"),
    "labels-of-another-split": lambda tmp: _fashion_mnist_copy(tmp, _labels_of_the_test_split),
    "label-out-of-range": lambda tmp: _fashion_mnist_copy(tmp, _a_label_out_of_range),
    "images-of-another-shape": lambda tmp: _fashion_mnist_copy(tmp, _images_of_another_shape),
    "channels-do-not-fit-the-encoder": lambda tmp: tiny_recipe(epochs=1).replace(
        "in_channels = 1", "in_channels = 3"
    ),
    "mixed-image-sizes": lambda tmp: _image_folder(FIXTURES / "image_folder", "error"),
}


def test_every_bad_data_case_has_a_recipe():
    assert sorted(RECIPES) == sorted(case.id for case in BAD_DATA)


@pytest.mark.parametrize("case", mark_suite(BAD_DATA))
def test_bad_data_is_never_silent(case, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPES[case.id](tmp_path))
    run_dir = tmp_path / "run"
    finished = contrastive_in_process("run", str(recipe), "--out", str(run_dir))
    assert finished.returncode == case.exit_code, finished.stderr
    assert "Traceback" not in finished.stderr
    if case.exit_code == 0:
        assert case.message in " ".join(finished.stdout.split())
        return
    assert "error: " in finished.stderr and case.message in finished.stderr
    assert not (run_dir / "pretrain" / "checkpoints").exists()
    if case.before_training:
        assert not (run_dir / "pretrain" / "metrics.jsonl").exists()


def test_the_skipped_count_is_recorded_in_the_results(tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPES["skip-bad-images"](tmp_path))
    finished = contrastive_in_process("run", str(recipe), "--out", str(tmp_path / "run"))
    assert finished.returncode == 0, finished.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["pretrain"]["skipped_images"] == 2
    for name in ("not_an_image.jpg", "truncated.jpg"):
        assert name in finished.stdout
