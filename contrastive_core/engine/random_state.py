"""Capturing and restoring a process's random number generators, for exact resume."""

from __future__ import annotations

import hashlib
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
    if "augmentation_seed" in state:  # a rank the checkpoint had no generator for
        augmentation_generator.manual_seed(state["augmentation_seed"])
    else:
        augmentation_generator.set_state(state["augmentation"])


def rng_for_a_new_rank(rank0_state: dict[str, Any], rank: int) -> dict[str, Any]:
    """The generator states for process ``rank`` resuming a checkpoint written by fewer processes.

    The global generators continue from rank 0's states; the augmentation generator is seeded from a
    hash of rank 0's augmentation state and ``rank``: reproducible (the same checkpoint and process
    count give the same views), and apart from every other rank's stream.
    """
    digest = hashlib.sha256(rank0_state["augmentation"].numpy().tobytes() + rank.to_bytes(8, "little"))
    seed = int.from_bytes(digest.digest()[:8], "little")
    return {key: value for key, value in rank0_state.items() if key != "augmentation"} | {
        "augmentation_seed": seed
    }


#: Seeds of ``torch.Generator.manual_seed`` are taken modulo 2^64 here, so every recipe seed works.
_SEED_MODULUS = 2**64


def augmentation_generator(seed: int, device: torch.device, rank: int = 0) -> torch.Generator:
    """The generator process ``rank`` draws its augmentations from, for the recipe's ``seed``.

    Each process draws its own views; the seed makes them reproducible. The formula keeps these
    generators apart from the global one seeded with ``seed`` itself (7919 is prime), and is taken
    modulo 2^64 so that large seeds cannot overflow.
    """
    return torch.Generator(device=device).manual_seed((seed * 7919 + rank + 1) % _SEED_MODULUS)
