"""`contrastive preview`: a PNG grid of real fixture images and their views from the recipe's pipeline."""

from __future__ import annotations

import torch
from torchvision.io import decode_png, read_file

from contrastive_core import cli
from contrastive_core.engine import build_pipeline
from contrastive_core.reports import PADDING
from tests.datasets.crafted_images import png_with_too_little_image_data
from tests.datasets.reference import FIXTURES as FIXTURES_ROOT
from tests.datasets.reference import read_uint8_idx
from tests.engine.recipes import FIXTURE, tiny_recipe
from tests.reliability.processes import contrastive

SIDE = 28  # Fashion-MNIST images and the tiny recipe's crops are 28x28


def fixture_train_images() -> torch.Tensor:
    """The fixture's 64 training images (64, 28, 28) uint8, read with the tests' own IDX reader."""
    return torch.from_numpy(read_uint8_idx(FIXTURE / "train-images-idx3-ubyte.gz").copy())


def read_png(path) -> torch.Tensor:
    return decode_png(read_file(str(path)))


def cell(grid: torch.Tensor, row: int, column: int, side: int = SIDE) -> torch.Tensor:
    """The image in a grid cell (1, side, side); every cell is side x side here, after PADDING pixels."""
    top, left = PADDING + row * (side + PADDING), PADDING + column * (side + PADDING)
    return grid[:, top : top + side, left : left + side]


def write_recipe(tmp_path, **options) -> str:
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_recipe(**options))
    return str(path)


def test_grid_holds_the_fixture_images_and_the_pipelines_views(tmp_path, capsys):
    recipe, out = write_recipe(tmp_path), tmp_path / "grid.png"
    assert cli.main(["preview", recipe, "--n", "5", "--views", "3", "--scale", "1", "--out", str(out)]) == 0
    assert (
        f"wrote {out} (5 images from fashion_mnist 'train', each followed by 3 views"
        in capsys.readouterr().out
    )

    grid = read_png(out)
    # 5 rows (images) x 4 columns (the image, then 3 views) of 28-pixel cells with 2-pixel padding.
    assert grid.shape == (1, 5 * SIDE + 6 * PADDING, 4 * SIDE + 5 * PADDING)
    assert grid[:, :PADDING].eq(255).all() and grid[:, :, :PADDING].eq(255).all()  # white border

    # Rows show images spread evenly over the 64-image split: positions round(linspace(0, 63, 5)).
    images = fixture_train_images()
    positions = [0, 16, 32, 47, 63]
    for row, position in enumerate(positions):
        assert torch.equal(cell(grid, row, 0)[0], images[position])

    # The views are the recipe's pipeline (as built for training) applied with the run's seed.
    pipeline = build_pipeline(
        [{"type": "random_resized_crop", "size": 28, "scale": [0.3, 1.0]}, {"type": "horizontal_flip"}]
    )
    batch = images[positions].unsqueeze(1)  # (5, 1, 28, 28)
    expected = pipeline.views(batch, 3, torch.Generator().manual_seed(0))
    for view_index, views in enumerate(expected):
        shown = torch.stack([cell(grid, row, 1 + view_index) for row in range(5)]).float()
        assert (shown - views.mul(255)).abs().max() <= 0.5 + 1e-3  # only the rounding to 0-255
    assert not torch.equal(cell(grid, 0, 1), cell(grid, 0, 0))  # a crop is not the image


def test_default_grid_is_eight_rows_of_an_image_and_four_views_enlarged_to_96_pixels(tmp_path):
    out = tmp_path / "preview.png"
    assert cli.main(["preview", write_recipe(tmp_path), "--out", str(out)]) == 0
    enlarged = SIDE * 4  # the smallest whole factor that makes a 28-pixel image at least 96 pixels high
    grid = read_png(out)
    assert grid.shape == (1, 8 * enlarged + 9 * PADDING, 5 * enlarged + 6 * PADDING)
    first = cell(grid, 0, 0, side=enlarged)[0]
    assert torch.equal(first, fixture_train_images()[0].repeat_interleave(4, 0).repeat_interleave(4, 1))


def test_trailing_normalize_is_undone_for_display(tmp_path):
    """A pipeline of only `normalize` (mean 0.5, std 0.25) must show views identical to the images."""
    out = tmp_path / "normalized.png"
    recipe = write_recipe(tmp_path, augmentations="normalize")
    assert cli.main(["preview", recipe, "--n", "3", "--views", "2", "--scale", "1", "--out", str(out)]) == 0
    grid = read_png(out)
    for row in range(3):
        for column in (1, 2):
            difference = cell(grid, row, column).int() - cell(grid, row, 0).int()
            assert difference.abs().max() <= 1  # float round trip, then rounding to 0-255


def test_unknown_split_is_reported_with_the_available_splits(tmp_path, capsys):
    code = cli.main(
        ["preview", write_recipe(tmp_path), "--split", "unlabeled", "--out", str(tmp_path / "x.png")]
    )
    assert code == 2
    assert (
        "dataset 'fashion_mnist' has no split 'unlabeled'; its splits: train, test" in capsys.readouterr().err
    )
    assert not (tmp_path / "x.png").exists()


def test_preview_names_a_png_that_crashed_the_decoder_or_skips_it(tmp_path):
    """The PNG whose short image data made libpng end the process (issue 19); in a process of its own,
    so that a regression fails this test instead of ending pytest."""
    folder = tmp_path / "images" / "train" / "bag"
    folder.mkdir(parents=True)
    good = FIXTURES_ROOT / "image_folder" / "train" / "bag" / "00023.png"
    for name in ("a.png", "c.png"):
        (folder / name).write_bytes(good.read_bytes())
    (folder / "b_short.png").write_bytes(png_with_too_little_image_data())
    data = f'type = "image_folder"\nroot = "{tmp_path / "images"}"\nimage_size = 28'
    text = tiny_recipe().replace(f'type = "fashion_mnist"\nroot = "{FIXTURE}"', data)
    recipe = tmp_path / "images.toml"
    recipe.write_text(text.replace("in_channels = 1", "in_channels = 3"))

    out = tmp_path / "preview.png"
    stopped = contrastive("preview", str(recipe), "--n", "3", "--out", str(out))
    assert stopped.returncode == 2, stopped.stderr
    said = " ".join(stopped.stderr.split())
    assert f"error: {folder / 'b_short.png'}: not a readable image (the PNG image data is too short" in said
    assert "Traceback" not in stopped.stderr and not out.exists()

    recipe.write_text(recipe.read_text().replace("image_size = 28", 'image_size = 28\non_bad_image = "skip"'))
    skipped = contrastive("preview", str(recipe), "--n", "3", "--out", str(out))
    assert skipped.returncode == 0, skipped.stderr
    assert "b_short.png" in skipped.stderr and read_png(out).shape[0] == 3
