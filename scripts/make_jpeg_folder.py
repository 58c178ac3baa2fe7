"""Write an ImageNet-style folder of JPEG photos, for benchmarking image-folder loading and decoding.

    python scripts/make_jpeg_folder.py OUT [--images 5120] [--classes 10] [--source skimage|DIR]

No ImageNet is available offline, so the images are cut from real photographs: by default the colour
photographs shipped inside scikit-image (``skimage.data``: astronaut, chelsea, coffee, rocket, Hubble
deep field, immunohistochemistry; public domain or CC0, see skimage's data/README), or the image
files of any folder given with ``--source``. Each output image is a random crop of one source photo
(10-100% of its area, aspect ratio 3:4 to 4:3), randomly flipped and resized to an ImageNet-typical size
(500x375, 375x500, 500x333 or 400x400), then written as a baseline JPEG of quality 90, as most of
ImageNet is. Output: ``OUT/train/class_XX/NNNNNN.jpg`` and a few per class in ``OUT/val/``; the folder
is reproducible for a given seed. Used by ``scripts/gpu_check.sh``; not by the tests.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_image, encode_jpeg

SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry")
SIZES = [(375, 500), (500, 375), (333, 500), (400, 400)]  # (height, width)


def source_photos(source: str) -> list[torch.Tensor]:
    """The source photographs as uint8 (3, H, W) tensors."""
    if source == "skimage":
        import skimage.data

        photos = []
        for name in SKIMAGE_PHOTOS:
            try:
                array = getattr(skimage.data, name)()
            except Exception as error:  # a photo skimage would have to download, or one it lacks
                print(f"skipping skimage.data.{name}: {error}", file=sys.stderr)
                continue
            photos.append(torch.from_numpy(array[..., :3].copy()).permute(2, 0, 1).contiguous())
        return photos
    files = sorted(
        path for path in Path(source).rglob("*") if path.suffix.lower() in {".jpg", ".jpeg", ".png"}
    )
    return [decode_image(str(path), mode=ImageReadMode.RGB) for path in files]


def make_image(photo: torch.Tensor, seed: int) -> torch.Tensor:
    """One random crop of ``photo`` (see the module docstring) as uint8 (3, h, w)."""
    generator = torch.Generator().manual_seed(seed)

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=generator))

    _, height, width = photo.shape
    area = uniform(0.1, 1.0) * height * width
    aspect = uniform(0.75, 4 / 3)
    crop_h = max(8, min(height, round((area / aspect) ** 0.5)))
    crop_w = max(8, min(width, round((area * aspect) ** 0.5)))
    top = int(torch.randint(0, height - crop_h + 1, (), generator=generator))
    left = int(torch.randint(0, width - crop_w + 1, (), generator=generator))
    crop = photo[:, top : top + crop_h, left : left + crop_w]
    if float(torch.rand((), generator=generator)) < 0.5:
        crop = crop.flip(-1)
    out_h, out_w = SIZES[int(torch.randint(0, len(SIZES), (), generator=generator))]
    resized = F.interpolate(crop[None].float(), size=(out_h, out_w), mode="bilinear", antialias=True)
    return resized[0].round().clamp(0, 255).to(torch.uint8)


def _write(job: tuple[Path, int, int]) -> None:
    path, photo_index, seed = job
    path.write_bytes(encode_jpeg(make_image(_PHOTOS[photo_index], seed), quality=90).numpy().tobytes())


_PHOTOS: list[torch.Tensor] = []


def _init(photos: list[torch.Tensor]) -> None:
    torch.set_num_threads(1)
    _PHOTOS[:] = photos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", type=int, default=5120, help="training images (default 5120)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--val-per-class", type=int, default=8)
    parser.add_argument("--source", default="skimage", help="'skimage' or a folder of photos")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    photos = source_photos(args.source)
    if not photos:
        print(f"no source photos found in {args.source!r}", file=sys.stderr)
        return 2
    jobs = []
    for split, count in (("train", args.images), ("val", args.val_per_class * args.classes)):
        for index in range(count):
            folder = args.out / split / f"class_{index % args.classes:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            seed = args.seed * 10_000_019 + (index if split == "train" else 5_000_000 + index)
            jobs.append((folder / f"{index:06d}.jpg", index % len(photos), seed))
    with multiprocessing.get_context("fork").Pool(initializer=_init, initargs=(photos,)) as pool:
        pool.map(_write, jobs, chunksize=64)
    size = sum(path.stat().st_size for path, _, _ in jobs)
    print(f"wrote {len(jobs)} JPEGs ({size / 2**20:.0f} MiB) from {len(photos)} photos to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
