"""The version of contrastive (also recorded in every run's ``manifest.json``)."""

__version__ = "0.1.0"
