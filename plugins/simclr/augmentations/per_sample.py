"""The common shape of every SimCLR augmentation op: draw per-sample parameters, then apply them."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch

from contrastive_core import Augmentation


class PerSampleAugmentation(Augmentation):
    """An augmentation whose random parameters are drawn per sample, separately from applying them.

    Splitting :meth:`sample_params` from :meth:`apply` lets tests check the parameter distributions
    directly and lets an alternative implementation (a fused kernel, another device) be compared with
    this one on identical parameters.
    """

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """images: (B, C, H, W) float in [0, 1] -> (B, C, H', W') float, same device and dtype.

        ``generator`` must live on ``images.device``; None draws from that device's default RNG.
        """
        if images.ndim != 4 or not images.is_floating_point():
            raise ValueError(
                f"{self.name} expects a float batch (B, C, H, W) in [0, 1], got {images.dtype} "
                f"of shape {tuple(images.shape)}"
            )
        params = self.sample_params(images.shape, images.device, generator)
        return self.apply(images, params)

    #: The batched pipeline offered for lists of these ops, None until one is offered.
    _fused_pipeline: ClassVar[type | None] = None

    @classmethod
    def fused_pipeline_class(cls) -> type | None:
        """The batched pipeline that stands in for a list of SimCLR ops (see ``build_pipeline``), or None.

        The pipeline's module (:mod:`..fused_pipeline`) imports the ops it reproduces, so the ops do not
        import it: importing it offers it here (:meth:`offer_fused_pipeline`), and the plugin's
        ``register_augmentations`` imports it, so a registry holding the ops has it.
        """
        return PerSampleAugmentation._fused_pipeline

    @staticmethod
    def offer_fused_pipeline(pipeline_class: type) -> None:
        """Make ``pipeline_class`` the answer of :meth:`fused_pipeline_class` for every op of this family."""
        PerSampleAugmentation._fused_pipeline = pipeline_class

    @abstractmethod
    def sample_params(
        self, batch_shape: torch.Size, device: torch.device, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """Draw this op's random parameters for a batch of shape (B, C, H, W), one set per sample.

        Returns tensors on ``device`` whose first dimension is B (an empty dict for deterministic ops).
        """

    @abstractmethod
    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Apply the op to (B, C, H, W) float ``images`` with parameters from :meth:`sample_params`."""
