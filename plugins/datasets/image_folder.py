"""A folder of image files, one sub-folder per class, ImageNet style::

    root/train/<class name>/<any path>.JPEG
    root/val/<class name>/<any path>.JPEG

Class indices follow the sorted class folder names of the training split (so every split maps a name
to the same index). Files are read as bytes and decoded with ``torchvision.io.decode_image`` (JPEG,
PNG, WebP, GIF) to uint8 RGB; grey, palette and alpha images are converted to 3 channels.

Photos differ in size, and the two uses of a split want different things of them:

* **evaluation** (``split(name)``: kNN, linear evaluation, fine-tuning, the kNN monitor) reads the
  standard ImageNet evaluation view: the shorter side resized to ``round(image_size /
  eval_crop_fraction)`` (bilinear, antialiased), then the centre ``image_size x image_size`` square
  (google-research/simclr ``preprocess_for_eval``: 256 then 224); items of a batch are stacked;
* **pretraining** (``training_split(name)``) reads, with ``train_images = "photo"`` (the default),
  every photo whole at its own size, downscaled only when its longer side exceeds ``max_side``: a
  :class:`~contrastive_core.components.VariableSizeSplit`, whose batches the engine pads into one
  ``max_side x max_side`` canvas with each photo's size, so that SimCLR's random resized crop draws
  every view's box from the whole photo, as the paper does (Chen et al. 2020, Appendix A), rather than
  from a square cut out of it. ``train_images = "square"`` gives instead what every split gave
  before: the shorter side resized to ``image_size`` and the centre square.

Image folders are not held in memory (``tensors`` returns None); the engine reads them with loader
workers. Where the images are decoded is the ``decode`` parameter: by default (``"auto"``) JPEG files are
decoded **on the GPU** when training runs on CUDA: workers only read the files' bytes, and each batch is
decoded at once with ``torchvision.io.decode_jpeg(..., device="cuda")`` (nvJPEG), then resized and
cropped (or padded into the batch's canvas) there. Files that are not complete JPEGs (PNG, WebP, GIF,
truncated or damaged files), and JPEGs the GPU decoder refuses (e.g. CMYK), are decoded on the CPU
exactly as in the worker path, so an unreadable file gives the same error (or is skipped the same way)
wherever decoding happens. On the CPU the workers decode, in parallel.

Before any decoding, each file's header (and a PNG's image data) is checked by
:func:`~.image_headers.check_encoded_image`: an image of more than ``max_image_pixels`` pixels, or one
whose damage would crash the decoder (libpng kills the process on short image data), is refused as an
unreadable file, naming it, wherever it would have been decoded.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Literal

import torch
import torch.utils.data
from pydantic import Field
from torchvision.io import ImageReadMode, decode_image, decode_jpeg
from torchvision.transforms.v2 import functional as F

from contrastive_core import ComponentParams, Dataset
from contrastive_core.components import VariableSizeSplit
from contrastive_core.engine import DeviceDecodable, EncodedItem, ImageBatch, canvas_batch

from .errors import BadImageError, DatasetNotFoundError, NoReadableImageError, UnknownSplitError
from .image_headers import DEFAULT_MAX_IMAGE_PIXELS, check_encoded_image
from .image_sizing import CROP_PROPORTION, centre_crop, eval_resize_side, to_square, within_side

#: Suffixes of the formats decode_image reads (compared lower-case); other files are ignored.
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif"})


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted; hidden files such as macOS ``._x.jpg``
    resource forks are left out because they carry an image suffix without being images."""
    return sorted(
        path
        for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        and path.is_file()
    )


def decode_file(path: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> torch.Tensor:
    """The image file ``path`` decoded to uint8 RGB (3, H, W) at its own size.

    Raises :class:`BadImageError` naming the file when it is empty, truncated, damaged or not an image,
    and its subclass :class:`~.errors.ImageTooLargeError` when it has more than ``max_pixels`` pixels.
    """
    data = path.read_bytes()
    if not data:
        raise BadImageError(path, "empty file")
    check_encoded_image(path, data, max_pixels)
    try:
        image = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except RuntimeError as error:
        # torchvision reports truncated and unknown data as RuntimeError, prefixed with the C++ location.
        raise BadImageError(path, re.sub(r"^\w+, \S+:\d+, ", "", str(error)).strip()) from None
    if image.ndim == 4:  # an animated GIF: (frames, C, H, W); its first frame stands for it
        image = image[0]
    if image.dtype != torch.uint8:  # 16-bit PNGs decode to uint16; keep the top 8 bits of each value
        image = F.to_dtype(image, torch.uint8, scale=True)
    return image


def decode_square(path: Path, size: int, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> torch.Tensor:
    """The image file ``path`` as uint8 (3, size, size): decoded, shorter side resized, centre-cropped
    (:func:`~.image_sizing.to_square`); errors as :func:`decode_file`."""
    return to_square(decode_file(path, max_pixels), size)


def is_complete_jpeg(data: torch.Tensor) -> bool:
    """Whether the bytes ``data`` (uint8 (L,)) start with a JPEG's SOI marker and end with its EOI
    marker. A file cut short fails this, and is left to the CPU decoder, which reports it (nvJPEG may
    instead decode the missing part as grey)."""
    return len(data) >= 5 and data[:3].tolist() == [0xFF, 0xD8, 0xFF] and data[-2:].tolist() == [0xFF, 0xD9]


def decode_jpegs(files: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """JPEG files' bytes (each uint8 (L,), on the CPU) decoded on ``device`` to uint8 RGB (3, H, W),
    the whole list in one batched call; None for a file the decoder refuses (e.g. a CMYK JPEG on nvJPEG).

    A failure of the device itself (out of memory, a CUDA error) is raised, not taken for a refusal.
    """
    if not files:
        return []
    try:
        return list(decode_jpeg(files, mode=ImageReadMode.RGB, device=device))
    except RuntimeError as error:
        if is_device_failure(error):
            raise
    # The batched call fails as a whole; find the refused files one by one.
    decoded: list[torch.Tensor | None] = []
    for data in files:
        try:
            decoded.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
        except RuntimeError as error:
            if is_device_failure(error):
                raise
            decoded.append(None)
    refused = sum(image is None for image in decoded)
    warnings.warn(
        f"the {device.type} JPEG decoder refused {refused} of {len(files)} files of a batch; they are "
        "decoded on the CPU instead (slower, same images)",
        stacklevel=2,
    )
    return decoded


def is_device_failure(error: RuntimeError) -> bool:
    """Whether ``error`` is the device failing (out of memory, a CUDA error) rather than bad data.
    torchvision re-raises such errors from its decoder as plain RuntimeErrors, so the text decides."""
    text = str(error).lower()
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in text or "cuda error" in text


#: Decoded images are resized in groups of at most this many, which bounds the float32 copies the
#: resize makes (torchvision resizes uint8 on CUDA through float32: 64 x 3 x 500 x 375 x 4 B = 144 MB).
RESIZE_GROUP = 64

#: With decode = "auto", a split decodes on the GPU only when at least this share of its files are
#: JPEGs by suffix; other files go one by one through the CPU decoder in the training process.
AUTO_MIN_JPEG_SHARE = 0.9


class ImageFolderSplit(torch.utils.data.Dataset, DeviceDecodable):
    """One split of an image folder: item i is ``(uint8 (3, S, S), class index)``, decoded on the CPU:
    the shorter side resized to ``resize`` (``image_size`` when None), then the centre S x S
    (:func:`~.image_sizing.centre_crop`), S = ``image_size``.

    As a :class:`~contrastive_core.engine.DeviceDecodable` split it also hands loader workers the
    files' bytes only and decodes whole batches on the device (``decode``: see :class:`ImageFolderParams`).
    :class:`PhotoFolderSplit` is the same split with every photo whole instead, for pretraining.

    With ``on_bad_image="skip"`` an unreadable file is recorded in :attr:`bad_files` and its index yields
    the next readable image of the split instead, so a DataLoader batch keeps its size. The record is a
    flag per file in shared memory, so files met by DataLoader workers (processes of their own) count
    in the process that made the split: the engine reports them at the end of a run.
    """

    def __init__(
        self,
        files: list[Path],
        labels: list[int],
        image_size: int,
        on_bad_image: Literal["error", "skip"],
        decode: Literal["auto", "device", "workers"] = "auto",
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        *,
        resize: int | None = None,
    ) -> None:
        self.files = files
        self.labels = torch.tensor(labels, dtype=torch.int64)
        self.image_size = image_size
        self.resize = image_size if resize is None else resize
        self.on_bad_image = on_bad_image
        self.decode = decode
        self.max_image_pixels = max_image_pixels
        # One flag per file; shared memory survives the fork or spawn of DataLoader workers.
        self._bad = torch.zeros(len(files), dtype=torch.bool).share_memory_()

    @property
    def bad_files(self) -> list[Path]:
        """The unreadable files skipped so far, by this process and its DataLoader workers."""
        return [self.files[index] for index in self._bad.nonzero().flatten().tolist()]

    @property
    def skipped(self) -> int:
        """Number of distinct unreadable files skipped so far."""
        return int(self._bad.sum())

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        count = len(self.files)
        if not -count <= index < count:
            raise IndexError(f"index {index} out of range for {count} images")
        for offset in range(count):
            position = (index + offset) % count
            if self._bad[position]:
                continue
            try:
                image = self.prepare(decode_file(self.files[position], self.max_image_pixels))
                return image, int(self.labels[position])
            except BadImageError as error:
                if self.on_bad_image == "error":
                    raise
                self._bad[position] = True
                warnings.warn(f"skipping {error.path}: {error.reason}", stacklevel=2)
        raise NoReadableImageError(self.files[index], len(self.files))

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """A decoded image (3, H, W), or a stack of images of one size (N, 3, H, W), as items: uint8
        (..., 3, S, S), the centre crop (on whichever device the images are)."""
        return centre_crop(images, self.image_size, self.resize)

    def batch_of(self, images: list[torch.Tensor]) -> ImageBatch:
        """Prepared items (each (3, S, S), on one device) as one batch: stacked, as the workers stack them."""
        return ImageBatch(torch.stack(images))

    # --- decoding on the device (DeviceDecodable) -----------------------------------------------------

    def decodes_on(self, device: torch.device) -> bool:
        """ "auto": on CUDA, for a split of (almost) only JPEG files; other files would all be decoded one
        by one in the training process, slower than by parallel workers."""
        if self.decode == "auto":
            return device.type == "cuda" and self.jpeg_share >= AUTO_MIN_JPEG_SHARE
        return self.decode == "device"

    @property
    def jpeg_share(self) -> float:
        """The fraction of the split's files named *.jpg or *.jpeg."""
        jpegs = sum(path.suffix.lower() in (".jpg", ".jpeg") for path in self.files)
        return jpegs / max(len(self.files), 1)

    def encoded_item(self, index: int) -> EncodedItem:
        """Item ``index`` as ``(index, file bytes uint8 (L,), label)``: the only work a loader worker does.

        An empty or unreadable file gives no bytes; ``decode_batch`` sends it to the CPU path, which
        reports (or skips) the file as the worker path does."""
        try:
            data = self.files[index].read_bytes()
        except OSError:
            data = b""
        encoded = (
            torch.frombuffer(bytearray(data), dtype=torch.uint8)
            if data
            else torch.empty(0, dtype=torch.uint8)
        )
        return index, encoded, int(self.labels[index])

    def decode_batch(self, items: list[EncodedItem], device: torch.device) -> tuple[ImageBatch, torch.Tensor]:
        """The images (:meth:`batch_of` the prepared items) and labels int64 (B,) on ``device`` for the
        encoded ``items``.

        Complete JPEGs whose header passes the checks are decoded together on ``device``; every other
        file goes through item-by-item CPU decoding (``self[index]``), which raises or skips an
        unreadable one as the worker path would (a JPEG claiming 65,000 x 65,000 pixels would otherwise
        exhaust the GPU's memory, which is raised as a device failure, not as a bad file).
        """
        images: list[torch.Tensor | None] = [None] * len(items)
        labels = [label for _, _, label in items]
        jpegs = [
            position
            for position, (index, data, _) in enumerate(items)
            if is_complete_jpeg(data) and self._passes_checks(index, data)
        ]
        decoded = decode_jpegs([items[p][1] for p in jpegs], device)
        # Images of one size are prepared together (ImageNet's are mostly 500x375 or 375x500): the same
        # arithmetic as one by one, in a few large kernels instead of a few small ones per image.
        by_size: dict[tuple[int, ...], list[int]] = {}
        for position, image in zip(jpegs, decoded, strict=True):
            if image is not None:
                by_size.setdefault(tuple(image.shape), []).append(position)
                images[position] = image
        for same_size in by_size.values():
            for start in range(0, len(same_size), RESIZE_GROUP):
                positions = same_size[start : start + RESIZE_GROUP]
                prepared = self.prepare(torch.stack([images[p] for p in positions]))  # type: ignore[misc]
                for position, image in zip(positions, prepared, strict=True):
                    images[position] = image
        for position, image in enumerate(images):
            if image is None:
                cpu_image, labels[position] = self[items[position][0]]
                images[position] = cpu_image.to(device, non_blocking=True)
        batch = self.batch_of(images)  # type: ignore[arg-type]
        return batch, torch.tensor(labels, dtype=torch.int64).to(device, non_blocking=True)

    def _passes_checks(self, index: int, data: torch.Tensor) -> bool:
        """Whether the bytes ``data`` of file ``index`` pass :func:`check_encoded_image`; a file that
        does not is left to the CPU path, which reports or skips it by the split's ``on_bad_image``."""
        try:
            check_encoded_image(self.files[index], data.numpy().tobytes(), self.max_image_pixels)
        except BadImageError:
            return False
        return True


class PhotoFolderSplit(ImageFolderSplit, VariableSizeSplit):
    """One split of an image folder as pretraining reads it: item i is ``(uint8 (3, h, w), class index)``,
    the whole photo at its own size, downscaled (aspect ratio kept, antialiased) only when its longer
    side exceeds ``max_side`` (:func:`~.image_sizing.within_side`).

    A :class:`~contrastive_core.components.VariableSizeSplit`: a batch is one uint8 canvas
    (B, 3, max_side, max_side) with every photo's size (:class:`~contrastive_core.engine.ImageBatch`),
    padded by the loader workers or, on the device path, by :meth:`batch_of` on the device, in the same
    way. Decoding, bad files and the device path are :class:`ImageFolderSplit`'s.
    """

    fixed_size_setting = 'train_images = "square"'

    def __init__(
        self,
        files: list[Path],
        labels: list[int],
        max_side: int,
        on_bad_image: Literal["error", "skip"],
        decode: Literal["auto", "device", "workers"] = "auto",
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    ) -> None:
        # The base class's image_size and resize describe its centre crop, which prepare() replaces here.
        super().__init__(files, labels, max_side, on_bad_image, decode, max_image_pixels)
        self.max_side = max_side

    @property
    def canvas_side(self) -> int:
        return self.max_side

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """(..., 3, H, W) -> (..., 3, h, w): the photos, downscaled only to fit ``max_side``."""
        return within_side(images, self.max_side)

    def batch_of(self, images: list[torch.Tensor]) -> ImageBatch:
        """Photos (each (3, h_i, w_i), on one device) as one canvas with their sizes, as the workers pad them."""
        return canvas_batch(images, self.max_side)


class ImageFolderParams(ComponentParams):
    type: Literal["image_folder"]

    root: str
    """Folder holding one sub-folder per split, each with one sub-folder of images per class."""

    train_dir: str = "train"
    """Sub-folder of root with the training split (split "train"); it defines the classes."""

    test_dir: str = "val"
    """Sub-folder of root with the split used for testing (split "test"); ImageNet's is "val"."""

    image_size: int = Field(224, gt=0)
    """Side S of the evaluation images (every split that evaluation stages read): the shorter side is
    resized to round(S / eval_crop_fraction), then the centre S x S is kept. Also the side of the
    pretraining images with train_images = "square"."""

    eval_crop_fraction: float = Field(CROP_PROPORTION, gt=0, le=1)
    """Share of the resized shorter side an evaluation image keeps: 0.875 resizes to 256 and keeps the
    centre 224 (google-research/simclr CROP_PROPORTION, the standard ImageNet evaluation); 1 keeps the
    whole shorter side (the centre square resized to S)."""

    train_images: Literal["photo", "square"] = "photo"
    """What pretraining (the pretrain stage's split) reads. "photo": every photo whole at its own size
    (up to max_side), so the random resized crop draws each view from the whole photo, as in the paper
    (the first augmentation must then be random_resized_crop); "square": the shorter side resized to
    image_size and the centre square, from which the crop then draws (this dataset's behaviour before
    photos kept their size)."""

    max_side: int = Field(512, ge=16)
    """With train_images = "photo": the longest side a training photo keeps; larger ones are downscaled
    (aspect ratio kept, antialiased), smaller ones are not enlarged. Also the side of the square canvas
    each training batch is padded into (B x 3 x max_side x max_side uint8, on the device): 512 keeps
    ImageNet's typical photos (500 x 375, 500 x 333) at full resolution."""

    on_bad_image: Literal["error", "skip"] = "error"
    """What a truncated or non-image file does: "error" stops with its path, "skip" leaves it out
    (its index yields the next readable image) and counts it in the split's `skipped`."""

    decode: Literal["auto", "device", "workers"] = "auto"
    """Where images are decoded. "auto": JPEGs on the GPU (nvJPEG, whole batches) when training runs on
    CUDA, else in the loader workers; "device": always batched on the training device (on a CPU device
    that is the main process); "workers": always in the loader workers, on the CPU. Files that are not
    complete JPEGs are decoded on the CPU in every case."""

    max_image_pixels: int = Field(DEFAULT_MAX_IMAGE_PIXELS, gt=0)
    """Largest image accepted, in pixels (width x height, times the frames of an animated GIF), read
    from the file's header before decoding; a larger one is an unreadable file (see on_bad_image) whose
    error names this param. The default, Pillow's limit, is 13,377 x 13,377 pixels (537 MB decoded)."""


class ImageFolder(Dataset):
    """ImageNet-style root/<split>/<class>/ folders: whole photos for pretraining, centre crops for eval.

    :meth:`training_split` gives the photos at their own sizes (or squares, ``train_images``), and
    :meth:`split` the evaluation views.
    """

    name = "image_folder"
    Params = ImageFolderParams

    def __init__(self, params: ImageFolderParams) -> None:
        super().__init__(params)
        self._classes: list[str] | None = None

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    @property
    def root(self) -> Path:
        return Path(self.params.root).expanduser()

    def folder(self, name: str) -> Path:
        """The folder of split ``name``."""
        if name not in self.splits:
            raise UnknownSplitError(self.name, name, self.splits)
        return self.root / (self.params.train_dir if name == "train" else self.params.test_dir)

    @property
    def classes(self) -> list[str]:
        """Sorted class folder names of the training split (of the test split if there is no training one)."""
        if self._classes is None:
            source = self.folder("train")
            if not source.is_dir():
                source = self.folder("test")
            if not source.is_dir():
                raise DatasetNotFoundError(
                    self.name,
                    [f"{self.folder('train')}/<class>/<image>", f"{self.folder('test')}/<class>/<image>"],
                    "Put the images in one sub-folder per class under each split folder, or set train_dir "
                    "and test_dir to the split folders' names.",
                )
            self._classes = sorted(
                entry.name for entry in source.iterdir() if entry.is_dir() and not entry.name.startswith(".")
            )
        return self._classes

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> ImageFolderSplit:
        """The split ``name`` as evaluation reads it: the centre crop of every image (see
        :class:`ImageFolderParams` ``image_size`` and ``eval_crop_fraction``)."""
        files, labels = self._files(name)
        params = self.params
        return ImageFolderSplit(
            files,
            labels,
            params.image_size,
            params.on_bad_image,
            params.decode,
            params.max_image_pixels,
            resize=eval_resize_side(params.image_size, params.eval_crop_fraction),
        )

    def training_split(self, name: str) -> ImageFolderSplit:
        """The split ``name`` as pretraining reads it: whole photos (:class:`PhotoFolderSplit`) with
        ``train_images = "photo"``, else the centre squares of side ``image_size``."""
        files, labels = self._files(name)
        params = self.params
        if params.train_images == "photo":
            return PhotoFolderSplit(
                files, labels, params.max_side, params.on_bad_image, params.decode, params.max_image_pixels
            )
        return ImageFolderSplit(
            files, labels, params.image_size, params.on_bad_image, params.decode, params.max_image_pixels
        )

    def _files(self, name: str) -> tuple[list[Path], list[int]]:
        """The image files of split ``name``, sorted by class folder and path, and their class indices."""
        folder = self.folder(name)
        if not folder.is_dir():
            raise DatasetNotFoundError(
                self.name,
                [f"{folder}/<class>/<image>"],
                f"Put the {name} images in one sub-folder per class under {folder}, or set "
                f"{'train_dir' if name == 'train' else 'test_dir'} to the folder's name under {self.root}.",
            )
        index_of = {class_name: index for index, class_name in enumerate(self.classes)}
        files: list[Path] = []
        labels: list[int] = []
        for class_folder in sorted(
            entry for entry in folder.iterdir() if entry.is_dir() and not entry.name.startswith(".")
        ):
            if class_folder.name not in index_of:
                raise DatasetNotFoundError(
                    self.name,
                    [str(self.folder("train") / class_folder.name)],
                    f"The class folder {class_folder} has no counterpart in the training split, whose classes "
                    "define the labels; every split must use the training split's class names.",
                )
            images = list_images(class_folder)
            files += images
            labels += [index_of[class_folder.name]] * len(images)
        if not files:
            raise DatasetNotFoundError(
                self.name,
                [f"{folder}/<class>/<image>{{{','.join(sorted(IMAGE_SUFFIXES))}}}"],
                "No image file was found in the class sub-folders; suffixes other than these are ignored.",
            )
        return files, labels
