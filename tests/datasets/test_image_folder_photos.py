"""image_folder on real photos of varied sizes (tests/fixtures/photos): whole photos for pretraining,
batched as one canvas with their sizes by either decode path, and the centre-crop evaluation view."""

from __future__ import annotations

import pytest
import torch
from torchvision.io import decode_jpeg, read_file
from torchvision.transforms.v2 import functional as F

from contrastive_core import RecipeError
from contrastive_core.components import VariableSizeSplit
from contrastive_core.engine import ImageBatch, canvas_batch, read_batches, read_image_batches
from contrastive_plugins.datasets.image_folder import ImageFolderSplit, PhotoFolderSplit, decode_square

from .reference import FIXTURES

pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision are deprecated:DeprecationWarning"
)

PHOTOS = FIXTURES / "photos"
CPU = torch.device("cpu")


def photos(make_dataset, **params):
    return make_dataset(type="image_folder", root=str(PHOTOS), **params)


def decoded(path) -> torch.Tensor:
    """The JPEG at ``path`` decoded by torchvision, independently of the dataset: uint8 (3, H, W)."""
    return decode_jpeg(read_file(str(path)))


def all_image_batches(split, num_workers=0, batch=7):
    indices = [chunk.tolist() for chunk in torch.arange(len(split)).split(batch)]
    return list(read_image_batches(split, indices, CPU, num_workers))


def test_the_fixture_is_photos_of_many_sizes_and_shapes():
    files = sorted((PHOTOS / "train").rglob("*.jpg"))
    sizes = {tuple(decoded(path).shape[1:]) for path in files}
    assert len(files) == 30 and len(sizes) == 30
    assert {(375, 500), (500, 375), (427, 640), (333, 500), (300, 300), (600, 800), (512, 256)} <= sizes
    ratios = [width / height for height, width in sizes]
    assert min(ratios) < 0.75 and max(ratios) > 1.7  # taller and wider than any crop's ratio range
    assert sum(path.stat().st_size for path in PHOTOS.rglob("*.jpg")) < 700_000


def test_pretraining_reads_every_photo_whole_at_its_own_size(make_dataset):
    dataset = photos(make_dataset, max_side=800)
    split = dataset.training_split("train")
    assert isinstance(split, PhotoFolderSplit) and isinstance(split, VariableSizeSplit)
    assert split.canvas_side == 800
    for index, path in enumerate(split.files):
        image, label = split[index]
        assert torch.equal(image, decoded(path)), path.name  # not resized, not cropped
        assert label == dataset.classes.index(path.parent.name)


def test_photos_larger_than_max_side_are_downscaled_and_smaller_ones_kept(make_dataset):
    split = photos(make_dataset).training_split("train")  # max_side = 512 by default
    assert split.canvas_side == 512
    for index, path in enumerate(split.files):
        image, _ = split[index]
        original = decoded(path)
        height, width = original.shape[1:]
        if max(height, width) <= 512:
            assert torch.equal(image, original), path.name
        else:  # 600 x 800 -> 384 x 512, the aspect ratio kept
            scale = 512 / max(height, width)
            assert image.shape[1:] == (round(height * scale), round(width * scale))
            assert torch.equal(image, F.resize(original, list(image.shape[1:]), antialias=True))


def test_a_canvas_holds_each_photo_top_left_and_repeats_its_border_beyond_it():
    images = [torch.randint(0, 256, (3, h, w), dtype=torch.uint8) for h, w in [(5, 7), (8, 3), (8, 8)]]
    batch = canvas_batch(images, 8)
    assert batch.pixels.shape == (3, 3, 8, 8) and batch.sizes.tolist() == [[5, 7], [8, 3], [8, 8]]
    for index, image in enumerate(images):
        height, width = image.shape[1:]
        assert torch.equal(batch.image(index), image)
        row = batch.pixels[index]
        assert torch.equal(row[:, :height, width:], image[:, :, -1:].expand(-1, -1, 8 - width))
        assert torch.equal(row[:, height:, :], row[:, height - 1 : height, :].expand(-1, 8 - height, -1))
    with pytest.raises(ValueError, match="h, w <= 6"):
        canvas_batch(images, 6)
    with pytest.raises(ValueError, match="int64 \\(B, 2\\)"):
        ImageBatch(batch.pixels, batch.sizes[:2])


@pytest.fixture(scope="module")
def photo_pairs(tmp_path_factory):
    """The fixture's training photos, each twice (``*_copy.jpg`` next to it), so that a batch holds
    photos of the same size, which the device path decodes and resizes as one group."""
    root = tmp_path_factory.mktemp("pairs")
    for path in sorted((PHOTOS / "train").rglob("*.jpg")):
        folder = root / "train" / path.parent.name
        folder.mkdir(parents=True, exist_ok=True)
        for name in (path.name, f"{path.stem}_copy.jpg"):
            (folder / name).write_bytes(path.read_bytes())
    return root


def pair_split(make_dataset, root, decode):
    return make_dataset(type="image_folder", root=str(root), decode=decode).training_split("train")


@pytest.mark.parametrize("num_workers", [0, 2])
def test_worker_and_device_decoding_give_identical_canvases_and_sizes(
    make_dataset, photo_pairs, num_workers, monkeypatch
):
    """On the CPU the device path (decode = "device": the training process decodes whole batches, photos
    of one size together) uses the same libjpeg and resize as the workers, so the batches are equal."""
    in_workers = all_image_batches(pair_split(make_dataset, photo_pairs, "workers"), num_workers, batch=8)
    split = pair_split(make_dataset, photo_pairs, "device")
    assert split.decodes_on(CPU)
    items = [split[index][0] for index in range(len(split))]
    monkeypatch.setattr(ImageFolderSplit, "__getitem__", lambda self, i: pytest.fail("decoded item by item"))
    on_device = all_image_batches(split, num_workers, batch=8)
    assert len(on_device) == 8  # 60 photos in batches of 8
    position = 0
    for (device_batch, labels), (worker_batch, worker_labels) in zip(on_device, in_workers, strict=True):
        assert device_batch.pixels.shape == (len(labels), 3, 512, 512)
        assert device_batch.pixels.dtype == torch.uint8
        assert torch.equal(device_batch.pixels, worker_batch.pixels)
        assert torch.equal(device_batch.sizes, worker_batch.sizes) and torch.equal(labels, worker_labels)
        batch_items = items[position : position + len(labels)]
        assert device_batch.sizes.tolist() == [list(item.shape[1:]) for item in batch_items]
        assert torch.equal(device_batch.pixels, canvas_batch(batch_items, 512).pixels)
        position += len(labels)


def test_evaluation_views_are_the_shorter_side_resized_to_s_over_0875_then_the_centre(make_dataset):
    dataset = photos(make_dataset)  # image_size 224, eval_crop_fraction 0.875: 256, then the centre 224
    for name in ("train", "test"):
        split = dataset.split(name)
        assert type(split) is ImageFolderSplit and not isinstance(split, VariableSizeSplit)
        for index, path in enumerate(split.files):
            image, _ = split[index]
            expected = F.center_crop(F.resize(decoded(path), [256], antialias=True), [224, 224])
            assert torch.equal(image, expected), path.name
    # Another size and fraction: round(64 / 0.5) = 128.
    small = photos(make_dataset, image_size=64, eval_crop_fraction=0.5).split("test")
    image, _ = small[0]
    expected = F.center_crop(F.resize(decoded(small.files[0]), [128], antialias=True), [64, 64])
    assert torch.equal(image, expected)


def test_evaluation_views_are_the_same_wherever_they_are_decoded(make_dataset):
    split = photos(make_dataset, image_size=64).split("train")
    indices = [chunk.tolist() for chunk in torch.arange(len(split)).split(8)]
    on_device = list(
        read_batches(photos(make_dataset, image_size=64, decode="device").split("train"), indices, CPU, 0)
    )
    in_workers = list(read_batches(split, indices, CPU, 2))
    assert torch.equal(torch.cat([images for images, _ in on_device]), torch.cat([i for i, _ in in_workers]))
    assert torch.cat([images for images, _ in on_device]).shape == (30, 3, 64, 64)


def test_the_old_centre_square_stays_available(make_dataset):
    """eval_crop_fraction = 1 and train_images = "square" give what every split gave before: the
    shorter side resized to image_size and the centre square."""
    dataset = photos(make_dataset, image_size=96, eval_crop_fraction=1.0, train_images="square")
    for split in (dataset.split("train"), dataset.training_split("train")):
        assert type(split) is ImageFolderSplit
        for index in (0, 5, 17):
            assert torch.equal(split[index][0], decode_square(split.files[index], 96))


def test_a_photo_split_cannot_be_read_as_images_of_one_size(make_dataset):
    split = photos(make_dataset).training_split("train")
    with pytest.raises(TypeError, match="read_image_batches"):
        next(read_batches(split, [[0, 1]], CPU, 0))
    with pytest.raises(TypeError, match="read_image_batches"):
        next(read_batches(torch.utils.data.Subset(split, [3, 4]), [[0, 1]], CPU, 0))


@pytest.mark.parametrize(
    ("param", "value"), [("eval_crop_fraction", 0.0), ("eval_crop_fraction", 1.5), ("max_side", 8)]
)
def test_out_of_range_sizing_params_are_refused(make_dataset, param, value):
    with pytest.raises(RecipeError, match=param):
        photos(make_dataset, **{param: value})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nvjpeg_photo_canvases_match_the_cpu_workers(make_dataset, photo_pairs, monkeypatch):
    """On CUDA (decode = "auto"): nvJPEG decodes each batch, photos of one size are downscaled together and
    the canvas is padded on the GPU; the sizes are those of the workers' canvases exactly, the pixels up
    to the decoders' rounding (IDCT and chroma upsampling are the decoder's choice)."""
    cuda = torch.device("cuda")
    in_workers = all_image_batches(pair_split(make_dataset, photo_pairs, "workers"), 2, batch=16)
    split = pair_split(make_dataset, photo_pairs, "auto")
    assert split.decodes_on(cuda)
    monkeypatch.setattr(ImageFolderSplit, "__getitem__", lambda self, i: pytest.fail("decoded on the CPU"))
    indices = [chunk.tolist() for chunk in torch.arange(len(split)).split(16)]
    on_gpu = list(read_image_batches(split, indices, cuda, 2))
    for (gpu_batch, labels), (cpu_batch, cpu_labels) in zip(on_gpu, in_workers, strict=True):
        assert gpu_batch.pixels.device.type == "cuda" and gpu_batch.sizes.device.type == "cuda"
        assert torch.equal(gpu_batch.sizes.cpu(), cpu_batch.sizes)
        assert torch.equal(labels.cpu(), cpu_labels)
        difference = (gpu_batch.pixels.cpu().float() - cpu_batch.pixels.float()).abs()
        assert difference.mean() < 4.0, f"mean |nvJPEG - libjpeg| = {difference.mean():.2f} levels"
