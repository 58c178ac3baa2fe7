"""Momentum (EMA) target networks: a slowly moving copy of an online network that gets no gradient.

BYOL (Grill et al. 2020, "Bootstrap Your Own Latent", Sec. 3.1, eq. 1) and MoCo (He et al. 2020,
"Momentum Contrast for Unsupervised Visual Representation Learning", eq. 2) train an *online* network by
gradient descent and compute their targets (BYOL) or keys (MoCo) with a *target* network whose
parameters xi follow the online parameters theta by an exponential moving average after every optimizer
step::

    xi <- m * xi + (1 - m) * theta

MoCo keeps ``m = 0.999`` fixed; BYOL raises it from ``m_base = 0.996`` to 1 over training with a cosine
schedule, ``m = 1 - (1 - m_base) * (cos(pi * k / K) + 1) / 2`` at step k of K (Sec. 3.3 and the
appendix on implementation details), available as
``contrastive_core.engine.cosine_schedule(0.996, 1.0, k, K)``. DINO's teacher is the same
construction around a student.

:class:`MomentumTarget` holds the target as its submodule ``network`` (a deep copy of the online network
made at construction, every parameter with ``requires_grad = False``) and only a plain reference to the
online network: the online network is not saved again under the target, which holds only its copy
under ``<attribute>.network.`` (build the online module the target follows on the fly, as below, so
that the method's own state holds each online layer once). Parameters are paired by name at every
:meth:`MomentumTarget.update`, read afresh from both networks, so the update stays correct after the
engine converts modules inside the method (BatchNorm to SyncBatchNorm on both copies) or moves it with
``.to()``.

Usage in a method plugin (BYOL-style)::

    from contrastive_core.components import MomentumTarget
    from contrastive_core.engine import cosine_schedule


    class MyBYOL(Method):
        requires = ("model.head", "model.predictor")

        def __init__(self, params, parts):
            super().__init__(params, parts)  # self.encoder: (B, C, H, W) -> (B, F)
            self.head = parts.head  # (B, F) -> (B, D)
            self.predictor = parts.predictor  # (B, D) -> (B, D)
            # The target follows encoder + head; the Sequential is not a submodule, only the target is.
            self.target = MomentumTarget(nn.Sequential(self.encoder, self.head))  # no gradient

        def forward(self, views, progress):
            first, second = views["global"].chunk(2)  # two (B, C, H, W) views
            p1 = self.predictor(self.head(self.encoder(first)))
            p2 = self.predictor(self.head(self.encoder(second)))
            z1, z2 = self.target(first), self.target(second)  # requires_grad False
            ...

        def momentum_updates(self, progress):
            return [(self.target, cosine_schedule(0.996, 1.0, progress.step, progress.total_steps))]

The engine calls ``target.update(momentum)`` after the optimizer step; a method used outside the
engine calls it itself.
"""

from __future__ import annotations

import copy
import math
import numbers
from typing import Any

import torch
from torch import nn

__all__ = ["MomentumTarget"]


class _NamedPairing:
    """Pairs the tensors of a target network with those of its online network by name.

    The lists are read from the modules at every call (modules may have been replaced or moved since the
    last one). The full check of names and shapes runs only when the layout (names and shapes, in order)
    differs from the one checked last; the cache holds no reference to any tensor (weak references would
    make ``torch.utils.swap_tensors``, used by ``.to()`` in swap mode, refuse to swap them).
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._checked: tuple | None = None
        self._order: list[int] = []

    def pair(
        self,
        target: list[tuple[str, torch.Tensor]],
        online: list[tuple[str, torch.Tensor]],
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """``(target tensors, online tensors)``, element i of one matching element i of the other."""
        layout = (
            tuple(name for name, _ in target),
            tuple(name for name, _ in online),
            tuple(tensor.shape for _, tensor in target),
            tuple(tensor.shape for _, tensor in online),
        )
        if layout != self._checked:
            self._order = self._check(target, online)
            self._checked = layout
        online_tensors = [tensor for _, tensor in online]
        return [tensor for _, tensor in target], [online_tensors[index] for index in self._order]

    def _check(
        self, target: list[tuple[str, torch.Tensor]], online: list[tuple[str, torch.Tensor]]
    ) -> list[int]:
        index_of = {name: index for index, (name, _) in enumerate(online)}
        target_names = [name for name, _ in target]
        missing = sorted(set(index_of) - set(target_names))
        extra = sorted(set(target_names) - set(index_of))
        if missing or extra:
            raise RuntimeError(
                f"MomentumTarget: the target and online networks no longer have the same {self._what}: "
                f"only in the online network: {missing or 'none'}; only in the target: {extra or 'none'}. "
                "Apply a module replacement to both copies (e.g. convert the module holding both)."
            )
        order = [index_of[name] for name in target_names]
        shapes = [
            f"{name}: target {tuple(tensor.shape)} vs online {tuple(online[index][1].shape)}"
            for (name, tensor), index in zip(target, order, strict=True)
            if tensor.shape != online[index][1].shape
        ]
        if shapes:
            raise RuntimeError(
                f"MomentumTarget: {self._what} of the target and online networks differ in shape: "
                + "; ".join(shapes)
            )
        return order


class MomentumTarget(nn.Module):
    """An EMA copy of ``online``: ``forward`` runs it without gradient, :meth:`update` moves it.

    Args:
        online: the network trained by gradient descent. It is deep-copied into :attr:`network` and
            otherwise only referenced: it is not a submodule, so it is neither in this module's
            ``state_dict`` nor moved by this module's ``.to()`` (the method owns and moves it).
        update_buffers: if True, :meth:`update` also copies the online network's buffers (BatchNorm
            running statistics) into the target. The default, False, leaves the target's buffers alone:
            the reference BYOL and MoCo code averages parameters only, and in train mode the target's
            BatchNorm layers normalise with the batch's statistics and keep their own running
            statistics, computed from the target's own activations, which are the right ones for
            evaluating the target (the online network's statistics describe a different network).

    Shapes: whatever ``online`` maps, e.g. ``(B, C, H, W) -> (B, D)`` for an encoder with its head.
    The target's train/eval mode follows this module's (it is a submodule).
    """

    def __init__(self, online: nn.Module, *, update_buffers: bool = False) -> None:
        super().__init__()
        if not isinstance(online, nn.Module):
            raise TypeError(f"MomentumTarget needs an nn.Module to follow, got {type(online).__name__}")
        network = copy.deepcopy(online)
        for parameter in network.parameters():
            parameter.requires_grad_(False)
            parameter.grad = None
        self.network = network
        # Kept out of nn.Module's registry on purpose: not a submodule, not in the state_dict.
        self.__dict__["_online"] = online
        self.update_buffers = update_buffers
        self._parameters_pairing = _NamedPairing("parameters")
        self._buffers_pairing = _NamedPairing("buffers")

    @property
    def online(self) -> nn.Module:
        """The online network this target follows (a reference, not a submodule)."""
        return self.__dict__["_online"]

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Run the target network under ``torch.no_grad()``: its outputs never require grad."""
        with torch.no_grad():
            return self.network(*args, **kwargs)

    def update(self, momentum: float) -> None:
        """``theta_t <- m * theta_t + (1 - m) * theta_o`` for every parameter; buffers per ``update_buffers``.

        ``momentum`` is a host float in [0, 1] (1 leaves the target unchanged, 0 copies the online
        parameters). Runs as two fused ``torch._foreach_*`` kernels per device and dtype, with no
        host-device synchronisation and no autograd recording. Raises ``RuntimeError`` if the two
        networks' parameter (or buffer) names or shapes no longer match.
        """
        m = _check_momentum(momentum)
        target, online = self._parameters_pairing.pair(
            list(self.network.named_parameters()), list(self.online.named_parameters())
        )
        with torch.no_grad():
            if target:
                torch._foreach_mul_(target, m)
                torch._foreach_add_(target, online, alpha=1.0 - m)
            if self.update_buffers:
                target_buffers, online_buffers = self._buffers_pairing.pair(
                    list(self.network.named_buffers()), list(self.online.named_buffers())
                )
                if target_buffers:
                    torch._foreach_copy_(target_buffers, online_buffers)

    def extra_repr(self) -> str:
        return f"update_buffers={self.update_buffers}"


def _check_momentum(momentum: float) -> float:
    if isinstance(momentum, bool) or not isinstance(momentum, numbers.Real):
        raise TypeError(
            f"momentum must be a host float in [0, 1], got {type(momentum).__name__} "
            "(compute schedules on the host: a device tensor would force a synchronisation)"
        )
    value = float(momentum)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
    return value
