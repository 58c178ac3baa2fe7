"""View groups (``build_view_pipeline``): V views of a batch whose op lists may differ in parameters.

A group of equal lists must be exactly ``build_pipeline`` of that list (SimCLR keeps its numbers). A
group with per-view lists (BYOL's two views blur and solarize with different probabilities) draws view
by view, op by op, each view with its own ops, so its fused version (one batched transform for all
views) and its op-by-op version give the same views from the same seed: in float64 to 1e-6, as
tests/bench/test_fused_pipeline.py compares the single-list pipelines. Rates are checked on N = 2048
draws within 5 standard errors.
"""

from __future__ import annotations

import pytest
import torch

from contrastive_core import Registry, get_plugin_manager, hookimpl
from contrastive_core.engine import (
    AugmentationPipeline,
    PerViewAugmentationPipeline,
    build_pipeline,
    build_view_pipeline,
)
from contrastive_plugins.simclr.augmentations import AUGMENTATIONS, Solarize
from contrastive_plugins.simclr.fused_pipeline import FusedSimCLRPipeline
from tests.bench.sampling import assert_rate, seeded

N = 2048
CPU = torch.device("cpu")

COMMON = [
    {"type": "random_resized_crop", "size": 40},
    {"type": "horizontal_flip"},
    {"type": "color_jitter", "strength": 1.0, "p": 0.8},
    {"type": "random_grayscale", "p": 0.2},
]
#: BYOL's asymmetric pair (Grill et al., 2020, Table 6) on SimCLR's op list: blur 1.0 / 0.1, solarize 0.0 / 0.2.
BYOL = [
    [*COMMON, {"type": "gaussian_blur", "p": 1.0}, {"type": "solarize", "p": 0.0}],
    [*COMMON, {"type": "gaussian_blur", "p": 0.1}, {"type": "solarize", "p": 0.2}],
]
SHAPE = (3, 48, 56)


class _Plugins:
    @hookimpl
    def register_augmentations(self) -> list[type]:
        return list(AUGMENTATIONS)


@pytest.fixture(scope="module")
def registry() -> Registry:
    manager = get_plugin_manager(autoload=False)
    manager.register(_Plugins(), name="augmentations")
    return Registry.from_plugin_manager(manager)


def with_changes(ops: list[dict], position: int, **changes) -> list[dict]:
    return [{**params, **changes} if index == position else params for index, params in enumerate(ops)]


def op_by_op_reference(per_view: list[list[dict]], registry, images, generator) -> list[torch.Tensor]:
    """The definition of a group's views: view v = view v's own list op by op, the views in turn."""
    images = images.div(255) if images.dtype == torch.uint8 else images
    return [build_pipeline(ops, registry=registry, fused=False)(images, generator) for ops in per_view]


# --- equal lists: exactly build_pipeline ----------------------------------------------------------------


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_a_group_of_equal_lists_is_exactly_build_pipeline_of_the_list(registry, fused, count):
    ops = [*COMMON, {"type": "gaussian_blur"}, {"type": "solarize"}]
    plain = build_pipeline(ops, registry=registry, fused=fused)
    assert plain.view_count is None
    # Equal as validated params: defaults written out or left implicit, dicts or params models.
    spelled_out = with_changes(ops, 5, p=0.2, threshold=0.5)
    validated = [Solarize.Params() if params["type"] == "solarize" else params for params in ops]
    group = build_view_pipeline([ops, spelled_out, validated][:count], registry, fused=fused)
    assert type(group) is type(plain)
    assert type(group) is (FusedSimCLRPipeline if fused else AugmentationPipeline)
    assert group.view_count == count
    images = torch.randint(0, 256, (6, *SHAPE), dtype=torch.uint8, generator=seeded(1))
    expected = plain.stacked_views(images, count, seeded(5))
    assert torch.equal(group.stacked_views(images, generator=seeded(5)), expected)
    assert torch.equal(group.stacked_views(images, count, seeded(5)), expected)
    for got, want in zip(group.views(images, generator=seeded(5)), expected.chunk(count), strict=True):
        assert torch.equal(got, want)
    assert torch.equal(group(images, seeded(2)), plain(images, seeded(2)))  # one view, as before


def test_ordinary_pipelines_keep_their_views_and_default_of_two(registry):
    pipeline = build_pipeline(COMMON, registry=registry)
    images = torch.randint(0, 256, (4, *SHAPE), dtype=torch.uint8, generator=seeded())
    assert pipeline.stacked_views(images, generator=seeded(3)).shape == (8, 3, 40, 40)
    assert torch.equal(
        pipeline.stacked_views(images, None, seeded(3)), pipeline.stacked_views(images, 2, seeded(3))
    )
    assert len(pipeline.views(images, 5, seeded())) == 5
    with pytest.raises(ValueError, match="n_views"):
        pipeline.stacked_views(images, 0)


# --- per-view lists, fused: one transform, the op-by-op views ---------------------------------------------


def test_byol_views_are_fused_into_one_transform(registry):
    fused = build_view_pipeline(BYOL, registry)
    assert type(fused) is FusedSimCLRPipeline and fused.view_count == 2
    assert [op.params.p for op in fused.view_augmentations[0][4:]] == [1.0, 0.0]
    assert [op.params.p for op in fused.view_augmentations[1][4:]] == [0.1, 0.2]
    calls = []
    transform = fused._transform
    fused._transform = lambda *args: calls.append(args[0].shape) or transform(*args)
    images = torch.randint(0, 256, (4, *SHAPE), dtype=torch.uint8, generator=seeded())
    assert fused.stacked_views(images, generator=seeded()).shape == (8, 3, 40, 40)
    assert calls == [torch.Size((4, *SHAPE))]  # one transform over the B source images for both views
    reference = build_view_pipeline(BYOL, registry, fused=False)
    assert type(reference) is PerViewAugmentationPipeline and reference.view_count == 2


@pytest.mark.parametrize("dtype", [torch.float64, torch.uint8])
def test_fused_byol_views_equal_the_op_by_op_views_from_the_same_seed(registry, dtype):
    fused = build_view_pipeline(BYOL, registry)
    reference = build_view_pipeline(BYOL, registry, fused=False)
    images = torch.rand((16, *SHAPE), generator=seeded(1), dtype=torch.float64)
    atol = 1e-6
    if dtype == torch.uint8:
        images, atol = (images * 255).round().to(torch.uint8), 2e-4
    definition = op_by_op_reference(BYOL, registry, images, seeded(5))
    by_op = reference.views(images, generator=seeded(5))
    actual = fused.views(images, generator=seeded(5))
    assert len(actual) == len(by_op) == 2
    for want, op_by_op, got in zip(definition, by_op, actual, strict=True):
        assert torch.equal(op_by_op, want)  # the fallback is the definition itself
        assert got.dtype == want.dtype and got.shape == want.shape == (16, 3, 40, 40)
        torch.testing.assert_close(got, want, atol=atol, rtol=0)
    stacked = fused.stacked_views(images, 2, seeded(5))
    torch.testing.assert_close(stacked, torch.cat(definition), atol=atol, rtol=0)
    torch.testing.assert_close(reference.stacked_views(images, None, seeded(5)), torch.cat(definition))


def test_fused_per_view_parameters_are_each_views_own_draws_in_order(registry):
    fused = build_view_pipeline(BYOL, registry)
    shape = torch.Size((8, *SHAPE))
    drawn = fused.sample_params(shape, 2, CPU, seeded(3))
    generator = seeded(3)
    per_view = []
    for ops in fused.view_augmentations:
        current, view = shape, []
        for op in ops:
            view.append(op.sample_params(current, CPU, generator))
            if op.name == "random_resized_crop":
                current = torch.Size((8, 3, 40, 40))
        per_view.append(view)
    for index, params in enumerate(drawn):
        for key, value in params.items():
            assert torch.equal(value, torch.cat([per_view[0][index][key], per_view[1][index][key]]))
    with pytest.raises(ValueError, match="2 views"):
        fused.sample_params(shape, 3, CPU, seeded())


@pytest.mark.parametrize(
    ("position", "changes"),
    [
        (0, {"scale": [0.5, 1.0], "ratio": [0.9, 1.1]}),  # crop ranges: drawn
        (1, {"p": 0.9}),
        (2, {"strength": 0.5, "p": 1.0}),  # other amounts, the same four ops active
        (3, {"p": 0.7}),
        (4, {"sigma": [0.5, 1.0], "p": 0.3}),
        (5, {"p": 0.9}),
    ],
)
def test_differences_in_what_is_drawn_are_fused_and_match(registry, position, changes):
    base = BYOL[0]
    per_view = [base, with_changes(base, position, **changes)]
    fused = build_view_pipeline(per_view, registry)
    assert type(fused) is FusedSimCLRPipeline
    images = torch.rand((8, *SHAPE), generator=seeded(1), dtype=torch.float64)
    expected = op_by_op_reference(per_view, registry, images, seeded(7))
    for got, want in zip(fused.views(images, generator=seeded(7)), expected, strict=True):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


# --- per-view rates -------------------------------------------------------------------------------------


#: Blur and solarize alone, with a sigma range whose every blur shows on a checkerboard.
BLUR_SOLARIZE = [
    [
        {"type": "gaussian_blur", "p": 1.0, "kernel_fraction": 0.2, "sigma": [0.5, 2.0]},
        {"type": "solarize", "p": 0.0},
    ],
    [
        {"type": "gaussian_blur", "p": 0.1, "kernel_fraction": 0.2, "sigma": [0.5, 2.0]},
        {"type": "solarize", "p": 0.2},
    ],
]


@pytest.mark.parametrize("fused", [True, False])
def test_each_view_blurs_and_solarizes_at_its_own_rate(registry, fused):
    """A checkerboard of 0.6 and 0.9 (16 px, 3-tap kernel): a blur with sigma >= 0.5 keeps at most a third
    of its contrast 0.3 and every pixel above the threshold 0.5, so solarizing after it sends all pixels
    below 0.5. Blurred: contrast < 0.2; solarized: mean < 0.5 (both exact for these images)."""
    pipeline = build_view_pipeline(BLUR_SOLARIZE, registry, fused=fused)
    assert type(pipeline) is (FusedSimCLRPipeline if fused else PerViewAugmentationPipeline)
    board = (torch.arange(16)[:, None] + torch.arange(16)[None, :]) % 2
    images = (0.6 + 0.3 * board.double()).expand(N, 1, 16, 16)
    first, second = pipeline.views(images, generator=seeded(11))
    for view, blur_p, solarize_p in ((first, 1.0, 0.0), (second, 0.1, 0.2)):
        contrast = (view[:, 0, 0, 0] - view[:, 0, 0, 1]).abs()
        blurred, solarized = contrast < 0.2, view.mean(dim=(1, 2, 3)) < 0.5
        assert ((contrast - 0.3).abs() < 1e-9)[~blurred].all()  # the others are untouched
        if blur_p == 1.0:
            assert blurred.all()
        else:
            assert_rate(blurred, blur_p)
        if solarize_p == 0.0:
            assert not solarized.any()
        else:
            assert_rate(solarized, solarize_p)


def test_the_byol_draws_follow_each_views_probabilities(registry):
    fused = build_view_pipeline(BYOL, registry)
    params = fused.sample_params(torch.Size((N, *SHAPE)), 2, CPU, seeded(4))
    rates = {"horizontal_flip": (0.5, 0.5), "color_jitter": (0.8, 0.8), "random_grayscale": (0.2, 0.2)}
    rates |= {"gaussian_blur": (1.0, 0.1), "solarize": (0.0, 0.2)}
    for op, drawn in zip(fused.augmentations, params, strict=True):
        if op.name in rates:
            for applied, p in zip(drawn["applied"].chunk(2), rates[op.name], strict=True):
                if p in (0.0, 1.0):
                    assert bool(applied.all()) if p == 1.0 else not applied.any()
                else:
                    assert_rate(applied, p)


# --- per-view differences the transform cannot take: op by op ------------------------------------------


UNFUSABLE = {
    "solarize threshold": (5, {"threshold": 0.7}),
    "crop size": (0, {"size": 32}),
    "crop antialias": (0, {"antialias": True}),
    "blur kernel": (4, {"kernel_fraction": 0.2}),
    "jitter active set": (2, {"hue": 0.0}),
}


@pytest.mark.parametrize("name", UNFUSABLE)
def test_a_difference_in_the_transforms_structure_falls_back_to_op_by_op(registry, name):
    position, changes = UNFUSABLE[name]
    per_view = [BYOL[0], with_changes(BYOL[1], position, **changes)]
    pipeline = build_view_pipeline(per_view, registry)
    assert type(pipeline) is PerViewAugmentationPipeline and pipeline.view_count == 2
    assert FusedSimCLRPipeline.fuse_views(pipeline.view_augmentations) is None
    images = torch.randint(0, 256, (6, *SHAPE), dtype=torch.uint8, generator=seeded(2))
    expected = op_by_op_reference(per_view, registry, images, seeded(9))
    views = pipeline.views(images, generator=seeded(9))
    for got, want in zip(views, expected, strict=True):
        assert torch.equal(got, want)
    if name == "crop size":
        assert [view.shape[-1] for view in views] == [40, 32]
        with pytest.raises(ValueError, match="different shapes"):
            pipeline.stacked_views(images, generator=seeded(9))
    else:
        assert torch.equal(pipeline.stacked_views(images, generator=seeded(9)), torch.cat(expected))


def test_different_normalize_statistics_fall_back_to_op_by_op(registry):
    per_view = [
        [{"type": "random_grayscale"}, {"type": "normalize"}],
        [{"type": "random_grayscale"}, {"type": "normalize", "mean": [0.5, 0.5, 0.5]}],
    ]
    pipeline = build_view_pipeline(per_view, registry)
    assert type(pipeline) is PerViewAugmentationPipeline
    images = torch.rand((4, 3, 8, 8), generator=seeded())
    expected = op_by_op_reference(per_view, registry, images, seeded(1))
    assert torch.equal(pipeline.stacked_views(images, 2, seeded(1)), torch.cat(expected))


# --- errors ---------------------------------------------------------------------------------------------


def test_views_with_different_op_types_are_refused_naming_the_position(registry):
    crop = {"type": "random_resized_crop", "size": 16}
    with pytest.raises(ValueError, match="view 1 has 'random_grayscale' at position 1.*'horizontal_flip'"):
        build_view_pipeline(
            [[crop, {"type": "horizontal_flip"}], [crop, {"type": "random_grayscale"}]], registry
        )
    with pytest.raises(ValueError, match="view 2 has no op .*position 1"):
        build_view_pipeline(
            [[crop, {"type": "solarize"}], [crop, {"type": "solarize", "p": 0.5}], [crop]], registry
        )
    with pytest.raises(ValueError, match="at least one view"):
        build_view_pipeline([], registry)


@pytest.mark.parametrize("fused", [True, False])
def test_a_groups_pipeline_makes_exactly_its_view_count(registry, fused):
    images = torch.rand((2, *SHAPE), generator=seeded())
    per_view = build_view_pipeline(BYOL, registry, fused=fused)
    equal = build_view_pipeline([BYOL[0]] * 3, registry, fused=fused)
    for pipeline, count in ((per_view, 2), (equal, 3)):
        for wrong in (1, count + 1):
            with pytest.raises(ValueError, match=f"{count} views of its group, not {wrong}"):
                pipeline.stacked_views(images, wrong, seeded())
            with pytest.raises(ValueError, match=f"not {wrong}"):
                pipeline.views(images, wrong, seeded())
        assert pipeline.stacked_views(images, count, seeded()).shape == (2 * count, 3, 40, 40)
    with pytest.raises(ValueError, match="views of its group together"):
        per_view(images, seeded())


# --- reduced precision, compiling, no host synchronisation ----------------------------------------------


def photo_like_batch(count: int, side: int) -> torch.Tensor:
    """Real Fashion-MNIST images in colour (see tests/fixtures/README.md), upscaled to side x side uint8."""
    from tests.datasets.reference import fashion, rgb32

    images, _ = fashion("train")
    batch = torch.stack([torch.from_numpy(rgb32(images[index])) for index in range(count)]).float()
    return torch.nn.functional.interpolate(batch, size=(side, side), mode="bilinear").round().to(torch.uint8)


def test_float16_per_view_views_stay_within_the_encoders_bf16_rounding(registry):
    """As the single-list test in test_fused_pipeline.py: float16 arithmetic perturbs the views less than
    a bf16 encoder's input rounding on average. Single pixels: the hue rotation rounds values up to about
    11 to float16 (half a spacing: 2^-8) and up to three linear jitter ops after it amplify that by 1.8
    each, about 0.023 (6 levels of 255); 8 levels bound it with room. This seed's worst pixel, 5.7 levels,
    is a jitter error that view 1's list alone (build_pipeline, same draws) shows as well. Solarize at
    0.5 is continuous, so a pixel that rounds across the threshold moves by its rounding only."""
    pipeline = build_view_pipeline(BYOL, registry)
    assert pipeline.supports_reduced_precision
    images = photo_like_batch(16, 48)
    exact = pipeline.stacked_views(images, generator=seeded(3))
    pipeline.set_compute_dtype(torch.float16)
    half = pipeline.stacked_views(images, generator=seeded(3))
    assert half.dtype == torch.float16 and half.shape == exact.shape == (32, 3, 40, 40)
    error = (half.float() - exact).abs()
    assert error.mean() < (exact.bfloat16().float() - exact).abs().mean(), error.mean()
    assert error.max() <= 8 / 255, error.max()
    reference = build_view_pipeline(BYOL, registry, fused=False)
    with pytest.raises(ValueError, match="float32 or float64 only"):
        reference.set_compute_dtype(torch.float16)


def test_the_per_view_transform_traces_as_one_graph_and_needs_no_host_values(registry):
    pipeline = build_view_pipeline(BYOL, registry)
    images = torch.rand((2, *SHAPE), generator=seeded())
    expected = pipeline.stacked_views(images, generator=seeded(4))
    # fullgraph=True fails on any graph break; the eager backend keeps the check to tracing only.
    pipeline._transform = torch.compile(pipeline.transform, fullgraph=True, dynamic=False, backend="eager")
    torch.testing.assert_close(pipeline.stacked_views(images, generator=seeded(4)), expected)
    meta = build_view_pipeline(BYOL, registry).to("meta")
    batch = torch.empty((4, *SHAPE), dtype=torch.uint8, device="meta")
    assert meta.stacked_views(batch).shape == (8, 3, 40, 40)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_per_view_views_match_and_never_synchronise(registry):
    cuda = torch.device("cuda")
    fused = build_view_pipeline(BYOL, registry).to(cuda)
    reference = build_view_pipeline(BYOL, registry, fused=False).to(cuda)
    images = torch.randint(0, 256, (64, *SHAPE), dtype=torch.uint8, device=cuda)
    expected = reference.stacked_views(images, generator=torch.Generator(cuda).manual_seed(0))
    generator = torch.Generator(cuda).manual_seed(0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        actual = fused.stacked_views(images, generator=generator)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(actual, expected, atol=1e-3, rtol=0)
