"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017, arXiv:1708.07747): 70,000 28x28 grey images of
clothing in 10 classes, 60,000 for training and 10,000 for testing, stored as MNIST-style IDX files.

Debian and Ubuntu ship the original files in the package ``dataset-fashion-mnist``, installed to
``/usr/share/datasets/fashion-mnist``, which is the default ``root``.
"""

from __future__ import annotations

from typing import Literal

from contrastive_core import ComponentParams

from .mnist_format import MnistFormatDataset

DEBIAN_ROOT = "/usr/share/datasets/fashion-mnist"
DEBIAN_PACKAGE = "dataset-fashion-mnist"


class FashionMnistParams(ComponentParams):
    type: Literal["fashion_mnist"]

    root: str = DEBIAN_ROOT
    """Folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
    t10k-labels-idx1-ubyte, each plain or with a .gz suffix. The default is where Debian's package
    dataset-fashion-mnist installs them."""

    download: bool = False
    """Download the four .gz files from the Fashion-MNIST mirror into root when they are missing."""


class FashionMnist(MnistFormatDataset):
    """Fashion-MNIST: 28x28 grey clothing images, 10 classes, splits train (60,000) and test (10,000)."""

    name = "fashion_mnist"
    Params = FashionMnistParams

    base_url = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    md5s = {
        "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
    }

    def remedy(self) -> str:
        return (
            f"Install the Debian/Ubuntu package {DEBIAN_PACKAGE} (apt install {DEBIAN_PACKAGE}), which puts "
            f"the files in {DEBIAN_ROOT}, or download them from {self.base_url} into {self.root}, "
            "or set download = true in the [data] section."
        )
