"""Capturing and restoring a process's random number generators, for exact resume."""

from __future__ import annotations

from typing import Any

import torch


def capture_rng(augmentation_generator: torch.Generator) -> dict[str, Any]:
    """The state of the global CPU and CUDA generators and of the augmentation generator."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "augmentation": augmentation_generator.get_state(),
    }


def restore_rng(state: dict[str, Any], augmentation_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    augmentation_generator.set_state(state["augmentation"])
