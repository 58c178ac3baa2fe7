"""Write the dataset test fixtures under tests/fixtures/, in the REAL file formats, from real images.

Source: the real Fashion-MNIST (Xiao et al., 2017) as Debian's package ``dataset-fashion-mnist``
installs it in /usr/share/datasets/fashion-mnist/. Run from the repository root::

    python scripts/make_fixtures.py [--source /usr/share/datasets/fashion-mnist]

What it writes (see tests/fixtures/README.md for the same in prose):

* ``fashion_mnist/gzip/`` and ``fashion_mnist/plain/``: the first 64 training and first 32 test images
  and labels, as IDX files gzip-compressed (``*.gz``) and uncompressed.
* ``cifar10/cifar-10-batches-bin/``, ``cifar100/cifar-100-binary/``, ``stl10/stl10_binary/``: the CIFAR
  and STL-10 binary formats. No real CIFAR or STL-10 is available offline, so their images are
  Fashion-MNIST images turned into colour by :func:`to_rgb32`: zero-padded by 2 pixels to 32x32
  (Fashion-MNIST's background is 0), red = the image, green = 255 - image, blue = the image transposed
  (three different planes, so a wrong channel order or a missing transpose shows in the tests); for
  STL-10 each pixel is repeated 3x3 to 96x96. Labels are the Fashion-MNIST labels (STL-10 stores them
  plus 1; CIFAR-100 uses fine = 10 * label + index % 10, coarse = fine // 5).
* ``image_folder/``: ImageNet-style train/ and val/ folders of PNG and JPEG files
  (``torchvision.io.encode_png`` / ``encode_jpeg``) for three Fashion-MNIST classes, including a grey
  PNG and a 32x48 PNG (the 32x32 image with 8 zero columns on each side, to test the centre crop).
* ``image_folder_bad/``: a good PNG next to a truncated JPEG and a text file named like a JPEG.

Which images go where is spelt out in :data:`LAYOUT` so tests can recompute every expected value.
"""

from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np
import torch
from torchvision.io import encode_jpeg, encode_png

REPOSITORY = Path(__file__).resolve().parent.parent
FIXTURES = REPOSITORY / "tests" / "fixtures"
DEBIAN_SOURCE = Path("/usr/share/datasets/fashion-mnist")

FASHION_CLASSES = (
    "t_shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle_boot",
)

#: Source indices (into the real Fashion-MNIST split named first) of every fixture.
LAYOUT = {
    "fashion_mnist": {"train": ("train", range(0, 64)), "test": ("test", range(0, 32))},
    # five batches of 8: data_batch_b holds train images 8*(b-1) .. 8*b-1
    "cifar10": {"train": ("train", range(0, 40)), "test": ("test", range(0, 16))},
    "cifar100": {"train": ("train", range(0, 64)), "test": ("test", range(0, 32))},
    "stl10": {
        "train": ("train", range(0, 8)),
        "test": ("test", range(0, 4)),
        "unlabeled": ("train", range(8, 12)),
    },
}
IMAGE_FOLDER_CLASSES = (1, 8, 9)  # trouser, bag, ankle_boot


def read_idx_file(path: Path) -> np.ndarray:
    """A gzip-compressed uint8 IDX file as an array (a minimal reader, independent of the plugin's)."""
    data = gzip.decompress(path.read_bytes())
    assert data[:3] == b"\x00\x00\x08", f"{path} is not a uint8 IDX file"
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) encoded as an IDX file: magic 0x0000 0x08 ndim, big-endian dims, data."""
    assert array.dtype == np.uint8
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def to_rgb32(image: np.ndarray) -> np.ndarray:
    """A 28x28 grey image as uint8 (3, 32, 32): padded by 2, planes (image, 255 - image, image.T)."""
    padded = np.pad(image, 2)
    return np.stack([padded, 255 - padded, padded.T])


def to_rgb96(image: np.ndarray) -> np.ndarray:
    """A 28x28 grey image as uint8 (3, 96, 96): :func:`to_rgb32` with every pixel repeated 3x3."""
    return to_rgb32(image).repeat(3, axis=1).repeat(3, axis=2)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_fashion_mnist(source: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    stems = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    for split, (source_split, indices) in LAYOUT["fashion_mnist"].items():
        images, labels = source[source_split]
        for stem, array in zip(stems[split], (images[indices], labels[indices]), strict=True):
            data = idx_bytes(np.ascontiguousarray(array))
            write(FIXTURES / "fashion_mnist" / "plain" / stem, data)
            # mtime=0 keeps the gzip bytes identical between runs of this script.
            write(FIXTURES / "fashion_mnist" / "gzip" / f"{stem}.gz", gzip.compress(data, mtime=0))


def cifar_records(images: np.ndarray, label_columns: list[np.ndarray]) -> bytes:
    """CIFAR binary records: the label bytes of each image, then its 3072 pixel bytes (R, G, B planes)."""
    pixels = np.stack([to_rgb32(image).reshape(-1) for image in images])
    labels = np.stack(label_columns, axis=1).astype(np.uint8)
    return np.concatenate([labels, pixels], axis=1).tobytes()


def write_cifar(source: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    folder = FIXTURES / "cifar10" / "cifar-10-batches-bin"
    images, labels = source["train"]
    train = LAYOUT["cifar10"]["train"][1]
    for batch in range(5):
        indices = train[8 * batch : 8 * (batch + 1)]
        write(folder / f"data_batch_{batch + 1}.bin", cifar_records(images[indices], [labels[indices]]))
    images, labels = source["test"]
    indices = LAYOUT["cifar10"]["test"][1]
    write(folder / "test_batch.bin", cifar_records(images[indices], [labels[indices]]))

    for split, file in (("train", "train.bin"), ("test", "test.bin")):
        source_split, indices = LAYOUT["cifar100"][split]
        images, labels = source[source_split]
        fine = labels[indices].astype(np.int64) * 10 + np.arange(len(indices)) % 10
        coarse = fine // 5
        write(
            FIXTURES / "cifar100" / "cifar-100-binary" / file, cifar_records(images[indices], [coarse, fine])
        )


def write_stl10(source: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    folder = FIXTURES / "stl10" / "stl10_binary"
    for split, (source_split, indices) in LAYOUT["stl10"].items():
        images, labels = source[source_split]
        # STL-10 stores each plane column-major: write the (channel, x, y) order, i.e. each plane transposed.
        planes = np.stack([to_rgb96(image).transpose(0, 2, 1) for image in images[indices]])
        write(folder / f"{split}_X.bin", np.ascontiguousarray(planes).tobytes())
        if split != "unlabeled":
            write(folder / f"{split}_y.bin", (labels[indices] + 1).astype(np.uint8).tobytes())


def first_of_class(labels: np.ndarray, label: int, count: int) -> list[int]:
    return [int(index) for index in np.flatnonzero(labels == label)[:count]]


def write_image_folders(source: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    images, labels = source["train"]
    root = FIXTURES / "image_folder"
    for label in IMAGE_FOLDER_CLASSES:
        folder = root / "train" / FASHION_CLASSES[label]
        png_index, jpeg_index, extra_index = first_of_class(labels, label, 3)
        write(
            folder / f"{png_index:05d}.png",
            encode_png(torch.from_numpy(to_rgb32(images[png_index]))).numpy().tobytes(),
        )
        jpeg = encode_jpeg(torch.from_numpy(to_rgb32(images[jpeg_index])), quality=95)
        write(folder / f"{jpeg_index:05d}.jpg", jpeg.numpy().tobytes())
        if label == 1:  # a grey (1-channel) PNG of the original 28x28 size
            grey = torch.from_numpy(images[extra_index].copy()).unsqueeze(0)
            write(folder / f"{extra_index:05d}_grey.png", encode_png(grey).numpy().tobytes())
        if label == 8:  # a 32x48 PNG whose centre 32x32 is to_rgb32 of the image
            wide = np.pad(to_rgb32(images[extra_index]), ((0, 0), (0, 0), (8, 8)))
            write(
                folder / f"{extra_index:05d}_wide.png", encode_png(torch.from_numpy(wide)).numpy().tobytes()
            )
    test_images, test_labels = source["test"]
    for label in IMAGE_FOLDER_CLASSES:
        (index,) = first_of_class(test_labels, label, 1)
        png = encode_png(torch.from_numpy(to_rgb32(test_images[index])))
        write(root / "val" / FASHION_CLASSES[label] / f"{index:05d}.png", png.numpy().tobytes())

    bad = FIXTURES / "image_folder_bad" / "train"
    for label in (1, 8):
        (index,) = first_of_class(labels, label, 1)
        write(
            bad / FASHION_CLASSES[label] / "good.png",
            encode_png(torch.from_numpy(to_rgb32(images[index]))).numpy().tobytes(),
        )
    (index,) = first_of_class(labels, 8, 1)
    jpeg = encode_jpeg(torch.from_numpy(to_rgb32(images[index])), quality=95).numpy().tobytes()
    write(bad / "bag" / "truncated.jpg", jpeg[: len(jpeg) // 2])
    write(bad / "bag" / "not_an_image.jpg", b"This text file only has a JPEG name; it is not an image.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source", type=Path, default=DEBIAN_SOURCE, help="folder of the real Fashion-MNIST .gz files"
    )
    arguments = parser.parse_args()
    source = {
        split: (
            read_idx_file(arguments.source / f"{prefix}-images-idx3-ubyte.gz"),
            read_idx_file(arguments.source / f"{prefix}-labels-idx1-ubyte.gz"),
        )
        for split, prefix in (("train", "train"), ("test", "t10k"))
    }
    write_fashion_mnist(source)
    write_cifar(source)
    write_stl10(source)
    write_image_folders(source)
    total = sum(path.stat().st_size for path in FIXTURES.rglob("*") if path.is_file())
    print(f"wrote fixtures under {FIXTURES} ({total / 1e6:.2f} MB in all)")


if __name__ == "__main__":
    main()
