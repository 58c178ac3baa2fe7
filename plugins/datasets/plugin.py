"""Registration hook of the built-in dataset plugin set (entry point ``datasets``)."""

from __future__ import annotations

from contrastive_core import hookimpl


@hookimpl
def register_datasets() -> list[type]:
    from .cifar import Cifar10, Cifar100
    from .fashion_mnist import FashionMnist
    from .image_folder import ImageFolder
    from .mnist import Mnist
    from .stl10 import Stl10

    return [FashionMnist, Mnist, Cifar10, Cifar100, Stl10, ImageFolder]
