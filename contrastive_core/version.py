"""The version of contrastive (also recorded in every run's ``manifest.json``), and those it runs with."""

from __future__ import annotations

import platform

__version__ = "0.1.0"


def describe_versions() -> str:
    """One line for ``contrastive --version``: contrastive's version, torch's and torchvision's, Python's.

    torch's version is read from its installed package metadata: importing torch would take seconds.
    """
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("torch", "torchvision"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            found.append(f"{package} not installed")
    return f"contrastive {__version__} ({', '.join(found)}, Python {platform.python_version()})"
