"""SimCLR's crop boxes on real photos, in the photos' own pixels: ours, torchvision's, the old square's.

The paper samples every view's box from the photo itself (Chen et al. 2020, Appendix A;
google-research/simclr ``distorted_bounding_box_crop``), as torchvision's ``RandomResizedCrop`` does.
Two statistics tell a crop drawn from the whole photo from one drawn from its centre square:

* the **zoom** of a crop, ``output side / sqrt(box height x box width)`` in the pixels of the image the
  box is cut from: the factor by which the resize enlarges the crop (> 1, upsampled) or shrinks it
  (< 1, downsampled), the geometric mean of its two axes'; its 10%, 50% and 90% quantiles. The old
  behaviour cut its boxes from the 224 x 224 centre square, so its zoom is in the square's pixels
  (it is always >= 1: a box of the square is never larger than the output);
* the share of boxes that **reach the outer 12.5%** of the photo's longer side (at either end), in
  the photo's pixels: the borders a centre square cuts away (all of them on a 500 x 375 photo).

Print them for the photo fixture (tests/fixtures/photos/train)::

    .venv/bin/python -m tests.simclr.crop_statistics [--draws 20000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torchvision.transforms.v2 import RandomResizedCrop as TorchvisionRandomResizedCrop

from contrastive_plugins.simclr.augmentations import RandomResizedCrop

PHOTOS = Path(__file__).resolve().parents[1] / "fixtures" / "photos"
#: SimCLR's ImageNet output side.
OUTPUT = 224
#: The outer share of the longer side that a centre square loses on a 4:3 photo.
OUTER = 0.125


def tiled(sizes: torch.Tensor, draws: int) -> torch.Tensor:
    """int64 (draws, 2): the photo sizes (P, 2) repeated in turn, one row per box to draw."""
    return sizes.repeat(-(-draws // len(sizes)), 1)[:draws]


def our_boxes(sizes: torch.Tensor, seed: int, canvas_side: int) -> torch.Tensor:
    """int64 (N, 4) boxes (top, left, height, width) of the registered crop, drawn within each photo's own
    size (N, 2) as in training (one canvas of side ``canvas_side``)."""
    crop = RandomResizedCrop(RandomResizedCrop.Params(size=OUTPUT))
    shape = torch.Size((len(sizes), 3, canvas_side, canvas_side))
    drawn = crop.sample_params(shape, torch.device("cpu"), torch.Generator().manual_seed(seed), sizes=sizes)
    return torch.stack([drawn["top"], drawn["left"], drawn["height"], drawn["width"]], dim=1)


def torchvision_boxes(sizes: torch.Tensor, seed: int) -> torch.Tensor:
    """int64 (N, 4) boxes of ``torchvision.transforms.v2.RandomResizedCrop`` (same scale and ratio), one
    per photo size (N, 2), drawn one at a time from torch's global generator seeded with ``seed``."""
    crop = TorchvisionRandomResizedCrop(OUTPUT)
    torch.manual_seed(seed)
    boxes = []
    for height, width in sizes.tolist():
        stand_in = torch.empty(1, 1, 1).expand(3, height, width)  # only its shape is read
        box = crop.make_params([stand_in])
        boxes.append([box["top"], box["left"], box["height"], box["width"]])
    return torch.tensor(boxes, dtype=torch.int64)


def centre_square_boxes(sizes: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The old behaviour's boxes: the crop drawn on each photo's centre square resized to OUTPUT x
    OUTPUT. Returns them (N, 4) in the square's pixels (which its resize reads) and, float64, mapped
    back onto the photo (N, 2 sizes) in its pixels."""
    crop = RandomResizedCrop(RandomResizedCrop.Params(size=OUTPUT))
    drawn = crop.sample_params(
        torch.Size((len(sizes), 3, OUTPUT, OUTPUT)), torch.device("cpu"), torch.Generator().manual_seed(seed)
    )
    square = torch.stack([drawn["top"], drawn["left"], drawn["height"], drawn["width"]], dim=1)
    height, width = sizes.double().unbind(1)
    side = torch.minimum(height, width)
    scale = (side / OUTPUT)[:, None]  # photo pixels per square pixel
    offset = torch.stack([(height - side) / 2, (width - side) / 2], dim=1)
    on_photo = torch.cat([square[:, :2] * scale + offset, square[:, 2:] * scale], dim=1)
    return square, on_photo


def zoom(boxes: torch.Tensor) -> torch.Tensor:
    """float64 (N,): OUTPUT / sqrt(height x width) of each box (N, 4), in the pixels it is cut from;
    > 1: the resize enlarges the crop."""
    return OUTPUT / (boxes[:, 2].double() * boxes[:, 3].double()).sqrt()


def reaches_outer_band(boxes: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """bool (N,): whether each box (N, 4) covers some of the outer OUTER of its photo's (N, 2) longer
    side, at either end (a square photo's "longer" side is its width)."""
    boxes, sizes = boxes.double(), sizes.double()
    tall = sizes[:, 0] > sizes[:, 1]
    start = torch.where(tall, boxes[:, 0], boxes[:, 1])
    extent = torch.where(tall, boxes[:, 2], boxes[:, 3])
    longer = sizes.amax(dim=1)
    return (start < OUTER * longer) | (start + extent > (1 - OUTER) * longer)


def summary(
    boxes: torch.Tensor, sizes: torch.Tensor, source_boxes: torch.Tensor | None = None
) -> dict[str, float]:
    """The zoom's 10/50/90% quantiles (of ``source_boxes``, the boxes in the pixels they are cut from,
    when those are not the photo's) and the share of ``boxes`` (in photo pixels) reaching the outer band."""
    source = boxes if source_boxes is None else source_boxes
    quantiles = torch.quantile(zoom(source), torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    return {
        "zoom_q10": quantiles[0].item(),
        "zoom_q50": quantiles[1].item(),
        "zoom_q90": quantiles[2].item(),
        "outer_band": reaches_outer_band(boxes, sizes).double().mean().item(),
    }


def photo_sizes() -> torch.Tensor:
    """int64 (P, 2): (height, width) of every training photo of the fixture, decoded."""
    from torchvision.io import decode_jpeg, read_file

    files = sorted((PHOTOS / "train").rglob("*.jpg"))
    return torch.tensor([tuple(decode_jpeg(read_file(str(path))).shape[1:]) for path in files])


def main() -> None:
    parser = argparse.ArgumentParser(description="crop statistics on the photo fixture")
    parser.add_argument("--draws", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    photos = photo_sizes()
    sizes = tiled(photos, args.draws)
    canvas = int(photos.max())
    square, on_photo = centre_square_boxes(sizes, args.seed)
    rows = {
        "ours (whole photo)": summary(our_boxes(sizes, args.seed, canvas), sizes),
        "torchvision v2 RandomResizedCrop": summary(torchvision_boxes(sizes, args.seed), sizes),
        "old (centre square, square px)": summary(on_photo, sizes, square),
        "old (centre square, photo px)": summary(on_photo, sizes),
    }
    print(f"{len(photos)} photos, {args.draws} boxes; zoom = {OUTPUT} / sqrt(box area) (> 1: enlarged)")
    print(f"{'':34} {'zoom q10':>9} {'q50':>6} {'q90':>6}  {'reach outer 12.5%':>17}")
    for name, row in rows.items():
        print(
            f"{name:34} {row['zoom_q10']:9.2f} {row['zoom_q50']:6.2f} {row['zoom_q90']:6.2f}  "
            f"{row['outer_band']:17.1%}"
        )


if __name__ == "__main__":
    main()
