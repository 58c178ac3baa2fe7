"""Pretraining on real photos of their own sizes through the CLI: the photo fixture as an image folder.

The pretrain stage reads whole photos (batched as padded canvases with their sizes, see
contrastive_core.engine.ImageBatch), the kNN stage after it the centre-crop evaluation views of the
same folder; `contrastive preview` shows the photos and their views.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torchvision.io import decode_png, read_file

from contrastive_core import build, default_registry
from contrastive_core.cli import main as cli_main
from contrastive_core.reports import PADDING
from contrastive_core.run_directory import read_metrics
from tests.reliability.processes import contrastive

pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision are deprecated:DeprecationWarning"
)

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"

FIRST_OPS = """
[[augmentations]]
type = "random_resized_crop"
size = 32

[[augmentations]]
type = "horizontal_flip"
"""


def photo_recipe(*, decode: str = "workers", first_ops: str = FIRST_OPS, extra_stage: str = "") -> str:
    """SimCLR with a tiny CNN on the 30 training photos (2 epochs of 3 steps), then kNN on the 6 test
    photos; 32 px views, evaluation views of 40 px (resized to 46, centre 40)."""
    return f"""
[run]
seed = 0
device = "cpu"

[data]
type = "image_folder"
root = "{PHOTOS}"
image_size = 40
decode = "{decode}"
{first_ops}
[[augmentations]]
type = "color_jitter"
strength = 0.5

[[augmentations]]
type = "random_grayscale"

[[augmentations]]
type = "normalize"

[model.encoder]
type = "small_cnn"
in_channels = 3
widths = [8, 16]
feature_dim = 16

[model.head]
type = "mlp"
hidden_dim = 32
out_dim = 16

[method]
type = "simclr"

[loss]
type = "nt_xent"
temperature = 0.5

[optimizer]
type = "sgd"
lr = 0.1

[[stages]]
type = "pretrain"
epochs = 2
batch_size = 10
num_workers = 2
log_every_steps = 1
checkpoint_every_steps = 100
{extra_stage}

[[stages]]
type = "knn_eval"
k = 5
num_workers = 0
eval_batch_size = 8
"""


def write(tmp_path: Path, text: str, name: str = "photos.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def losses(run_dir: Path) -> list[float]:
    return [record["loss"] for record in read_metrics(run_dir / "pretrain" / "metrics.jsonl")]


@pytest.mark.slow  # two runs with their kNN stages
def test_pretraining_on_photos_is_the_same_wherever_they_are_decoded(tmp_path):
    """decode = "device" (the training process decodes each batch, photos of one size together, and pads
    it into a canvas; on this CPU the same libjpeg as the workers) trains on the same canvases as
    decode = "workers", so the loss curves are identical; the kNN stage then reads the evaluation views."""
    curves = {}
    for decode in ("device", "workers"):
        recipe = write(tmp_path, photo_recipe(decode=decode), f"{decode}.toml")
        assert cli_main(["run", str(recipe), "--out", str(tmp_path / decode)]) == 0
        curves[decode] = losses(tmp_path / decode)
        results = json.loads((tmp_path / decode / "results.json").read_text())
        assert results["pretrain"]["steps"] == 6
        assert 0.0 <= results["knn_eval"]["top1"] <= 1.0
    assert len(curves["device"]) == 6 and all(torch.isfinite(torch.tensor(curves["device"])))
    assert curves["device"] == curves["workers"]


def test_pretraining_on_photos_with_gradient_caching(tmp_path):
    recipe = write(tmp_path, photo_recipe(extra_stage="micro_batch_size = 4\nmax_steps = 2"))
    assert cli_main(["run", str(recipe), "--out", str(tmp_path / "run")]) == 0
    assert len(losses(tmp_path / "run")) == 2


def test_a_pipeline_that_does_not_start_with_the_crop_is_refused_before_training(tmp_path):
    flip_first = """
[[augmentations]]
type = "horizontal_flip"

[[augmentations]]
type = "random_resized_crop"
size = 32
"""
    recipe = write(tmp_path, photo_recipe(first_ops=flip_first))
    stopped = contrastive("run", str(recipe), "--out", str(tmp_path / "run"))
    assert stopped.returncode == 2, stopped.stderr
    said = " ".join(stopped.stderr.split())
    assert "augmentations[0]: view group 'global' starts with 'horizontal_flip'" in said
    assert 'or set data.train_images = "square"' in said and "Traceback" not in stopped.stderr
    assert not (tmp_path / "run" / "pretrain" / "metrics.jsonl").exists()
    # With squares of one size, the same list trains.
    squares = recipe.read_text().replace("image_size = 40\n", 'image_size = 40\ntrain_images = "square"\n')
    recipe.write_text(squares.replace("epochs = 2", "epochs = 1\nmax_steps = 1"))
    assert cli_main(["run", str(recipe), "--out", str(tmp_path / "squares")]) == 0


def test_preview_shows_each_photo_whole_next_to_views_cropped_from_it(tmp_path, capsys):
    recipe, out = write(tmp_path, photo_recipe()), tmp_path / "preview.png"
    assert (
        cli_main(["preview", str(recipe), "--n", "3", "--views", "2", "--scale", "1", "--out", str(out)]) == 0
    )
    assert (
        f"wrote {out} (3 images from image_folder 'train', each followed by 2 views"
        in capsys.readouterr().out
    )
    grid = decode_png(read_file(str(out)))
    # Positions round(linspace(0, 29, 3)) = 0, 14, 29 of the split; the largest photo sets the cell.
    split = build("dataset", {"type": "image_folder", "root": str(PHOTOS)}, registry=default_registry())
    photos = [split.training_split("train")[index][0] for index in (0, 14, 29)]
    cell_height = max(photo.shape[1] for photo in photos)
    cell_width = max(photo.shape[2] for photo in photos)
    assert grid.shape == (3, 3 * cell_height + 4 * PADDING, 3 * cell_width + 4 * PADDING)
    for row, photo in enumerate(photos):
        height, width = photo.shape[1:]
        top = PADDING + row * (cell_height + PADDING) + (cell_height - height) // 2
        left = PADDING + (cell_width - width) // 2
        assert torch.equal(grid[:, top : top + height, left : left + width], photo)
