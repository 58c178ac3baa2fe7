"""What the ``contrastive`` subcommands share: argument types and the registry their ``--block`` selects.

Light to import, as every module the parser needs is (see :mod:`contrastive_core.cli.commands`): the
registry's modules, which import torch, are imported when a command asks for the registry.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..registration.registry import Registry


def add_overrides_argument(parser: argparse.ArgumentParser, example: str) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``: recipe values changed before validation;
    ``example`` is the help text's illustration, e.g. ``loss.temperature=0.2``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a recipe value, e.g. --set {example} (repeatable)",
    )


def registry_from_args(args: argparse.Namespace, strict: bool = True) -> Registry:
    """The registry of the environment's plugins minus those blocked with ``--block`` (before or after
    the command)."""
    from ..registration.plugin_manager import get_plugin_manager
    from ..registration.registry import Registry

    blocked = [*args.block, *args.block_after]
    return Registry.from_plugin_manager(get_plugin_manager(blocked=blocked), strict=strict)


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def int_up_to(limit: int, what: str):
    """An argparse type: an integer from 1 to ``limit`` (``what`` names the unit in the message), so an
    absurd value is a usage error instead of an allocation that kills the process."""

    def parse(text: str) -> int:
        value = positive_int(text)
        if value > limit:
            raise argparse.ArgumentTypeError(f"at most {limit} {what}, got {text}")
        return value

    parse.__name__ = "int"  # argparse says "invalid int value: 'x'" for text that is no integer
    return parse
