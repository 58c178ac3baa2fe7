"""Gradient caching (``micro_batch_size``): the gradients of the whole batch from micro-batches.

Float64 throughout, so that "equal" means equal to rounding. Each check compares the cached step with a
reference written out plainly: the method's own forward on the whole batch (BatchNorm replaced by an
identity), the whole batch with BN statistics held constant (``whole_batch``), or the micro-batches
embedded one by one with a graph (``per_micro_batch``).
"""

from __future__ import annotations

import contextlib
import copy
import types
from typing import ClassVar, Literal

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from contrastive_core import (
    ComponentParams,
    ContrastiveError,
    Method,
    MethodOutput,
    MethodParts,
    RecipeError,
    StepProgress,
    ViewGroup,
    default_registry,
    validate_recipe,
)
from contrastive_core.engine import build_training_parts
from contrastive_core.engine.gradient_cache import GradientCache, rows_of
from contrastive_plugins.simclr.method import SimCLR, SimCLRParams
from contrastive_plugins.simclr.nt_xent import NTXent, NTXentParams
from contrastive_plugins.simclr.projection_head import ProjectionHead, ProjectionHeadParams
from tests.engine.method_steps import cpu_training_step, recipe_for

PROGRESS = StepProgress(0, 10, 10)
BATCH = 8
#: Micro-batch sizes: one image, sizes that divide 8, sizes that do not, and the whole batch.
MICRO_SIZES = (1, 2, 3, 5, 8)


class PlainAccelerator:
    """What the cache needs from Accelerate, without mixed precision or a gradient scaler."""

    def autocast(self):
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()


def without_batch_norm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm layer replaced by an identity (in place)."""
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm):
            setattr(module, name, nn.Identity())
        else:
            without_batch_norm(child)
    return module


def simclr(*, batch_norm: bool, dropout: float = 0.0) -> SimCLR:
    """SimCLR on (B, 2, 3, 3) images: MLP encoder (optionally BN, dropout), MLP head with BN, NT-Xent."""
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(18, 6)]
    layers += [nn.BatchNorm1d(6)] if batch_norm else []
    layers += [nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
    head = ProjectionHead(ProjectionHeadParams(type="mlp", hidden_dim=8, out_dim=4), in_dim=6)
    parts = MethodParts(encoder=nn.Sequential(*layers), head=head, loss=NTXent(NTXentParams(temperature=0.5)))
    method = SimCLR(SimCLRParams(), parts).double()
    return method if batch_norm else without_batch_norm(method)


def views(batch: int = BATCH, seed: int = 3, shape: tuple[int, ...] = (2, 3, 3)) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"global": torch.randn(2 * batch, *shape, generator=generator, dtype=torch.float64)}


def gradients(method: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in method.named_parameters() if p.grad is not None}


def assert_same(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> None:
    assert first.keys() == second.keys() and first
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=1e-10, atol=1e-12, msg=name)


def cached_step(
    method: Method, micro: int, inputs, counts=None, batch_norm="per_micro_batch"
) -> MethodOutput:
    counts = counts or {"global": 2}
    return GradientCache(method, micro, counts, PlainAccelerator(), batch_norm)(inputs, PROGRESS)


@pytest.mark.parametrize("micro", MICRO_SIZES)
def test_without_batch_norm_the_gradients_equal_the_whole_batchs(micro):
    inputs = views()
    reference, cached = simclr(batch_norm=False), simclr(batch_norm=False)
    expected_loss = reference(inputs, PROGRESS).loss
    expected_loss.backward()
    output = cached_step(cached, micro, inputs)
    torch.testing.assert_close(output.loss, expected_loss, rtol=1e-12, atol=0)
    assert_same(gradients(cached), gradients(reference))


@pytest.mark.parametrize("micro", (1, 3, 4))
def test_per_micro_batch_norm_gives_the_gradients_of_embedding_each_micro_batch_on_its_own(micro):
    inputs = views()
    reference, cached = simclr(batch_norm=True), simclr(batch_norm=True)
    # The reference: each micro-batch embedded with a graph (BN over its own rows), the loss on all.
    pieces = [
        reference.embed({"global": rows_of(inputs["global"], BATCH, slice(s, s + micro), 2)}, PROGRESS)
        for s in range(0, BATCH, micro)
    ]
    per_view = [p["projections"].view(2, -1, 4) for p in pieces]
    joined = torch.cat(per_view, dim=1).reshape(-1, 4)
    reference.objective({"projections": joined}, PROGRESS).loss.backward()
    cached_step(cached, micro, inputs)
    assert_same(gradients(cached), gradients(reference))
    # The running statistics moved once per micro-batch: the graph pass left them alone.
    assert_same(dict(cached.named_buffers()), dict(reference.named_buffers()))


def _constant_statistics(layer: _BatchNorm, input: torch.Tensor) -> torch.Tensor:
    """BN with this batch's statistics held constant (no gradient through them)."""
    dims = [0, *range(2, input.dim())]
    mean, variance = input.mean(dims).detach(), input.var(dims, unbiased=False).detach()
    return F.batch_norm(input, mean, variance, layer.weight, layer.bias, False, 0.0, layer.eps)


@pytest.mark.parametrize("micro", (1, 3, 8))
def test_whole_batch_norm_reproduces_the_full_batch_forward_and_its_constant_statistics_gradient(micro):
    inputs = views()
    full, constant, cached = simclr(batch_norm=True), simclr(batch_norm=True), simclr(batch_norm=True)
    expected_loss = full(inputs, PROGRESS).loss  # plain BN on the whole batch: loss and running stats
    for layer in constant.modules():
        if isinstance(layer, _BatchNorm):
            layer.forward = types.MethodType(_constant_statistics, layer)
    constant(inputs, PROGRESS).loss.backward()
    output = cached_step(cached, micro, inputs, batch_norm="whole_batch")
    torch.testing.assert_close(output.loss, expected_loss, rtol=1e-12, atol=0)
    assert_same(dict(cached.named_buffers()), dict(full.named_buffers()))
    assert_same(gradients(cached), gradients(constant))
    # A second step works: the recorded statistics are the new batch's, not the old ones.
    cached.zero_grad()
    cached_step(cached, micro, views(seed=9), batch_norm="whole_batch")


def test_dropout_masks_are_replayed_in_the_graph_pass():
    inputs = views()
    reference, cached = simclr(batch_norm=False, dropout=0.5), simclr(batch_norm=False, dropout=0.5)
    micro = 3
    torch.manual_seed(11)  # the reference draws each micro-batch's masks in the cache's order
    pieces = [
        reference.embed({"global": rows_of(inputs["global"], BATCH, slice(s, s + micro), 2)}, PROGRESS)
        for s in range(0, BATCH, micro)
    ]
    after_reference = torch.rand(3)
    joined = torch.cat([p["projections"].view(2, -1, 4) for p in pieces], dim=1).reshape(-1, 4)
    reference.objective({"projections": joined}, PROGRESS).loss.backward()
    torch.manual_seed(11)
    cached_step(cached, micro, inputs)
    assert_same(gradients(cached), gradients(reference))
    # The step leaves the generator where one pass of masks leaves it.
    torch.testing.assert_close(torch.rand(3), after_reference)


def test_whole_batch_norm_refuses_random_layers():
    with pytest.raises(ContrastiveError, match="could not be replayed"):
        GradientCache(
            simclr(batch_norm=True, dropout=0.1), 4, {"global": 2}, PlainAccelerator(), "whole_batch"
        )


METHODS = ("simclr", "byol", "moco_v2", "moco_v3", "barlow_twins", "vicreg", "swav", "dino")


def _built_method(name: str) -> tuple[Method, dict[str, int]]:
    registry = default_registry()
    data = recipe_for(registry.get("method", name))
    if name == "moco_v2":
        data["method"]["queue_size"] = 32
    recipe = validate_recipe(data, registry=registry)
    parts = build_training_parts(
        recipe, registry, device=torch.device("cpu"), batch_size=BATCH, total_steps=10, steps_per_epoch=10
    )
    method = without_batch_norm(parts.method).double()
    return method, {group: pipeline.view_count for group, pipeline in parts.views.items()}


@pytest.mark.parametrize("name", METHODS)
def test_every_built_in_method_gives_the_whole_batch_gradients_and_state_from_micro_batches(name):
    method, counts = _built_method(name)
    method.train()
    reference, cached = method, copy.deepcopy(method)
    generator = torch.Generator().manual_seed(2)
    inputs = {
        group: torch.rand(count * BATCH, 1, 28, 28, generator=generator, dtype=torch.float64)
        for group, count in counts.items()
    }
    for step in range(2):  # the second step sees the state the first left (queues, centres)
        progress = StepProgress(step, 10, 10)
        reference.zero_grad(set_to_none=True)
        cached.zero_grad(set_to_none=True)
        expected = reference(inputs, progress).loss
        expected.backward()
        output = GradientCache(cached, 3, counts, PlainAccelerator())(inputs, progress)
        torch.testing.assert_close(output.loss, expected, rtol=1e-10, atol=1e-12)
        assert_same(gradients(cached), gradients(reference))
        buffers = dict(reference.named_buffers())
        if buffers:
            assert_same(dict(cached.named_buffers()), buffers)


class _ForwardOnly(Method):
    """A method that overrides forward: it cannot be micro-batched."""

    name: ClassVar[str] = "forward_only"

    class Params(ComponentParams):
        type: Literal["forward_only"] = "forward_only"

    def __init__(self, params, parts):
        super().__init__(params, parts)
        self.head = parts.head

    def forward(self, views, progress):
        return MethodOutput(self.head(self.encoder(views["global"])).square().mean())


class _BadLayout(Method):
    """A split method whose embed returns one row per batch instead of per image."""

    name: ClassVar[str] = "bad_layout"
    views: ClassVar[tuple[ViewGroup, ...]] = (ViewGroup("global", 2),)

    class Params(ComponentParams):
        type: Literal["bad_layout"] = "bad_layout"

    def embed(self, views, progress):
        return {"pooled": self.encoder(views["global"]).mean(0, keepdim=True)}

    def objective(self, embeddings, progress):
        return MethodOutput(embeddings["pooled"].square().sum())


def test_a_method_that_does_not_split_its_forward_is_refused_at_validation():
    from tests.engine.test_methods import _registry_with

    registry = _registry_with(_ForwardOnly)
    data = recipe_for(registry.get("method", "forward_only"))
    data["stages"][0]["micro_batch_size"] = 4
    with pytest.raises(RecipeError) as error:
        validate_recipe(data, registry=registry)
    assert "stages[0].micro_batch_size" in str(error.value) and "embed and objective" in str(error.value)
    with pytest.raises(ContrastiveError, match="overrides forward"):
        GradientCache(
            _ForwardOnly(_ForwardOnly.Params(), MethodParts(nn.Linear(2, 2), nn.Linear(2, 2))),
            2,
            {"global": 2},
            PlainAccelerator(),
        )


def test_an_embedding_that_is_not_per_image_is_a_clear_error():
    method = _BadLayout(
        _BadLayout.Params(), MethodParts(nn.Sequential(nn.Flatten(), nn.Linear(18, 4)))
    ).double()
    with pytest.raises(ContrastiveError, match="embed returned 'pooled' as \\(1, 4\\) for 3 images"):
        cached_step(method, 3, views())


@pytest.mark.parametrize(
    ("change", "message"),
    (
        ({"micro_batch_norm": "whole_batch"}, "set micro_batch_size"),
        (
            {"micro_batch_size": 4, "micro_batch_norm": "whole_batch", "activation_checkpointing": True},
            "cannot be combined with activation_checkpointing",
        ),
        ({"micro_batch_size": 0}, "greater than or equal to 1"),
    ),
)
def test_micro_batch_settings_are_checked_in_the_recipe(change, message):
    registry = default_registry()
    data = recipe_for(registry.get("method", "simclr"))
    data["stages"][0].update(change)
    with pytest.raises(RecipeError, match=message):
        validate_recipe(data, registry=registry)


def test_the_pretrain_step_with_micro_batches_trains_like_the_whole_batch():
    """Through the real accelerator and optimizer: three steps of a BN-free SimCLR, cached or not, give
    the same weights (float32, so to float rounding)."""
    registry = default_registry()
    recipe = validate_recipe(recipe_for(registry.get("method", "simclr")), registry=registry)
    images = torch.randint(
        0, 256, (BATCH, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
    )
    weights = []
    for micro in (None, 3):
        parts, step = cpu_training_step(recipe, registry, batch_size=BATCH, micro_batch_size=micro)
        without_batch_norm(parts.method)  # the cache's layer list then holds layers no longer called
        for index in range(3):
            step(images, StepProgress(index, 3, 3))
        weights.append({name: p.detach().clone() for name, p in parts.method.named_parameters()})
    for name in weights[0]:
        torch.testing.assert_close(weights[1][name], weights[0][name], rtol=1e-4, atol=1e-5, msg=name)


def _two_process_step(process: int) -> dict:
    """One cached step of SimCLR on this process's half of the batch (see the test below)."""
    from contrastive_core.distributed.global_batch_norm import convert_to_global_batchnorm

    results = {}
    for mode in ("none", "whole_batch"):
        method = simclr(batch_norm=mode != "none")
        if mode != "none":
            method = convert_to_global_batchnorm(method, torch.device("cpu"))
        half = BATCH // 2
        mine = {"global": rows_of(views()["global"], BATCH, slice(process * half, (process + 1) * half), 2)}
        output = cached_step(
            method, 3, mine, batch_norm="whole_batch" if mode != "none" else "per_micro_batch"
        )
        results[mode] = {"loss": output.loss.detach(), "gradients": gradients(method)}
        results[mode]["buffers"] = {name: b.clone() for name, b in method.named_buffers()}
    return results


def test_two_processes_with_micro_batches_equal_one_process_with_the_whole_batch(tmp_path):
    from tests.gloo_processes import run_on_gloo_processes

    per_process = run_on_gloo_processes(_two_process_step, tmp_path)
    # One process, the whole batch of 8: without BN, and with BN whole-batch statistics (global BN
    # over two processes is the same statistics).
    single = {}
    for mode in ("none", "whole_batch"):
        method = simclr(batch_norm=mode != "none")
        output = cached_step(
            method, 8, views(), batch_norm="whole_batch" if mode != "none" else "per_micro_batch"
        )
        single[mode] = {"loss": output.loss.detach(), "gradients": gradients(method)}
        single[mode]["buffers"] = {name: b.clone() for name, b in method.named_buffers()}
    for mode in single:
        for result in per_process:
            torch.testing.assert_close(result[mode]["loss"], single[mode]["loss"], rtol=1e-12, atol=0)
            assert_same(result[mode]["gradients"], single[mode]["gradients"])
            if single[mode]["buffers"]:
                assert_same(result[mode]["buffers"], single[mode]["buffers"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("batch_norm", ["per_micro_batch", "whole_batch"])
def test_on_cuda_the_cached_step_matches_and_never_waits_for_the_device(batch_norm):
    inputs = {name: view.float().cuda() for name, view in views().items()}
    reference = simclr(batch_norm=batch_norm == "whole_batch").float().cuda()
    cached = copy.deepcopy(reference)
    if batch_norm == "whole_batch":  # the reference: BN statistics of the whole batch, held constant
        for layer in reference.modules():
            if isinstance(layer, _BatchNorm):
                layer.forward = types.MethodType(_constant_statistics, layer)
    reference(inputs, PROGRESS).loss.backward()
    cache = GradientCache(cached, 3, {"global": 2}, PlainAccelerator(), batch_norm)
    cache(inputs, PROGRESS)  # warm-up: CUDA initialisation may synchronise once
    cached.zero_grad(set_to_none=True)
    torch.cuda.set_sync_debug_mode("error")
    try:
        cache(inputs, PROGRESS)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    for name, gradient in gradients(reference).items():
        torch.testing.assert_close(gradients(cached)[name], gradient, rtol=1e-4, atol=1e-5, msg=name)


def test_a_method_with_neither_forward_nor_the_split_is_refused_at_definition():
    class _Nothing(Method):
        name: ClassVar[str] = "nothing"

    class _OnlyEmbed(Method):
        name: ClassVar[str] = "only_embed"

        def embed(self, views, progress):
            return {}

    for method in (_Nothing, _OnlyEmbed):
        assert "must override forward, or embed and objective" in method.definition_problem()
    assert SimCLR.definition_problem() is None and SimCLR.splits_forward()
