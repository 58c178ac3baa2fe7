"""The real Fashion-MNIST as Debian's package dataset-fashion-mnist installs it (skipped without it)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")

pytestmark = pytest.mark.skipif(
    not (DEBIAN_ROOT / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"{DEBIAN_ROOT} is absent (install the Debian package dataset-fashion-mnist to run this test)",
)


@pytest.mark.parametrize(("split", "count"), [("train", 60000), ("test", 10000)])
def test_default_root_reads_the_full_balanced_splits(make_dataset, split, count):
    dataset = make_dataset(type="fashion_mnist")
    images, labels = dataset.tensors(split)
    assert images.shape == (count, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels, minlength=10).tolist() == [count // 10] * 10
    # The fixtures are the first images of these splits.
    fixture = make_dataset(
        type="fashion_mnist", root=str(Path(__file__).parent.parent / "fixtures" / "fashion_mnist" / "gzip")
    )
    fixture_images, fixture_labels = fixture.tensors(split)
    assert torch.equal(images[: len(fixture_images)], fixture_images)
    assert torch.equal(labels[: len(fixture_labels)], fixture_labels)
