"""Write tests/fixtures/photos/: an ImageNet-style folder of real colour JPEG photos of varied sizes.

    python scripts/make_photo_fixture.py SOURCE [--out tests/fixtures/photos]

SOURCE is a folder holding scikit-image's bundled sample photos (``skimage/data/`` of the scikit-image
0.26.0 wheel from PyPI: ``pip download scikit-image==0.26.0 --no-deps`` and unzip it). Only the
photos whose licence is public domain or CC0 are used (:data:`PHOTOS`, with each one's source and
licence as skimage's ``_fetchers.py`` records them). The tests read only the committed output, so
they need neither the network nor this script.

Each fixture image is a crop of one photo with the aspect ratio of its target size (between 60% and
100% of the largest such crop, at a seeded position), resized to that size (bilinear, antialiased)
and written as a baseline JPEG of quality 85 (``torchvision.io.encode_jpeg``). The target sizes
(:data:`TRAIN_SIZES`) mix ImageNet's common photo shapes (500x375, 375x500, 500x333, ...) with
squares, very wide and very tall shapes and small images, so that the SimCLR crop's statistics on
photos of their own size can be compared with torchvision's. Layout::

    OUT/train/<photo name>/<index>_<height>x<width>.jpg   (5 per photo, 30 in all)
    OUT/val/<photo name>/<index>_<height>x<width>.jpg     (1 per photo, 6 in all)

The output is reproducible byte for byte (fixed seed, the same libjpeg).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torchvision.io import ImageReadMode, decode_image, encode_jpeg
from torchvision.transforms.v2 import functional as F

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPOSITORY / "tests" / "fixtures" / "photos"
SEED = 2020
QUALITY = 85

#: Class (folder) name -> (file in SOURCE, its source and licence as skimage's _fetchers.py states them).
PHOTOS = {
    "astronaut": ("astronaut.png", "NASA Great Images database (Eileen Collins); public domain"),
    "chelsea": ("chelsea.png", "Stefan van der Walt (Chelsea the cat); CC0"),
    "coffee": ("coffee.png", "Rachel Michetti, courtesy of Pikolo Espresso Bar; CC0"),
    "rocket": ("rocket.jpg", "SpaceX Photos on Flickr (DSCOVR launch); public domain"),
    "hubble": ("hubble_deep_field.jpg", "NASA HubbleSite (eXtreme Deep Field); public domain"),
    "retina": ("retina.jpg", "Mikael Haggstrom, Wikimedia Commons (fundus photograph); CC0 1.0"),
}

#: (height, width) of the training images, dealt to the photos in turn (photo i gets sizes i, i + 6, ...).
TRAIN_SIZES = [
    (375, 500), (500, 375), (427, 640), (333, 500), (300, 300), (600, 800),
    (512, 256), (281, 500), (500, 333), (240, 320), (320, 240), (180, 320),
    (400, 400), (150, 200), (256, 512), (480, 360), (200, 150), (334, 500),
    (120, 160), (300, 450), (224, 224), (160, 240), (350, 350), (96, 128),
    (270, 480), (210, 280), (336, 252), (140, 250), (260, 390), (375, 250),
]  # fmt: skip
#: (height, width) of the one test image per photo.
VAL_SIZES = [(240, 320), (320, 240), (200, 300), (256, 256), (180, 240), (300, 200)]


def read_photo(path: Path) -> torch.Tensor:
    """The photo at ``path`` as uint8 RGB (3, H, W)."""
    return decode_image(str(path), mode=ImageReadMode.RGB)


def crop_to_size(photo: torch.Tensor, size: tuple[int, int], generator: torch.Generator) -> torch.Tensor:
    """A seeded crop of ``photo`` with the aspect ratio of ``size`` (60-100% of the largest one that
    fits), resized to ``size``: uint8 (3, height, width)."""
    height, width = size
    photo_height, photo_width = photo.shape[-2:]
    largest = min(photo_height / height, photo_width / width)  # scale of the largest crop that fits
    scale = largest * (0.6 + 0.4 * torch.rand((), generator=generator).item())
    crop_height, crop_width = min(photo_height, round(height * scale)), min(photo_width, round(width * scale))
    top = int(torch.randint(0, photo_height - crop_height + 1, (), generator=generator))
    left = int(torch.randint(0, photo_width - crop_width + 1, (), generator=generator))
    crop = F.crop(photo, top, left, crop_height, crop_width)
    return F.resize(crop, [height, width], antialias=True)


def write_split(out: Path, photos: dict[str, torch.Tensor], sizes: list[tuple[int, int]], seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    names = list(photos)
    for index, size in enumerate(sizes):
        name = names[index % len(names)]
        image = crop_to_size(photos[name], size, generator)
        path = out / name / f"{index:02d}_{size[0]}x{size[1]}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode_jpeg(image, quality=QUALITY).numpy().tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="folder with scikit-image's sample photos (skimage/data)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args()
    photos = {name: read_photo(args.source / file) for name, (file, _) in PHOTOS.items()}
    write_split(args.out / "train", photos, TRAIN_SIZES, SEED)
    write_split(args.out / "val", photos, VAL_SIZES, SEED + 1)
    total = sum(path.stat().st_size for path in args.out.rglob("*.jpg"))
    print(f"wrote {len(TRAIN_SIZES) + len(VAL_SIZES)} JPEGs ({total / 1024:.0f} KiB) under {args.out}")


if __name__ == "__main__":
    main()
