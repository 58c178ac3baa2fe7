"""image_folder on the PNG/JPEG fixtures: classes, decoding to RGB squares, bad and missing files.

The decoding tests read the evaluation split with ``eval_crop_fraction = 1`` (the whole shorter side:
the centre square), so that a 32 x 32 fixture image comes back exactly; the evaluation crop and the
whole photos of pretraining are tested on real photos in test_image_folder_photos.py.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch

from contrastive_core import RecipeError
from contrastive_plugins.datasets.errors import BadImageError, DatasetNotFoundError, UnknownSplitError

from .reference import FIXTURES, fashion, rgb32

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec; they still work (see the docs).
pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision are deprecated:DeprecationWarning"
)

ROOT = FIXTURES / "image_folder"
BAD_ROOT = FIXTURES / "image_folder_bad"
#: The evaluation view's centre square of the whole shorter side, which keeps a 32 x 32 image as it is.
SQUARE = {"eval_crop_fraction": 1.0}


def item_by_name(split, name):
    (position,) = [i for i, path in enumerate(split.files) if path.name == name]
    return split[position]


def test_classes_are_the_sorted_training_folders(make_dataset):
    dataset = make_dataset(type="image_folder", root=str(ROOT))
    assert dataset.classes == ["ankle_boot", "bag", "trouser"]
    assert dataset.num_classes == 3
    assert dataset.splits == ("train", "test")
    assert dataset.tensors("train") is None  # read by workers, not held in memory


def test_train_split_lists_every_image_with_its_class(make_dataset):
    split = make_dataset(type="image_folder", root=str(ROOT), image_size=32).split("train")
    names = [f"{path.parent.name}/{path.name}" for path in split.files]
    assert names == [
        "ankle_boot/00000.png", "ankle_boot/00011.jpg",
        "bag/00023.png", "bag/00035.jpg", "bag/00057_wide.png",
        "trouser/00016.png", "trouser/00021.jpg", "trouser/00038_grey.png",
    ]  # fmt: skip
    assert split.labels.tolist() == [0, 0, 1, 1, 1, 2, 2, 2]
    for index in range(len(split)):
        image, label = split[index]
        assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)
        assert label == split.labels[index]


def test_png_is_decoded_exactly_and_jpeg_closely(make_dataset):
    split = make_dataset(type="image_folder", root=str(ROOT), image_size=32, **SQUARE).split("train")
    images, _ = fashion("train")
    png, label = item_by_name(split, "00023.png")
    assert torch.equal(png, torch.from_numpy(rgb32(images[23]))) and label == 1
    jpeg, _ = item_by_name(split, "00035.jpg")
    error = (jpeg.float() - torch.from_numpy(rgb32(images[35])).float()).abs().mean()
    # Chroma subsampling blurs the fixture's strongly different colour planes (error ~12 here); any
    # other image of the fixture is more than 30 away.
    assert error < 20


def test_wide_image_is_centre_cropped_and_grey_image_gets_three_equal_channels(make_dataset):
    split = make_dataset(type="image_folder", root=str(ROOT), image_size=32, **SQUARE).split("train")
    images, _ = fashion("train")
    wide, _ = item_by_name(split, "00057_wide.png")
    assert torch.equal(wide, torch.from_numpy(rgb32(images[57])))
    grey, _ = item_by_name(split, "00038_grey.png")
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    assert grey.float().mean() == pytest.approx(float(images[38].mean()), abs=3)


def test_shorter_side_is_resized_then_centre_cropped(make_dataset):
    split = make_dataset(type="image_folder", root=str(ROOT), image_size=16, **SQUARE).split("train")
    wide, _ = item_by_name(split, "00057_wide.png")  # 32x48 -> 16x24 -> centre 16x16
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(rgb32(fashion("train")[0][57])).float()[None],
        size=(16, 16),
        mode="bilinear",
        antialias=True,
    )[0]
    assert wide.shape == (3, 16, 16)
    # Red and blue are 0 at the image border, as is the wide image's padding, so the resampling filter
    # sees the same values across the crop edge (green is 255 there); torchvision's uint8 resampling
    # rounds differently from float interpolate, hence the small tolerance.
    assert (wide.float() - expected)[[0, 2]].abs().max() <= 3


def test_test_split_reads_the_val_folder_with_training_class_indices(make_dataset):
    split = make_dataset(type="image_folder", root=str(ROOT), image_size=32, **SQUARE).split("test")
    images, labels = fashion("test")
    assert [path.name for path in split.files] == ["00000.png", "00018.png", "00002.png"]
    assert split.labels.tolist() == [0, 1, 2]
    assert labels[[0, 18, 2]].tolist() == [9, 8, 1]  # ankle boot, bag, trouser
    assert torch.equal(split[1][0], torch.from_numpy(rgb32(images[18])))


def test_bad_images_raise_an_error_naming_the_file_by_default(make_dataset):
    split = make_dataset(type="image_folder", root=str(BAD_ROOT), image_size=32).split("train")
    assert [path.name for path in split.files] == [
        "good.png",
        "not_an_image.jpg",
        "truncated.jpg",
        "good.png",
    ]
    assert split[0][0].shape == (3, 32, 32)
    with pytest.raises(
        BadImageError, match=r"not_an_image\.jpg: not a readable image \(Unsupported image file.*on_bad_image"
    ):
        split[1]
    with pytest.raises(
        BadImageError, match=r"truncated\.jpg: not a readable image \(Image is incomplete or truncated\)"
    ):
        split[2]


def test_skipped_bad_images_are_counted_and_replaced_by_the_next_readable_one(make_dataset):
    split = make_dataset(
        type="image_folder", root=str(BAD_ROOT), image_size=32, on_bad_image="skip", **SQUARE
    ).split("train")
    images, _ = fashion("train")
    with pytest.warns(UserWarning) as warned:
        image, label = split[1]
    assert [
        str(warning.message).split(": ")[0].rsplit("/", 1)[-1]
        for warning in warned
        if warning.category is UserWarning
    ] == [
        "not_an_image.jpg",
        "truncated.jpg",
    ]
    assert split.skipped == 2  # both bad files of the bag folder were tried before trouser/good.png
    assert label == 1 and torch.equal(image, torch.from_numpy(rgb32(images[16])))  # trouser/good.png
    items = [split[index] for index in range(len(split))]
    assert split.skipped == 2  # known bad files are not decoded (or counted) again
    assert [label for _, label in items] == [0, 1, 1, 1]


def test_a_split_of_only_bad_images_raises(tmp_path, make_dataset):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "empty.png").write_bytes(b"")
    split = make_dataset(type="image_folder", root=str(tmp_path), on_bad_image="skip").split("train")
    with (
        pytest.warns(UserWarning, match="empty file"),
        pytest.raises(BadImageError, match="neither is any other of the 1 files of its split"),
    ):
        split[0]


def test_missing_split_folders_and_unknown_splits_are_reported(make_dataset, tmp_path):
    dataset = make_dataset(type="image_folder", root=str(ROOT), test_dir="test")
    with pytest.raises(DatasetNotFoundError, match=f"{ROOT}/test/<class>/<image>") as caught:
        dataset.split("test")
    assert "set test_dir" in str(caught.value)
    with pytest.raises(UnknownSplitError, match="Valid splits: train, test"):
        dataset.split("val")
    with pytest.raises(DatasetNotFoundError, match=f"{tmp_path}/train/<class>/<image>"):
        _ = make_dataset(type="image_folder", root=str(tmp_path)).num_classes


def test_a_test_class_unknown_to_training_is_reported(make_dataset, tmp_path):
    for split, name in (("train", "cat"), ("val", "dog")):
        (tmp_path / split / name).mkdir(parents=True)
        (tmp_path / split / name / "a.png").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="dog has no counterpart in the training split"):
        make_dataset(type="image_folder", root=str(tmp_path)).split("test")


def test_hidden_and_non_image_files_are_ignored(make_dataset, tmp_path):
    folder = tmp_path / "train" / "cat"
    folder.mkdir(parents=True)
    for name in ("._resource_fork.jpg", "notes.txt", "image.PNG"):
        (folder / name).write_bytes(np.zeros(4, dtype=np.uint8).tobytes())
    split = make_dataset(type="image_folder", root=str(tmp_path)).split("train")
    assert [path.name for path in split.files] == ["image.PNG"]


def test_image_size_must_be_positive(make_dataset):
    with pytest.raises(RecipeError, match="image_size"):
        make_dataset(type="image_folder", root=str(ROOT), image_size=0)


def sixteen_bit_grey_png(values: np.ndarray) -> bytes:
    """A 16-bit greyscale PNG of ``values`` (H, W), written by hand: torchvision encodes 8 bits only."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = values.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)  # filter byte 0 per row
    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_sixteen_bit_png_is_scaled_to_uint8(make_dataset, tmp_path):
    (tmp_path / "train" / "deep").mkdir(parents=True)
    values = np.array([[0, 0x0100], [0x8000, 0xFFFF]])
    (tmp_path / "train" / "deep" / "a.png").write_bytes(sixteen_bit_grey_png(values))
    image, _ = make_dataset(type="image_folder", root=str(tmp_path), image_size=2).split("train")[0]
    assert image.dtype == torch.uint8
    assert image[0].tolist() == [[0, 1], [128, 255]]
