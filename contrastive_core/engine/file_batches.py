"""Reading batches of a file-backed split (an image folder) with DataLoader workers.

Two ways, chosen by the split:

* **decode in the workers** (any split): each worker reads and decodes its images on the CPU, and the
  batch of uint8 images is copied to the device;
* **decode on the device** (splits that are :class:`DeviceDecodable`, when they say so for the device):
  workers only read the files' bytes, and the split decodes the whole batch on the device at once, e.g.
  JPEG with ``torchvision.io.decode_jpeg(..., device="cuda")`` (nvJPEG). Decoding runs in a background
  thread, up to two batches ahead of training and on a CUDA stream of its own, so it overlaps the
  training step instead of delaying it (nvJPEG's Huffman stage runs on the host, without the GIL).

In both, an error a dataset raises in a worker (an unreadable image) reaches the training process as
the same clean :class:`~contrastive_core.errors.ContrastiveError` it would raise in the main process,
not as DataLoader's ``RuntimeError`` holding a worker traceback.

A split of images of one size gives stacked batches. A
:class:`~contrastive_core.components.dataset.VariableSizeSplit` (an image folder's photos, for
pretraining) gives each batch as one padded canvas with every image's size
(:class:`~.image_batch.ImageBatch`): the workers pad what they decoded, the device path pads on the
device. :func:`read_image_batches` reads any split; :func:`read_batches`, what evaluation uses, reads
splits of one size only.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from functools import partial
from typing import Any

import torch
import torch.utils.data

from ..components.dataset import VariableSizeSplit
from ..errors import ContrastiveError
from .image_batch import ImageBatch, canvas_batch

#: One encoded item as workers hand it over: (index in the split, file bytes uint8 (L,), label).
EncodedItem = tuple[int, torch.Tensor, int]


class DeviceDecodable(ABC):
    """A split whose images the engine may decode on the training device, a batch at a time.

    Item ``i`` of the split itself is still ``(uint8 (C, H, W), label)`` decoded on the CPU; this mixin
    adds the two halves of the device path: :meth:`encoded_item`, which runs in loader workers and only
    reads, and :meth:`decode_batch`, which runs in the training process and decodes on the device.
    """

    @abstractmethod
    def decodes_on(self, device: torch.device) -> bool:
        """Whether batches for ``device`` should be decoded there (False: the workers decode)."""

    @abstractmethod
    def encoded_item(self, index: int) -> EncodedItem:
        """``(index, bytes uint8 (L,), label)`` of item ``index``, without decoding it."""

    @abstractmethod
    def decode_batch(self, items: list[EncodedItem], device: torch.device) -> tuple[ImageBatch, torch.Tensor]:
        """The batch decoded on ``device``: its images (uint8 (B, C, H, W), with their sizes for a
        :class:`~contrastive_core.components.dataset.VariableSizeSplit`, padded as the worker path pads
        them) and labels int64 (B,), in order.

        Must give what item-by-item CPU decoding gives (including its error or skip behaviour for
        unreadable files) up to the decoder's rounding.
        """


class WorkerDataError(ContrastiveError):
    """A dataset error raised in a DataLoader worker, re-raised in the training process with its message.

    DataLoader turns an exception in a worker into a ``RuntimeError`` whose message holds the worker's
    traceback; a bad input (an unreadable image) would then look like a crash. The worker returns the
    error as a value instead (its message and exit code, which pickle), and the main process raises it.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self) -> tuple[type, tuple[str, int]]:
        return (type(self), (str(self), self.exit_code))


def read_batches(
    split: torch.utils.data.Dataset,
    index_batches: Iterable[list[int]],
    device: torch.device,
    num_workers: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """For each list of indices (B,): (images uint8 (B, C, H, W), labels int64 (B,)) on ``device``, for a
    split whose images share one size (every evaluation split); see :func:`read_image_batches`.

    A :class:`~contrastive_core.components.dataset.VariableSizeSplit` is refused (TypeError): its
    batches are padded canvases that only a pipeline starting with a crop may read.
    """
    if isinstance(_parent_split(split), VariableSizeSplit):
        raise TypeError(
            f"{type(_parent_split(split)).__name__} holds images of different sizes; read it with "
            "read_image_batches, whose batches carry each image's size"
        )
    for batch, labels in read_image_batches(split, index_batches, device, num_workers):
        yield batch.pixels, labels


def read_image_batches(
    split: torch.utils.data.Dataset,
    index_batches: Iterable[list[int]],
    device: torch.device,
    num_workers: int,
) -> Iterator[tuple[ImageBatch, torch.Tensor]]:
    """For each list of indices (B,): (the images as an :class:`ImageBatch`, labels int64 (B,)) on
    ``device``. A :class:`~contrastive_core.components.dataset.VariableSizeSplit` gives canvases
    (B, C, S, S) with sizes (B, 2); any other split stacked images (B, C, H, W) without sizes.

    With ``num_workers == 0`` the items are read in this process (errors then propagate unchanged).
    """
    index_batches = [list(indices) for indices in index_batches]
    while isinstance(split, torch.utils.data.Subset):  # e.g. a label fraction: read its parent's files
        index_batches = [[split.indices[index] for index in indices] for indices in index_batches]
        split = split.dataset
    on_device = isinstance(split, DeviceDecodable) and split.decodes_on(device)
    items: torch.utils.data.Dataset = _EncodedView(split) if on_device else split  # type: ignore[arg-type]
    if on_device:
        collate: Callable = pack_encoded
    elif isinstance(split, VariableSizeSplit):
        collate = partial(_pad_decoded, side=split.canvas_side)
    else:
        collate = _stack_decoded
    loader = torch.utils.data.DataLoader(
        _ErrorsAsValues(items) if num_workers > 0 else items,
        batch_sampler=index_batches,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
        collate_fn=collate,
        persistent_workers=False,
    )
    if on_device:
        decode = split.decode_batch  # type: ignore[union-attr]
        yield from DecodeAhead(iter(loader), lambda packed, on: decode(unpack_encoded(packed), on), device)
        return
    for batch in loader:
        if isinstance(batch, WorkerDataError):
            raise batch
        *images, labels = batch  # (pixels, labels), or (pixels, sizes, labels) from a canvas
        yield ImageBatch(*images).to(device, non_blocking=True), labels.to(device, non_blocking=True)


def _parent_split(split: torch.utils.data.Dataset) -> torch.utils.data.Dataset:
    """The split whose files a (possibly nested) Subset reads."""
    while isinstance(split, torch.utils.data.Subset):
        split = split.dataset
    return split


#: Marks the end of the batches in :class:`DecodeAhead`'s queue.
_END = object()


class DecodeAhead:
    """Decodes encoded batches in a background thread, ``depth`` batches ahead of the consumer.

    Iterating yields ``decode(batch, device)`` for each batch of ``batches``, in order. On CUDA the
    thread decodes on a stream of its own and waits (itself, not the consumer) until each batch is
    done before it hands it over, so the consumer's stream can use the tensors at once.
    An error in the thread (e.g. an unreadable image) is raised by the consumer at that batch. When
    the consumer stops early, the thread stops at its next batch and the loader's workers shut down.
    """

    def __init__(
        self,
        batches: Iterator[object],
        decode: Callable[[Any, torch.device], tuple[torch.Tensor | ImageBatch, torch.Tensor]],
        device: torch.device,
        depth: int = 2,
    ) -> None:
        self.device = device
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self._thread = threading.Thread(
            target=self._decode_all, args=(batches, decode), name="contrastive-decode", daemon=True
        )
        self._thread.start()

    def _decode_all(self, batches: Iterator[object], decode: Callable) -> None:
        try:
            with torch.cuda.stream(self._stream) if self._stream is not None else nullcontext():
                for batch in batches:
                    if isinstance(batch, WorkerDataError):
                        raise batch
                    images, labels = decode(batch, self.device)
                    if self._stream is not None:
                        # Wait here, in this thread, until the batch is decoded. Decoders may write on
                        # streams of their own into memory allocated on this one (torchvision's nvJPEG
                        # decoder does), so the next batch must not start while this one's kernels
                        # still run: its allocations could reuse memory they read.
                        self._stream.synchronize()
                    if not self._put((images, labels)):
                        return
            self._put(_END)
        except BaseException as error:  # handed to the consumer, who raises it
            self._put(error)

    def _put(self, item: object) -> bool:
        """Queue ``item`` unless the consumer has stopped; whether it was queued."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[tuple[torch.Tensor | ImageBatch, torch.Tensor]]:
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                images, labels = item  # type: ignore[misc]
                if self._stream is not None:
                    # Decoded (the thread waited); allocated on the decoding stream, so keep their memory
                    # from reuse until the consumer's stream is done with them.
                    consumer = torch.cuda.current_stream(self.device)
                    images.record_stream(consumer)
                    labels.record_stream(consumer)
                yield images, labels
        finally:
            self.close()

    def close(self, timeout: float = 30.0) -> None:
        """Stop the thread after the batch it is on and wait for it (at most ``timeout`` seconds), so its
        loader's workers shut down before the process goes on (or exits)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)


class _EncodedView(torch.utils.data.Dataset):
    """Item i of a :class:`DeviceDecodable` split as its bytes (what device decoding needs workers for)."""

    def __init__(self, split: DeviceDecodable) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> EncodedItem:
        return self.split.encoded_item(index)


class _ErrorsAsValues(torch.utils.data.Dataset):
    """Wraps a dataset read by workers: item i, or the :class:`WorkerDataError` its reading raised."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> object:
        try:
            return self.dataset[index]
        except ContrastiveError as error:
            return WorkerDataError(str(error), error.exit_code)


def _first_error(items: list[object]) -> WorkerDataError | None:
    return next((item for item in items if isinstance(item, WorkerDataError)), None)


def _stack_decoded(items: list) -> tuple[torch.Tensor, torch.Tensor] | WorkerDataError:
    error = _first_error(items)
    if error is not None:
        return error
    images = torch.stack([image for image, _ in items])
    labels = torch.tensor([int(label) for _, label in items], dtype=torch.int64)
    return images, labels


def _pad_decoded(items: list, side: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | WorkerDataError:
    """Collate decoded images of different sizes, in the worker: (canvas uint8 (B, C, side, side),
    sizes int64 (B, 2), labels int64 (B,)), as plain tensors so that the loader pins them."""
    error = _first_error(items)
    if error is not None:
        return error
    batch = canvas_batch([image for image, _ in items], side)
    labels = torch.tensor([int(label) for _, label in items], dtype=torch.int64)
    return batch.pixels, batch.sizes, labels  # type: ignore[return-value]


#: A batch of encoded files as it crosses from a loader worker to the training process: indices (B,),
#: labels (B,), byte lengths (B,) and all the files' bytes end to end (sum of lengths,).
PackedBatch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def pack_encoded(items: list) -> PackedBatch | WorkerDataError:
    """Collate encoded items into four tensors (see :data:`PackedBatch`), in the worker.

    A DataLoader moves every tensor of a batch through its own shared-memory file; B separate files'
    bytes cost B of those per batch, which on a 16-core H100 machine limited 8 workers to about 1,500
    images/s (measured, docs/performance.md). One tensor of bytes costs one.
    """
    error = _first_error(items)
    if error is not None:
        return error
    indices = torch.tensor([index for index, _, _ in items], dtype=torch.int64)
    labels = torch.tensor([label for _, _, label in items], dtype=torch.int64)
    lengths = torch.tensor([len(data) for _, data, _ in items], dtype=torch.int64)
    data = torch.cat([data for _, data, _ in items]) if items else torch.empty(0, dtype=torch.uint8)
    return indices, labels, lengths, data


def unpack_encoded(packed: PackedBatch) -> list[EncodedItem]:
    """The items of a :data:`PackedBatch`; each file's bytes are a view into the packed tensor."""
    indices, labels, lengths, data = packed
    files = data.split(lengths.tolist())
    return list(zip(indices.tolist(), files, labels.tolist(), strict=True))
