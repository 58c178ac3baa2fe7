"""Bad data through ``contrastive run``: unreadable images are skipped and counted or stop the run, and a
dataset that contradicts itself or the model stops it with a clear error before training."""

from __future__ import annotations

import json
import resource
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from contrastive_plugins.datasets.idx import read_idx
from tests.datasets.crafted_images import jpeg_claiming, png_claiming, png_with_too_little_image_data
from tests.engine.recipes import FIXTURE, tiny_recipe
from tests.reliability.cases import BAD_DATA
from tests.reliability.parametrize import mark_suite
from tests.reliability.processes import BIN, ENV, Finished, contrastive_in_process

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PLAIN_IDX = FIXTURES / "fashion_mnist" / "plain"

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec; they still work (see the docs).
pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision are deprecated:DeprecationWarning"
)


def _image_folder(root: Path, on_bad_image: str, num_workers: int = 2) -> str:
    """One epoch of 4-image batches over an image folder, read by ``num_workers`` DataLoader workers."""
    text = tiny_recipe(epochs=1, batch_size=4, extra_stage=f"num_workers = {num_workers}")
    data = f'type = "image_folder"\nroot = "{root}"\nimage_size = 28\non_bad_image = "{on_bad_image}"'
    return text.replace(f'type = "fashion_mnist"\nroot = "{FIXTURE}"', data).replace(
        "in_channels = 1", "in_channels = 3"
    )


def _folder_with(tmp_path: Path, name: str, data: bytes) -> Path:
    """A 4-image folder (one batch): the bad fixture's two good PNGs, a third copy, and ``name``
    holding ``data`` in the same class folder."""
    root = tmp_path / "images"
    for source in sorted((FIXTURES / "image_folder_bad" / "train").glob("*/good.png")):
        folder = root / "train" / source.parent.name
        folder.mkdir(parents=True)
        shutil.copy(source, folder / "good.png")
    shutil.copy(root / "train" / "bag" / "good.png", root / "train" / "bag" / "good_copy.png")
    (root / "train" / "bag" / name).write_bytes(data)
    return root


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
    "png-with-too-little-image-data-skipped": lambda tmp: _image_folder(
        _folder_with(tmp, "short.png", png_with_too_little_image_data()), "skip", num_workers=0
    ),
    "png-with-too-little-image-data-stops": lambda tmp: _image_folder(
        _folder_with(tmp, "short.png", png_with_too_little_image_data()), "error"
    ),
    "jpeg-claiming-65000-x-65000-pixels": lambda tmp: _image_folder(
        _folder_with(tmp, "huge.jpg", jpeg_claiming(65000, 65000)), "error"
    ),
    "png-claiming-25000-x-25000-pixels-skipped": lambda tmp: _image_folder(
        _folder_with(tmp, "huge.png", png_claiming(25000, 25000)), "skip", num_workers=0
    ),
}

#: Cases whose file once ended the process (libpng's segmentation fault) or made it ask for gigabytes:
#: they run in a process of their own, so that a regression fails the test instead of ending pytest.
IN_A_PROCESS_OF_ITS_OWN = {
    "png-with-too-little-image-data-skipped",
    "png-with-too-little-image-data-stops",
    "jpeg-claiming-65000-x-65000-pixels",
    "png-claiming-25000-x-25000-pixels-skipped",
}


#: The private memory (RLIMIT_DATA) of each such process and of its DataLoader workers: a run of these
#: recipes needs well under 1 GiB, and a regressed 65,000 x 65,000 JPEG then fails to allocate its
#: 12.7 GB instead of filling the machine's memory.
MEMORY_LIMIT = 4 * 2**30


def _contrastive_with_a_memory_limit(*args: str) -> Finished:
    """The ``contrastive`` executable in a process of its own, its private memory capped."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))

    done = subprocess.run(
        [str(BIN / "contrastive"), *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=300,
        preexec_fn=limit,
    )
    return Finished(done.returncode, done.stdout, done.stderr)


def test_every_bad_data_case_has_a_recipe():
    assert sorted(RECIPES) == sorted(case.id for case in BAD_DATA)


@pytest.mark.parametrize("case", mark_suite(BAD_DATA))
def test_bad_data_is_never_silent(case, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPES[case.id](tmp_path))
    run_dir = tmp_path / "run"
    run = _contrastive_with_a_memory_limit if case.id in IN_A_PROCESS_OF_ITS_OWN else contrastive_in_process
    finished = run("run", str(recipe), "--out", str(run_dir))
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
