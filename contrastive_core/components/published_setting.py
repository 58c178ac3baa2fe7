"""One setting a method's paper (or its authors' reference code) publishes, for ``contrastive lint``.

A method plugin lists its paper's settings as :class:`PublishedSetting` entries in the method class's
``published_settings``; ``contrastive lint RECIPE`` compares a recipe against that table and prints
every departure with its source and, where the paper measured it, the published effect. A plugin's
own method declares its table the same way.

``path`` names a recipe value:

* a section's field: ``loss.temperature``, ``optimizer.momentum``, ``model.head.num_layers``,
  ``data.image_size`` (a field the recipe's component does not have is not compared: a small CNN has
  no ``zero_init_residual``);
* a field of an augmentation op, by its type: ``augmentations[color_jitter].strength`` (an op the
  recipe lacks is a departure);
* whether the augmentation list has an op: ``augmentations[gaussian_blur]`` with value True or False;
* a field of every stage of a type: ``stages[pretrain].batch_size`` (no such stage: not compared).

``datasets`` restricts a setting to recipes whose ``[data]`` type is one of them (the paper's ImageNet
and CIFAR-10 settings differ); empty, it applies to every recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PublishedSetting:
    """A published value of one recipe path, where it is published, and what departing from it did."""

    path: str
    """The recipe value (see the module docstring for the forms)."""
    value: Any
    """The published value (a tuple for ranges such as a crop's scale)."""
    source: str
    """Where it is published: the paper's section, table or figure, or the reference code's file."""
    effect: str = ""
    """What the paper measured when departing from it (its ablation, cited), or empty."""
    datasets: tuple[str, ...] = ()
    """The ``[data]`` types it applies to; empty: every dataset."""

    def applies_to(self, dataset_type: str | None) -> bool:
        return not self.datasets or dataset_type in self.datasets
