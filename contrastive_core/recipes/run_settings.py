"""The ``[run]`` section: settings of the run as a whole, shared by every stage."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RunSettings(BaseModel):
    """Settings that apply to every stage of a recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    name: str | None = None
    """Run name; the default run directory is runs/<name> (else runs/<recipe file stem>)."""
    seed: int = Field(0, ge=0)
    """Seed of every random number generator (data order, augmentations, initialisation)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to run: 'auto' uses CUDA when available (one process per GPU under a launcher), else the CPU."""
    precision: Literal["no", "bf16", "fp16"] = "no"
    """Mixed precision for the encoder's forward and backward passes; losses are computed in fp32."""
    deterministic: bool = False
    """Ask torch for deterministic algorithms (slower on GPU; exact resume equality on CPU)."""
