"""STL-10 (Coates, Ng & Lee, "An Analysis of Single-Layer Networks in Unsupervised Feature Learning",
AISTATS 2011), read from the official binary version ``stl10_binary.tar.gz``.

96x96 colour images in 10 classes: 5,000 labelled training images, 8,000 test images and 100,000
unlabelled images (the split SimCLR-style pretraining on STL-10 uses). Binary layout, in
``root/stl10_binary/``:

* ``<split>_X.bin``: uint8, 3 * 96 * 96 bytes per image: the red, green and blue planes one after the
  other, each plane stored COLUMN-major (x outer, y inner, as MATLAB writes arrays), so a plane read
  row-major comes out transposed and must be swapped back to (y, x);
* ``<split>_y.bin``: one uint8 label per image, 1..10 (shifted here to 0..9); the unlabelled split has
  none and gets label -1.

The unlabelled split takes 2.8 GB in memory; it is read in chunks into a preallocated tensor so the
peak stays close to that.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import torch

from contrastive_core import ComponentParams

from .download import fetch_and_extract
from .errors import DatasetFormatError, DatasetNotFoundError
from .in_memory import InMemoryDataset

IMAGE_SHAPE = (3, 96, 96)
IMAGE_BYTES = 3 * 96 * 96
NUM_CLASSES = 10
#: Images converted per read, bounding the temporary buffer to about 27 MB.
CHUNK_IMAGES = 1000


def read_stl_images(path: Path) -> torch.Tensor:
    """The images of an STL-10 ``*_X.bin`` file as uint8 (N, 3, 96, 96) in (channel, y, x) order."""
    size = path.stat().st_size
    if size == 0 or size % IMAGE_BYTES:
        raise DatasetFormatError(
            path,
            f"size {size} bytes is not a positive multiple of the {IMAGE_BYTES} bytes of one 96x96x3 image",
        )
    count = size // IMAGE_BYTES
    images = torch.empty((count, *IMAGE_SHAPE), dtype=torch.uint8)
    with open(path, "rb") as file:
        for start in range(0, count, CHUNK_IMAGES):
            stop = min(start + CHUNK_IMAGES, count)
            chunk = bytearray(file.read((stop - start) * IMAGE_BYTES))
            # Each plane is stored column-major: read as (channel, x, y) and swap the last two axes.
            planes = torch.frombuffer(chunk, dtype=torch.uint8).view(stop - start, 3, 96, 96)
            images[start:stop] = planes.transpose(2, 3)
    return images


def read_stl_labels(path: Path, count: int) -> torch.Tensor:
    """The labels of an STL-10 ``*_y.bin`` file, shifted from 1..10 to 0..9, as int64 (count,)."""
    raw = path.read_bytes()
    if len(raw) != count:
        raise DatasetFormatError(path, f"{len(raw)} labels for {count} images")
    labels = torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()
    if count and (int(labels.min()) < 1 or int(labels.max()) > NUM_CLASSES):
        raise DatasetFormatError(
            path, f"labels must lie in 1..{NUM_CLASSES}, found {int(labels.min())}..{int(labels.max())}"
        )
    return labels - 1


class Stl10Params(ComponentParams):
    type: Literal["stl10"]

    root: str
    """Folder that holds stl10_binary/ (train_X.bin, train_y.bin, test_X.bin, test_y.bin,
    unlabeled_X.bin), as extracted from stl10_binary.tar.gz."""

    download: bool = False
    """Download stl10_binary.tar.gz (2.6 GB) and extract it into root when files are missing."""


class Stl10(InMemoryDataset):
    """STL-10: 96x96 colour images, 10 classes, splits train (5,000), test (8,000) and unlabeled (100,000)."""

    name = "stl10"
    Params = Stl10Params

    split_names: ClassVar[tuple[str, ...]] = ("train", "test", "unlabeled")
    url = "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz"
    md5 = "91f7769df0f17e558f3565bffb0c7dfb"
    folder = "stl10_binary"

    @property
    def num_classes(self) -> int:
        return NUM_CLASSES

    @property
    def root(self) -> Path:
        return Path(self.params.root).expanduser()

    def files(self, name: str) -> list[Path]:
        """The files of split ``name``: images, then labels unless the split is unlabelled."""
        folder = self.root / self.folder
        if name == "unlabeled":
            return [folder / "unlabeled_X.bin"]
        return [folder / f"{name}_X.bin", folder / f"{name}_y.bin"]

    def load(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        paths = self.files(name)
        if self.params.download and not all(path.is_file() for path in paths):
            fetch_and_extract(self.url, self.root, self.md5)
        missing = [str(path) for path in paths if not path.is_file()]
        if missing:
            raise DatasetNotFoundError(
                self.name,
                missing,
                f"Download the binary version {self.url} (stl10_binary.tar.gz, 2.6 GB) and extract it into "
                f"{self.root}, or set download = true in the [data] section.",
            )
        images = read_stl_images(paths[0])
        if name == "unlabeled":
            return images, torch.full((images.shape[0],), -1, dtype=torch.int64)
        return images, read_stl_labels(paths[1], images.shape[0])
