"""Where the time of image-folder decoding goes, for one batch of JPEGs, on the CPU and on a GPU.

    python scripts/profile_jpeg_decoding.py FOLDER [--batch 256] [--size 224]

Reads ``--batch`` JPEG files under FOLDER (e.g. one made by scripts/make_jpeg_folder.py) and times, as
medians of 5 repetitions after one warm-up, in this one process:

* ``cpu_decode_square``: image_folder's worker path, file bytes -> decode -> resize -> crop, one
  thread, per image (a loader worker does this for each image of its batch);
* ``cuda_decode``: ``torchvision.io.decode_jpeg(list, device="cuda")``, the batched nvJPEG call alone;
* ``cuda_to_square``: resizing and cropping the decoded batch on the GPU, image by image;
* ``cuda_decode_batch``: image_folder's whole device path (``decode_batch``) for the batch.

Prints one JSON line per measurement (milliseconds per batch and images per second).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_jpeg

from contrastive_plugins.datasets.image_folder import ImageFolderSplit, decode_square, to_square


def median_ms(function, repeats: int = 5) -> float:
    function()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    files = sorted(args.folder.rglob("*.jpg"))[: args.batch]
    data = [torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8) for path in files]
    count = len(files)

    def emit(name: str, milliseconds: float) -> None:
        print(
            json.dumps(
                {
                    "profile": name,
                    "images": count,
                    "ms": round(milliseconds, 2),
                    "images_per_s": round(1000 * count / milliseconds, 1),
                }
            ),
            flush=True,
        )

    torch.set_num_threads(1)
    emit("cpu_decode_square", median_ms(lambda: [decode_square(path, args.size) for path in files], 2))
    if not torch.cuda.is_available():
        return
    cuda = torch.device("cuda")
    decoded = decode_jpeg(data, mode=ImageReadMode.RGB, device=cuda)
    emit("cuda_decode", median_ms(lambda: decode_jpeg(data, mode=ImageReadMode.RGB, device=cuda)))
    emit("cuda_to_square", median_ms(lambda: [to_square(image, args.size) for image in decoded]))
    split = ImageFolderSplit(files, [0] * count, args.size, "error", "device")
    items = [split.encoded_item(index) for index in range(count)]
    emit("cuda_decode_batch", median_ms(lambda: split.decode_batch(items, cuda)))


if __name__ == "__main__":
    main()
