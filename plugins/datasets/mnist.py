"""MNIST (LeCun, Bottou, Bengio & Haffner, 1998): 70,000 28x28 grey handwritten digits, 60,000 for
training and 10,000 for testing, stored as IDX files.

No distribution package ships MNIST, so ``root`` has no default.
"""

from __future__ import annotations

from typing import Literal

from contrastive_core import ComponentParams

from .mnist_format import MnistFormatDataset


class MnistParams(ComponentParams):
    type: Literal["mnist"]

    root: str
    """Folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
    t10k-labels-idx1-ubyte, each plain or with a .gz suffix."""

    download: bool = False
    """Download the four .gz files into root when they are missing."""


class Mnist(MnistFormatDataset):
    """MNIST: 28x28 grey handwritten digits, 10 classes, splits train (60,000) and test (10,000)."""

    name = "mnist"
    Params = MnistParams

    # yann.lecun.com refuses most automated downloads nowadays; this mirror serves the same files.
    base_url = "https://ossci-datasets.s3.amazonaws.com/mnist/"
    md5s = {
        "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
    }

    def remedy(self) -> str:
        return (
            f"Download the four files (e.g. {self.base_url}train-images-idx3-ubyte.gz) into {self.root}, "
            "or set download = true in the [data] section."
        )
