"""image_folder's device decoding: workers read bytes only, the batch is decoded at once on the device.

On the CPU the device path (``decode = "device"``) uses the same libjpeg as the worker path, so the two
must agree bit for bit; on CUDA (nvJPEG) they must agree up to the decoders' rounding.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torchvision.io import encode_jpeg, encode_png

from contrastive_core.engine import read_batches
from contrastive_core.errors import ContrastiveError
from contrastive_plugins.datasets import image_folder
from contrastive_plugins.datasets.errors import BadImageError, ImageTooLargeError
from contrastive_plugins.datasets.image_folder import ImageFolderSplit, is_complete_jpeg

from .crafted_images import jpeg_claiming
from .reference import FIXTURES, fashion, rgb32

pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision are deprecated:DeprecationWarning"
)

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """An ImageNet-style folder of real Fashion-MNIST images as JPEGs of several sizes and aspect
    ratios (upscaled, colour and grey), plus one PNG, in train/<class>/."""
    root = tmp_path_factory.mktemp("photos")
    images, labels = fashion("train")
    sizes = [(64, 48), (40, 72), (33, 33), (96, 60)]
    for index in range(24):
        colour = torch.from_numpy(rgb32(images[index]))  # (3, 32, 32)
        height, width = sizes[index % len(sizes)]
        resized = torch.nn.functional.interpolate(colour[None].float(), size=(height, width), mode="bilinear")
        image = resized[0].round().clamp(0, 255).to(torch.uint8)
        folder = root / "train" / f"class_{int(labels[index])}"
        folder.mkdir(parents=True, exist_ok=True)
        if index % 6 == 5:
            data = encode_jpeg(image[:1], quality=90)  # a grey JPEG: decoded to 3 channels
        else:
            data = encode_jpeg(image, quality=90)
        (folder / f"{index:05d}.jpg").write_bytes(data.numpy().tobytes())
    (root / "train" / "class_9" / "extra.png").write_bytes(encode_png(image).numpy().tobytes())
    return root


def split_of(make_dataset, root, decode, **params):
    params = {"image_size": 32, **params}
    return make_dataset(type="image_folder", root=str(root), decode=decode, **params).split("train")


def all_batches(split, device=CPU, num_workers=0, batch=5):
    indices = torch.arange(len(split)).split(batch)
    pairs = list(read_batches(split, [chunk.tolist() for chunk in indices], device, num_workers))
    return torch.cat([images for images, _ in pairs]), torch.cat([labels for _, labels in pairs])


def test_where_decoding_happens_follows_the_decode_parameter(make_dataset, photo_folder):
    cuda = torch.device("cuda")
    assert split_of(make_dataset, photo_folder, "auto").decodes_on(cuda)
    assert not split_of(make_dataset, photo_folder, "auto").decodes_on(CPU)
    assert split_of(make_dataset, photo_folder, "device").decodes_on(CPU)
    assert not split_of(make_dataset, photo_folder, "workers").decodes_on(cuda)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_device_decoding_equals_worker_decoding_on_the_cpu(make_dataset, photo_folder, num_workers):
    on_device = all_batches(split_of(make_dataset, photo_folder, "device"), num_workers=num_workers)
    in_workers = all_batches(split_of(make_dataset, photo_folder, "workers"), num_workers=num_workers)
    assert on_device[0].shape == (25, 3, 32, 32) and on_device[0].dtype == torch.uint8
    assert torch.equal(on_device[0], in_workers[0])
    assert torch.equal(on_device[1], in_workers[1])
    item_by_item = torch.stack([split_of(make_dataset, photo_folder, "workers")[i][0] for i in range(25)])
    assert torch.equal(on_device[0], item_by_item)


def test_jpegs_are_not_decoded_item_by_item_on_the_device_path(make_dataset, photo_folder, monkeypatch):
    split = split_of(make_dataset, photo_folder, "device")
    jpegs = [index for index, path in enumerate(split.files) if path.suffix == ".jpg"]
    png = [index for index, path in enumerate(split.files) if path.suffix == ".png"]
    calls = []
    original = ImageFolderSplit.__getitem__
    monkeypatch.setattr(ImageFolderSplit, "__getitem__", lambda self, i: calls.append(i) or original(self, i))
    list(read_batches(split, [jpegs], CPU, 0))
    assert calls == []  # every JPEG went through the batched decoder
    list(read_batches(split, [jpegs[:3] + png], CPU, 0))
    assert calls == png  # the PNG took the CPU path


def test_encoded_items_are_the_files_bytes(make_dataset, photo_folder):
    split = split_of(make_dataset, photo_folder, "device")
    index, data, label = split.encoded_item(3)
    assert index == 3 and label == int(split.labels[3])
    assert data.dtype == torch.uint8 and data.numpy().tobytes() == split.files[3].read_bytes()
    assert is_complete_jpeg(data)
    assert not is_complete_jpeg(data[: len(data) // 2])  # cut short: left to the CPU decoder


def test_a_subset_keeps_device_decoding_and_its_index_mapping(make_dataset, photo_folder, monkeypatch):
    split = split_of(make_dataset, photo_folder, "device")
    subset = torch.utils.data.Subset(split, [7, 2, 11, 0])
    expected = torch.stack([split[i][0] for i in [7, 2, 11, 0]])
    monkeypatch.setattr(ImageFolderSplit, "__getitem__", lambda self, i: pytest.fail("decoded on the CPU"))
    images, labels = next(read_batches(subset, [[0, 1, 2, 3]], CPU, 0))
    assert torch.equal(images, expected)
    assert labels.tolist() == split.labels[[7, 2, 11, 0]].tolist()


@pytest.mark.parametrize("decode", ["device", "workers"])
@pytest.mark.parametrize("num_workers", [0, 2])
def test_a_truncated_jpeg_stops_with_its_path_wherever_decoding_happens(make_dataset, decode, num_workers):
    split = split_of(make_dataset, FIXTURES / "image_folder_bad", decode, image_size=28)
    with pytest.raises(ContrastiveError) as raised:
        all_batches(split, num_workers=num_workers, batch=len(split))
    assert not isinstance(raised.value, RuntimeError)
    assert "image_folder_bad/train/bag/" in str(raised.value)
    if num_workers == 0:
        assert isinstance(raised.value, BadImageError)


@pytest.mark.parametrize("num_workers", [0, 2])
def test_skipping_bad_files_gives_the_same_batches_wherever_decoding_happens(make_dataset, num_workers):
    results = {}
    for decode in ["device", "workers"]:
        split = split_of(
            make_dataset, FIXTURES / "image_folder_bad", decode, image_size=28, on_bad_image="skip"
        )
        # the skip warning is raised where the bad file is decoded: in this process unless workers decode
        in_this_process = decode == "device" or num_workers == 0
        with pytest.warns(UserWarning, match="skipping") if in_this_process else warnings.catch_warnings():
            results[decode] = all_batches(split, num_workers=num_workers, batch=2)
        assert sorted(path.name for path in split.bad_files) == ["not_an_image.jpg", "truncated.jpg"]
    assert torch.equal(results["device"][0], results["workers"][0])
    assert torch.equal(results["device"][1], results["workers"][1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_nvjpeg_decoding_matches_the_cpu_decoder(make_dataset, photo_folder, monkeypatch):
    cuda = torch.device("cuda")
    split = split_of(make_dataset, photo_folder, "auto")
    on_gpu, labels = all_batches(split, device=cuda, num_workers=2)
    assert on_gpu.device.type == "cuda" and labels.device.type == "cuda"
    on_cpu, cpu_labels = all_batches(split_of(make_dataset, photo_folder, "workers"), num_workers=2)
    # JPEG leaves the IDCT and chroma upsampling to the decoder; on these strongly coloured images
    # nvJPEG and libjpeg differ by 2.59 levels on average (measured on an H100). A wrong channel order,
    # orientation or resize would differ by tens of levels.
    difference = (on_gpu.cpu().float() - on_cpu.float()).abs()
    assert difference.mean() < 4.0, f"mean |nvJPEG - libjpeg| = {difference.mean():.2f} levels"
    assert torch.equal(labels.cpu(), cpu_labels)
    # and the JPEGs really were decoded by nvJPEG, not by the CPU fallback
    jpegs = [index for index, path in enumerate(split.files) if path.suffix == ".jpg"]
    monkeypatch.setattr(ImageFolderSplit, "__getitem__", lambda self, i: pytest.fail("decoded on the CPU"))
    next(read_batches(split, [jpegs], cuda, 0))


@pytest.fixture
def folder_with_empty_and_damaged_jpegs(tmp_path, photo_folder):
    """Three good JPEGs, an empty file and a JPEG whose markers are intact but whose frame header names
    a quantization table it does not define: it passes image_folder's header check, and the decoder
    refuses it."""
    folder = tmp_path / "odd" / "train" / "class_0"
    folder.mkdir(parents=True)
    good = sorted((photo_folder / "train").rglob("*.jpg"))[:3]
    for path in good:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "empty.jpg").write_bytes(b"")
    data = bytearray(good[0].read_bytes())
    frame = data.index(b"\xff\xc0")  # SOF0: marker, length, precision, height, width, components, then
    data[frame + 12] = 3  # the first component's (id, sampling, table): table 3, which is never defined
    (folder / "damaged.jpg").write_bytes(bytes(data))
    return tmp_path / "odd"


@pytest.mark.parametrize("num_workers", [0, 2])
def test_empty_and_damaged_files_are_skipped_alike_wherever_decoding_happens(
    make_dataset, folder_with_empty_and_damaged_jpegs, num_workers
):
    results = {}
    for decode in ["device", "workers"]:
        split = split_of(make_dataset, folder_with_empty_and_damaged_jpegs, decode, on_bad_image="skip")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results[decode] = all_batches(split, num_workers=num_workers, batch=5)
        assert sorted(path.name for path in split.bad_files) == ["damaged.jpg", "empty.jpg"]
        if decode == "device":  # the batched decoder's refusal is reported, not silent
            assert any("refused 1 of 4 files" in str(warning.message) for warning in caught)
    assert torch.equal(results["device"][0], results["workers"][0])


def test_an_empty_file_stops_the_device_path_with_its_name(make_dataset, folder_with_empty_and_damaged_jpegs):
    split = split_of(make_dataset, folder_with_empty_and_damaged_jpegs, "device")
    empty = [index for index, path in enumerate(split.files) if path.name == "empty.jpg"]
    with pytest.raises(BadImageError, match="empty.jpg.*empty file"):
        next(read_batches(split, [empty], CPU, 0))


def test_auto_decodes_on_the_gpu_only_a_split_of_jpegs(make_dataset, photo_folder):
    cuda = torch.device("cuda")
    assert split_of(make_dataset, photo_folder, "auto").jpeg_share == 24 / 25
    mixed = split_of(make_dataset, FIXTURES / "image_folder", "auto")  # 3 JPEGs, 5 PNGs
    assert mixed.jpeg_share == 3 / 8 and not mixed.decodes_on(cuda)
    assert split_of(make_dataset, FIXTURES / "image_folder", "device").decodes_on(cuda)


def test_device_failures_are_raised_not_taken_for_refused_files():
    from contrastive_plugins.datasets.image_folder import is_device_failure

    assert is_device_failure(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_device_failure(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert not is_device_failure(RuntimeError("Not a JPEG file: starts with 0x89 0x50"))


@pytest.mark.parametrize("on_bad_image", ["error", "skip"])
def test_a_jpeg_over_the_pixel_limit_never_reaches_the_batched_decoder(
    make_dataset, photo_folder, tmp_path, monkeypatch, on_bad_image
):
    """A 1 KB JPEG claiming 65,000 x 65,000 pixels would make nvJPEG ask for 12.7 GB of GPU memory, an
    out-of-memory error taken for a failure of the device; it goes to the CPU path, which names it.
    Here a claim of 2,000 x 2,000 over a limit of 1,000,000 pixels: were the check to regress, the CPU
    decoder this test runs would fill 12 MB, not 12.7 GB."""
    root = tmp_path / "huge"
    (root / "train" / "class_0").mkdir(parents=True)
    good = sorted((photo_folder / "train").rglob("*.jpg"))[:3]
    for path in good:
        (root / "train" / "class_0" / path.name).write_bytes(path.read_bytes())
    (root / "train" / "class_0" / "huge.jpg").write_bytes(jpeg_claiming(2000, 2000))
    split = split_of(make_dataset, root, "device", on_bad_image=on_bad_image, max_image_pixels=1_000_000)
    handed = []
    original = image_folder.decode_jpegs
    monkeypatch.setattr(
        image_folder, "decode_jpegs", lambda files, device: handed.extend(files) or original(files, device)
    )
    if on_bad_image == "error":
        with pytest.raises(ImageTooLargeError, match=r"huge\.jpg: too large to decode \(2000 x 2000"):
            all_batches(split, batch=4)
    else:
        with pytest.warns(UserWarning, match=r"skipping .*huge\.jpg: 2000 x 2000"):
            images, _ = all_batches(split, batch=4)
        assert images.shape == (4, 3, 32, 32) and [path.name for path in split.bad_files] == ["huge.jpg"]
    assert len(handed) == 3  # only the three sound JPEGs
