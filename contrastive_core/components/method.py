"""The method kind: what differs between self-supervised methods (SimCLR, BYOL, MoCo, DINO, ...), and nothing else.

A method is one ``nn.Module`` that owns every network and every piece of state its algorithm needs,
so a single ``state_dict`` checkpoints all of it and resume is exact:

* **its modules**: the online encoder f and projection head g the engine builds from ``[model]``, an
  optional predictor (``[model.predictor]``), its loss (``[loss]``) when it takes one, momentum targets
  (:class:`~contrastive_core.components.MomentumTarget`), and state such as a queue of keys, a
  centre or prototypes, as parameters or buffers;
* **the views it trains on**: named view groups (:class:`ViewGroup`: SimCLR ``global x 2``, DINO
  ``global x 2 + local x 8``), each made by one augmentation pipeline from the recipe;
* **its objective**: ``forward(views, progress) -> MethodOutput(loss, metrics)``, device tensors only,
  with ``progress`` (:class:`StepProgress`) holding host-side step counts so schedules (an EMA momentum
  0.996 -> 1, a teacher temperature) cost nothing on the device. Written split, as every built-in
  method is (:meth:`Method.embed` the trained networks' outputs per image, :meth:`Method.embed_targets`
  those of networks without gradient, :meth:`Method.objective` the loss of the whole batch), it also
  trains by gradient caching (:mod:`contrastive_core.engine.gradient_cache`);
* **what the optimizer trains** (:meth:`Method.trainable`: targets excluded), **what moves after the
  optimizer step** (:meth:`Method.momentum_updates`), **what stays frozen for the first steps**
  (:meth:`Method.frozen_parts`) and **which encoder is exported and evaluated**
  (:meth:`Method.exported_encoder`: DINO evaluates its teacher).

The engine's step (:mod:`contrastive_core.engine.training_step`) calls these in the order of the papers'
algorithms: views -> ``forward`` -> backward -> cancel frozen gradients -> clip -> optimizer step ->
schedule -> momentum updates. There are no callbacks.

State that must agree across processes (a MoCo queue, a DINO centre) is kept identical on every rank by
the method itself, from all-gathered or all-reduced values (:mod:`contrastive_core.distributed.collectives`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from .component import Component, ComponentParams
from .encoder import Encoder
from .frozen_for_steps import FrozenForSteps
from .momentum_target import MomentumTarget
from .published_setting import PublishedSetting

_GROUP_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class ViewGroup:
    """A group of views a method needs: ``count`` views of every image, named ``name``.

    ``count = None`` lets the recipe choose how many (e.g. DINO's local crops). Every view of a group is
    made by the same pipeline in one batched transform and has the same size; the method receives the
    group as one ``(count * B, C, H, W)`` tensor whose rows ``v * B ... (v + 1) * B - 1`` are view v.

    ``optional = True``: a recipe may leave the group out (SwAV and DINO without multi-crop train on
    their two global views only); the method then finds no entry for it in ``views``.
    """

    name: str
    count: int | None = 2
    optional: bool = False

    def __post_init__(self) -> None:
        if not _GROUP_NAME.match(self.name):
            raise ValueError(f"a view group name must be a lowercase identifier, got {self.name!r}")
        if self.count is not None and self.count < 1:
            raise ValueError(f"view group {self.name!r} needs at least one view, got count {self.count}")


@dataclass(frozen=True)
class StepProgress:
    """Where training is, on the host: ``step`` optimizer steps done of ``total_steps``.

    Handed to :meth:`Method.forward` and :meth:`Method.momentum_updates` so schedules are host floats.
    """

    step: int
    total_steps: int
    steps_per_epoch: int

    @property
    def epoch(self) -> float:
        """Epochs done, fractional (``step / steps_per_epoch``)."""
        return self.step / self.steps_per_epoch

    @property
    def fraction(self) -> float:
        """The fraction of training done, in [0, 1]."""
        return min(1.0, self.step / self.total_steps)


class MethodOutput(NamedTuple):
    """What :meth:`Method.forward` returns: the loss to minimise (0-d) and metrics to log.

    ``metrics`` maps names to 0-d device tensors (detached); the engine averages them over the logging
    interval and over processes, and reads them only at log steps, so producing them costs no host sync.
    """

    loss: torch.Tensor
    metrics: Mapping[str, torch.Tensor] = MappingProxyType({})  # read-only: a default shared by all


@dataclass
class MethodParts:
    """The components the engine builds from the recipe for a method (None where the recipe has none).

    ``encoder``: f from ``[model.encoder]``, ``(B, C, H, W) -> (B, feature_dim)``; ``head``: g from
    ``[model.head]``, built with ``in_dim = encoder.feature_dim``; ``predictor``: q from
    ``[model.predictor]`` (a head-kind component built with ``in_dim = head.out_dim``); ``loss``: the
    recipe's ``[loss]``.
    """

    encoder: nn.Module
    head: nn.Module | None = None
    predictor: nn.Module | None = None
    loss: nn.Module | None = None


class Method(Component, nn.Module):
    """A self-supervised method: its networks, state, views and objective (see the module docstring).

    Class attributes a concrete method sets, besides ``name`` and ``Params``:

    * ``views``: the :class:`ViewGroup` tuple it trains on. A recipe's ``[[augmentations]]`` list makes
      every group of a method that needs one size; ``[[views]]`` gives each group its own list.
    * ``requires``: the recipe sections it builds from, of ``"model.head"``, ``"model.predictor"`` and
      ``"loss"``; validation reports a missing one, and one present that the method would ignore.

    The engine builds it as ``Method.from_params(params, parts=MethodParts(...))``; a subclass's
    ``__init__(params, parts)`` keeps what it uses as submodules (the attribute ``encoder`` is required:
    the engine checks data against it, compiles and checkpoints it).
    """

    kind: ClassVar[str] = "method"
    views: ClassVar[tuple[ViewGroup, ...]] = (ViewGroup("global", 2),)
    requires: ClassVar[tuple[str, ...]] = ("model.head",)
    #: The paper's settings, which ``contrastive lint`` compares recipes of this method against (see
    #: :mod:`.published_setting`); empty: the method publishes none.
    published_settings: ClassVar[tuple[PublishedSetting, ...]] = ()

    #: The sections :attr:`requires` may name (what the engine can build for a method).
    OPTIONAL_SECTIONS: ClassVar[tuple[str, ...]] = ("model.head", "model.predictor", "loss")

    encoder: nn.Module

    @classmethod
    def definition_problem(cls) -> str | None:
        """Why this class's ``views`` / ``requires`` cannot work, or None (checked at registration)."""
        if not cls.views or not all(isinstance(group, ViewGroup) for group in cls.views):
            return f"{cls.__qualname__}.views must be a non-empty tuple of contrastive_core.ViewGroup"
        names = [group.name for group in cls.views]
        if len(set(names)) != len(names):
            return f"{cls.__qualname__}.views names a group twice: {', '.join(names)}"
        if cls.forward is Method.forward and not cls.splits_forward():
            return f"{cls.__qualname__} must override forward, or embed and objective"
        if "model.predictor" in cls.requires and "model.head" not in cls.requires:
            return f"{cls.__qualname__}.requires names 'model.predictor' without 'model.head' (the predictor sits on the head)"
        unknown = [section for section in cls.requires if section not in cls.OPTIONAL_SECTIONS]
        if unknown:
            return (
                f"{cls.__qualname__}.requires may name {', '.join(cls.OPTIONAL_SECTIONS)}; "
                f"not {', '.join(unknown)}"
            )
        return None

    @classmethod
    def summary(cls) -> str:
        """The docstring's first line, then the view groups and the sections the method builds from."""
        groups = ", ".join(
            f"{group.name} x {group.count or 'N'}{' (optional)' if group.optional else ''}"
            for group in cls.views
        )
        needs = ", ".join(f"[{section}]" for section in cls.requires) or "nothing else"
        return f"{super().summary()} Views: {groups}. Uses: {needs}."

    def __init__(self, params: ComponentParams, parts: MethodParts) -> None:
        nn.Module.__init__(self)
        self.params = params
        self.encoder = parts.encoder

    def forward(self, views: Mapping[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        """``views[group]``: (count * B, C, H, W) float views per :attr:`views` group -> the loss and metrics.

        Called inside the run's autocast context; issue no host-device synchronisation here. A method
        overrides either this or the split into :meth:`embed`, :meth:`embed_targets` and
        :meth:`objective`, which this default runs in that order (and which gradient caching needs).
        """
        if not type(self).splits_forward():
            raise NotImplementedError(
                f"method {type(self).__qualname__} overrides neither forward nor embed and objective"
            )
        embeddings = dict(self.embed(views, progress))
        with torch.no_grad():
            targets = self.embed_targets(views, progress)
        return self.objective(merge_embeddings(embeddings, targets, type(self)), progress)

    # --- the split forward: embeddings of the views, then the loss of the embeddings -------------------
    # Gradient caching (Gao et al. 2021, arXiv:2101.06983; ``micro_batch_size`` of the pretrain stage)
    # runs ``embed`` on micro-batches of images twice (without, then with a graph), ``embed_targets``
    # once, and ``objective`` once on the whole batch, so the loss sees every negative of the batch.

    def embed(self, views: Mapping[str, torch.Tensor], progress: StepProgress) -> Mapping[str, torch.Tensor]:
        """The outputs of the networks trained by gradient, per view of every image.

        ``views`` as in :meth:`forward`, for a batch of b images. Returns name -> ``(k * b, ...)`` tensors
        in view-major order (row ``v * b + i``: view v of image i; k may differ between entries), each
        depending on its own image's rows only (BatchNorm aside: see the pretrain stage's
        ``micro_batch_norm``). Everything else (losses, queues, centres, statistics over the batch)
        belongs to :meth:`objective`.
        """
        raise NotImplementedError(f"method {type(self).__qualname__} does not split its forward")

    def embed_targets(
        self, views: Mapping[str, torch.Tensor], progress: StepProgress
    ) -> Mapping[str, torch.Tensor]:
        """The outputs of networks that get no gradient (momentum targets, teachers), laid out as
        :meth:`embed`'s, with names of their own; run once per step under ``torch.no_grad()``.
        Default: none."""
        return {}

    def objective(self, embeddings: Mapping[str, torch.Tensor], progress: StepProgress) -> MethodOutput:
        """The loss and metrics of the whole batch from :meth:`embed`'s and :meth:`embed_targets`'s outputs
        (one mapping), under the run's autocast. Parameters used here (SwAV's prototypes) are trained
        directly; state updates (queues, centres) happen here, once per step."""
        raise NotImplementedError(f"method {type(self).__qualname__} does not split its forward")

    @classmethod
    def splits_forward(cls) -> bool:
        """Whether the class implements :meth:`embed` and :meth:`objective` (so it can use gradient
        caching); the engine checks this when a recipe sets ``micro_batch_size``."""
        return cls.embed is not Method.embed and cls.objective is not Method.objective

    def trainable(self) -> nn.Module:
        """The module whose parameters the optimizer trains; its parameter order is the optimizer's.

        The default is the method without its momentum targets' networks (their parameters follow the
        online ones by EMA, not by gradient). Exclusions such as LARS's for BatchNorm and biases are the
        optimizer's and are kept: it sees the real modules.
        """
        targets = {id(target) for target in self.modules() if isinstance(target, MomentumTarget)}
        if not targets:
            return self
        return _Without(self, targets)

    def momentum_updates(self, progress: StepProgress) -> Sequence[tuple[MomentumTarget, float]]:
        """The momentum targets to update after this optimizer step and the momentum of each (host floats).

        ``progress.step`` counts the steps done including this one. Default: none.
        """
        return ()

    def frozen_parts(self, steps_per_epoch: int) -> Sequence[FrozenForSteps]:
        """Parameters whose gradients are cancelled for their first steps (SwAV's prototypes, DINO's last
        head layer, both for the first epoch: ``FrozenForSteps(part, round(epochs * steps_per_epoch))``).

        ``steps_per_epoch``: optimizer steps per epoch of the run (a host int), so that a method can state
        its freezing in epochs, as the papers do. Called once, before the first step. Default: none.
        """
        return ()

    def exported_encoder(self) -> Encoder:
        """The encoder exported after pretraining and evaluated by later stages, an
        :class:`~contrastive_core.Encoder` (DINO's teacher: its target network's encoder part, not the
        whole target). Default: ``self.encoder``."""
        return self.encoder


class _Without(nn.Module):
    """A view of ``method``'s direct and nested children without the modules whose ids are in ``skip``.

    Only used to hand parameter lists (with their owning modules) to an optimizer; never called.
    """

    def __init__(self, method: nn.Module, skip: set[int]) -> None:
        super().__init__()
        for name, child in method.named_children():
            if id(child) in skip:
                continue
            if any(id(inner) in skip for inner in child.modules()):
                self.add_module(name, _Without(child, skip))
            else:
                self.add_module(name, child)
        for name, parameter in method.named_parameters(recurse=False):
            self.register_parameter(name, parameter)


def merge_embeddings(
    embeddings: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor], method: type
) -> dict[str, torch.Tensor]:
    """``embeddings | targets``; a :class:`ValueError` naming ``method`` if both use a name."""
    shared = embeddings.keys() & targets.keys()
    if shared:
        raise ValueError(
            f"method {method.__qualname__}: embed and embed_targets both return {', '.join(sorted(shared))}"
        )
    return {**embeddings, **targets}
