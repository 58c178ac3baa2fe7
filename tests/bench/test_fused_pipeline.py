"""The fused SimCLR pipeline against its definition, the registered op-by-op augmentations.

Equality: the fused pipeline draws its parameters with the ops' own ``sample_params`` in the op-by-op
pipeline's order, so from equal seeds both give the same views; in float64 they must agree to 1e-6
(Kornia's HSV conversion adds an eps of 1e-8), in float32 to 1e-4. Statistics: rates and uniform
factors read back from the fused pipeline's own outputs are checked on N = 2048 draws within 5
standard errors, as tests/simclr/test_augmentations.py checks the parameters.
"""

from __future__ import annotations

import colorsys
import itertools
import math
from typing import Literal

import pytest
import torch

from contrastive_core import Augmentation, ComponentParams, Registry, get_plugin_manager, hookimpl
from contrastive_core.engine import AugmentationPipeline, build_pipeline
from contrastive_plugins.simclr import fused_ops
from contrastive_plugins.simclr.augmentations import AUGMENTATIONS, ColorJitter
from contrastive_plugins.simclr.fused_pipeline import FusedSimCLRPipeline
from tests.bench.sampling import assert_rate, seeded

N = 2048
CPU = torch.device("cpu")

IMAGENET = [
    {"type": "random_resized_crop", "size": 40},
    {"type": "horizontal_flip"},
    {"type": "color_jitter", "strength": 1.0},
    {"type": "random_grayscale"},
    {"type": "gaussian_blur"},
    {"type": "normalize"},
]
PIPELINES = {
    "imagenet": (IMAGENET, (3, 48, 56)),
    "cifar": (
        [
            {"type": "random_resized_crop", "size": 32},
            {"type": "horizontal_flip"},
            {"type": "color_jitter", "strength": 0.5},
            {"type": "random_grayscale"},
        ],
        (3, 32, 32),
    ),
    "bicubic": (
        [
            {"type": "random_resized_crop", "size": 24, "resample": "bicubic"},
            {"type": "horizontal_flip"},
            {"type": "color_jitter", "strength": 0.5},
        ],
        (3, 40, 32),
    ),
    "one_channel": (
        [
            {"type": "random_resized_crop", "size": 28, "scale": [0.75, 1.0]},
            {"type": "horizontal_flip"},
            {"type": "color_jitter", "strength": 0.5},
            {"type": "random_grayscale"},
            {"type": "normalize", "mean": [0.3], "std": [0.35]},
        ],
        (1, 28, 28),
    ),
    "every_op_and_order": (
        [
            {"type": "normalize", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]},
            {"type": "horizontal_flip", "p": 0.7},
            {"type": "random_resized_crop", "size": 24, "antialias": True, "scale": [0.2, 1.0]},
            {"type": "color_jitter", "brightness": 0.9, "contrast": 0.0, "hue": 0.5, "p": 1.0},
            {"type": "gaussian_blur", "p": 0.6},
            {"type": "solarize", "p": 0.5},
            {"type": "horizontal_flip"},
        ],
        (3, 64, 64),
    ),
}


class Invert(Augmentation):
    """Invert every pixel (an op from another plugin, which the fused pipeline does not know)."""

    name = "invert"

    class Params(ComponentParams):
        type: Literal["invert"] = "invert"

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return 1 - images


class _Plugins:
    @hookimpl
    def register_augmentations(self) -> list[type]:
        return [*AUGMENTATIONS, Invert]


@pytest.fixture(scope="module")
def registry() -> Registry:
    manager = get_plugin_manager(autoload=False)
    manager.register(_Plugins(), name="augmentations")
    return Registry.from_plugin_manager(manager)


def assert_uniform(samples: torch.Tensor, low: float, high: float, slack: float) -> None:
    """Samples of U(low, high), each read back with an error up to ``slack``."""
    n = samples.numel()
    assert samples.min() >= low - slack and samples.max() <= high + slack
    assert abs(samples.mean().item() - (low + high) / 2) <= 5 * (high - low) / math.sqrt(12 * n) + slack
    counts = torch.histc(samples.double(), bins=4, min=low, max=high)
    assert (counts - n / 4).abs().max() <= 5 * math.sqrt(n * 3 / 16) + slack * n, counts


# --- choosing the implementation ----------------------------------------------------------------------


def test_the_builder_fuses_lists_of_simclr_ops_and_keeps_the_ops_as_the_definition(registry):
    fused = build_pipeline(IMAGENET, registry=registry)
    assert type(fused) is FusedSimCLRPipeline and isinstance(fused, AugmentationPipeline)
    assert [op.name for op in fused.augmentations] == [params["type"] for params in IMAGENET]
    assert type(build_pipeline(IMAGENET, registry=registry, fused=False)) is AugmentationPipeline


def test_a_list_with_an_op_it_cannot_reproduce_runs_op_by_op(registry):
    mixed = build_pipeline([*IMAGENET[:2], {"type": "invert"}], registry=registry)
    assert type(mixed) is AugmentationPipeline
    assert type(build_pipeline([], registry=registry)) is AugmentationPipeline

    class Stronger(ColorJitter):
        """A subclass may change apply, so it is not fused."""

    assert FusedSimCLRPipeline.fuse([Stronger(ColorJitter.Params())]) is None
    with pytest.raises(TypeError, match="Stronger"):
        FusedSimCLRPipeline([Stronger(ColorJitter.Params())])


# --- the same views as the definition ------------------------------------------------------------------


@pytest.mark.parametrize("name", PIPELINES)
def test_fused_views_equal_the_op_by_op_views_from_the_same_generator(registry, name):
    ops, shape = PIPELINES[name]
    reference = build_pipeline(ops, registry=registry, fused=False)
    fused = build_pipeline(ops, registry=registry)
    assert type(fused) is FusedSimCLRPipeline
    images = torch.rand((16, *shape), generator=seeded(1), dtype=torch.float64)
    expected = reference.views(images, 3, seeded(5))
    actual = fused.views(images, 3, seeded(5))
    assert len(actual) == 3
    for want, got in zip(expected, actual, strict=True):
        assert got.dtype == torch.float64 and got.shape == want.shape
        torch.testing.assert_close(got, want, atol=1e-6, rtol=0)
    uint8 = (images * 255).round().to(torch.uint8)
    torch.testing.assert_close(fused(uint8, seeded(2)), reference(uint8, seeded(2)), atol=2e-4, rtol=0)


def test_fused_parameters_are_the_ops_own_draws_in_the_op_by_op_order(registry):
    fused = build_pipeline(IMAGENET, registry=registry)
    shape = torch.Size((8, 3, 48, 56))
    drawn = fused.sample_params(shape, 2, CPU, seeded(3))
    generator = seeded(3)
    per_view = []
    for _ in range(2):
        current, view = shape, []
        for op in fused.augmentations:
            view.append(op.sample_params(current, CPU, generator))
            if op.name == "random_resized_crop":
                current = torch.Size((8, 3, 40, 40))
        per_view.append(view)
    for index, params in enumerate(drawn):
        for key, value in params.items():
            assert torch.equal(value, torch.cat([per_view[0][index][key], per_view[1][index][key]]))


@pytest.mark.parametrize("hue_position", range(4))
def test_jitter_follows_each_samples_order_with_hue_anywhere(registry, hue_position):
    jitter = build_pipeline([{"type": "color_jitter", "strength": 1.0}], registry=registry).augmentations[0]
    images = torch.rand((6, 3, 8, 8), generator=seeded(), dtype=torch.float64)
    linear_orders = [(0, 1, 2), (2, 1, 0), (1, 0, 2), (0, 2, 1), (2, 0, 1), (1, 2, 0)]
    order = torch.tensor([[*o[:hue_position], 3, *o[hue_position:]] for o in linear_orders])
    params = {
        "applied": torch.tensor([True, True, True, True, True, False]),
        "order": order,
        "brightness": torch.tensor([1.7, 0.3, 1.2, 0.5, 1.0, 1.5], dtype=torch.float64),
        "contrast": torch.tensor([0.2, 1.8, 1.1, 0.6, 1.4, 0.5], dtype=torch.float64),
        "saturation": torch.tensor([0.0, 1.6, 0.4, 1.3, 0.9, 0.5], dtype=torch.float64),
        "hue": torch.tensor([0.2, -0.15, 0.05, -0.2, 0.1, 0.2], dtype=torch.float64),
    }
    fused = fused_ops.color_jitter(images, params, (True, True, True, True))
    torch.testing.assert_close(fused, jitter.apply(images, params), atol=1e-6, rtol=0)
    torch.testing.assert_close(fused[5], images[5])


def test_the_hue_rotation_matches_the_hsv_definition():
    colors = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.6, 0.9], [0.5, 0.5, 0.5], [0.9, 0.9, 0.1]])
    images = colors.view(4, 3, 1, 1)
    # A third of a turn sends red to green; gray has no hue; a full turn gives every colour back.
    rotated = fused_ops.rotate_hue(images, torch.full((4,), 1 / 3))
    torch.testing.assert_close(rotated[0].flatten(), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(rotated[2], images[2])
    torch.testing.assert_close(fused_ops.rotate_hue(images, torch.ones(4)), images, atol=1e-6, rtol=0)
    # Value (max) and chroma (max - min) are kept.
    torch.testing.assert_close(rotated.amax(1), images.amax(1))
    torch.testing.assert_close(rotated.amax(1) - rotated.amin(1), images.amax(1) - images.amin(1))


def hsv_rotation_reference(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Pixel by pixel through Python's colorsys: RGB -> HSV, hue + shift (mod 1), HSV -> RGB."""
    out = torch.empty_like(images)
    for n, pixel in itertools.product(
        range(images.shape[0]), itertools.product(*map(range, images.shape[2:]))
    ):
        red, green, blue = (float(images[n, c][pixel]) for c in range(3))
        hue, saturation, value = colorsys.rgb_to_hsv(red, green, blue)
        rotated = colorsys.hsv_to_rgb((hue + float(shift[n])) % 1.0, saturation, value)
        for c in range(3):
            out[n, c][pixel] = rotated[c]
    return out


def test_the_hue_rotation_equals_the_hsv_round_trip_over_every_sextant_and_shift():
    """In float64 against colorsys: random colours, grays, ties of the largest channels, saturated
    primaries and hues on sextant boundaries, rotated by shifts across [-1/2, 1] turn (the wrapping of
    the rotated hue without a remainder must hold at both ends)."""
    generator = seeded()
    images = torch.rand((12, 3, 4, 6), generator=generator, dtype=torch.float64)
    images[:, :, 0, :2] = images[:, :1, 0, :2]  # gray
    images[:, 1, 1] = images[:, 0, 1]  # red and green tie for the largest channel (or not)
    images[:, :, 2] = (images[:, :, 2] > 0.5).double()  # primaries, secondaries, black and white
    sextant_edges = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]])
    images[:, :, 3] = 0.2 + 0.7 * sextant_edges.T.double()
    shift = torch.tensor([-0.5, 0.5, 0.0, 1 / 6, -1 / 6, 1 / 3, 0.499, -0.499, 0.25, -0.3, 1.0, 0.75])
    expected = hsv_rotation_reference(images, shift.double())
    torch.testing.assert_close(fused_ops.rotate_hue(images, shift.double()), expected, atol=1e-12, rtol=0)


# --- the distribution of the fused pipeline's own outputs ----------------------------------------------


def test_fused_flip_and_grayscale_rates(registry):
    pipeline = build_pipeline([{"type": "horizontal_flip"}, {"type": "random_grayscale"}], registry=registry)
    ramp = torch.linspace(0, 1, 4).expand(3, 4, 4).clone()
    ramp[0] *= 0.5  # not gray: red differs from green and blue
    out = pipeline(ramp.expand(N, 3, 4, 4), seeded())
    assert_rate(out[:, 1, 0, 0] > out[:, 1, 0, -1], 0.5)  # mirrored: the ramp runs right to left
    assert_rate((out[:, 0] == out[:, 1]).all(dim=(1, 2)), 0.2)


def test_fused_brightness_factors_are_uniform(registry):
    pipeline = build_pipeline(
        [{"type": "color_jitter", "brightness": 0.4, "contrast": 0, "saturation": 0, "hue": 0}],
        registry=registry,
    )
    images = torch.full((N, 1, 2, 2), 0.5)
    factors = pipeline(images, seeded())[:, 0, 0, 0] / 0.5
    changed = (factors - 1).abs() > 1e-6
    assert_rate(changed, 0.8)
    assert_uniform(factors[changed], 0.6, 1.4, slack=1e-5)


def test_fused_crops_cover_uniform_areas(registry):
    # A ramp of column indices: a crop's first and last output columns read its left and right edges.
    pipeline = build_pipeline(
        [{"type": "random_resized_crop", "size": 16, "scale": [0.08, 0.5]}], registry=registry
    )
    xs = torch.arange(224, dtype=torch.float64).expand(224, 224)
    images = torch.stack([xs, xs.T]).expand(N, 2, 224, 224)
    out = pipeline(images, seeded())
    width = out[:, 0, 0, -1] - out[:, 0, 0, 0] + 1
    height = out[:, 1, -1, 0] - out[:, 1, 0, 0] + 1
    assert_uniform(width * height / 224**2, 0.08, 0.5, slack=0.002)
    assert_uniform(torch.log(width / height), math.log(3 / 4), math.log(4 / 3), slack=0.02)


# --- reproducibility, shapes, dtypes, device-only work ---------------------------------------------------


def test_a_seeded_generator_reproduces_the_views_and_leaves_the_global_rng_alone(registry):
    pipeline = build_pipeline(IMAGENET, registry=registry)
    images = torch.randint(0, 256, (4, 3, 48, 48), dtype=torch.uint8, generator=seeded())
    state = torch.get_rng_state()
    first = pipeline.stacked_views(images, 2, seeded(7))
    assert torch.equal(first, pipeline.stacked_views(images, 2, seeded(7)))
    assert not torch.allclose(first, pipeline.stacked_views(images, 2, seeded(8)))
    assert torch.equal(state, torch.get_rng_state())
    assert not torch.allclose(first[:4], first[4:])  # the two views differ


def test_shapes_and_dtypes(registry):
    pipeline = build_pipeline(PIPELINES["cifar"][0], registry=registry)
    images = torch.randint(0, 256, (5, 3, 36, 30), dtype=torch.uint8, generator=seeded())
    stacked = pipeline.stacked_views(images, 3, seeded())
    assert stacked.shape == (15, 3, 32, 32) and stacked.dtype == torch.float32
    assert 0 <= stacked.min() and stacked.max() <= 1
    views = pipeline.views(images, 2, seeded())
    assert [view.shape for view in views] == [(5, 3, 32, 32)] * 2
    assert pipeline(images, seeded()).shape == (5, 3, 32, 32)
    assert pipeline(images.double() / 255, seeded()).dtype == torch.float64
    with pytest.raises(ValueError, match="n_views"):
        pipeline.views(images, 0)
    with pytest.raises(ValueError, match="B, C, H, W"):
        pipeline(images[0])
    with pytest.raises(ValueError, match="1 or 3 channels"):
        pipeline(torch.rand((2, 2, 32, 32)))


def test_the_transform_needs_no_tensor_values_on_the_host(registry):
    """On the meta device tensors have no values: anything that branches on one, or copies one to the
    host (a synchronisation on a GPU), fails. The op-by-op jitter plans its order on the host."""
    ops = PIPELINES["every_op_and_order"][0] + IMAGENET[2:]
    images = torch.empty((4, 3, 64, 64), dtype=torch.uint8, device="meta")
    fused = build_pipeline(ops, registry=registry).to("meta")
    assert fused.stacked_views(images, 2).shape == (8, 3, 24, 24)
    with pytest.raises((RuntimeError, NotImplementedError)):
        build_pipeline(ops, registry=registry, fused=False).to("meta").views(images, 2)


def test_the_transform_traces_as_one_graph(registry):
    pipeline = build_pipeline(PIPELINES["every_op_and_order"][0] + IMAGENET[2:], registry=registry)
    images = torch.rand((2, 3, 64, 64), generator=seeded())
    expected = pipeline.stacked_views(images, 2, seeded(4))
    # fullgraph=True fails on any graph break; the eager backend keeps the check to tracing only.
    pipeline._transform = torch.compile(pipeline.transform, fullgraph=True, dynamic=False, backend="eager")
    torch.testing.assert_close(pipeline.stacked_views(images, 2, seeded(4)), expected)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_fused_views_match_and_never_synchronise(registry):
    cuda = torch.device("cuda")
    fused = build_pipeline(IMAGENET, registry=registry).to(cuda)
    reference = build_pipeline(IMAGENET, registry=registry, fused=False).to(cuda)
    images = torch.randint(0, 256, (64, 3, 48, 56), dtype=torch.uint8, device=cuda)
    expected = torch.cat(reference.views(images, 2, torch.Generator(cuda).manual_seed(0)))
    generator = torch.Generator(cuda).manual_seed(0)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        actual = fused.stacked_views(images, 2, generator)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(actual, expected, atol=1e-3, rtol=0)


# --- reduced precision --------------------------------------------------------------------------------


def photo_like_batch(count: int, side: int) -> torch.Tensor:
    """Real Fashion-MNIST images in colour (see tests/fixtures/README.md), upscaled to side x side uint8."""
    from tests.datasets.reference import fashion, rgb32

    images, _ = fashion("train")
    batch = torch.stack([torch.from_numpy(rgb32(images[index])) for index in range(count)]).float()
    return torch.nn.functional.interpolate(batch, size=(side, side), mode="bilinear").round().to(torch.uint8)


def test_float16_views_differ_from_float32_by_less_than_the_encoders_bf16_rounding(registry):
    """A bf16 encoder rounds its input to 8 significant bits; computing the views in float16 (11 bits)
    must perturb them less than that rounding does on average. Single pixels may differ more: the hue
    rotation works on values up to about 11, where float16's spacing is 2^-7, and the linear jitter ops
    amplify by up to 1.8 each (measured maxima: 0.013 here, 0.016 on an H100 with 64 images); 5 levels
    of 255 bounds that with room."""
    pipeline = build_pipeline(IMAGENET[:-1], registry=registry)  # no normalize: views in [0, 1]
    images = photo_like_batch(16, 48)
    exact = pipeline.stacked_views(images, 2, seeded(3))
    pipeline.set_compute_dtype(torch.float16)
    half = pipeline.stacked_views(images, 2, seeded(3))
    assert half.dtype == torch.float16 and half.shape == exact.shape
    error = (half.float() - exact).abs()
    bf16_rounding = (exact.bfloat16().float() - exact).abs()
    assert error.mean() < bf16_rounding.mean(), (error.mean(), bf16_rounding.mean())
    assert error.max() <= 5 / 255, error.max()


def test_the_reference_pipeline_refuses_reduced_precision(registry):
    reference = build_pipeline(IMAGENET, registry=registry, fused=False)
    assert not reference.supports_reduced_precision
    with pytest.raises(ValueError, match="float32 or float64 only"):
        reference.set_compute_dtype(torch.float16)
    reference.set_compute_dtype(torch.float32)  # what its ops do anyway: nothing changes
    assert reference.compute_dtype is None
    fused = build_pipeline(IMAGENET, registry=registry)
    with pytest.raises(ValueError, match="float dtype"):
        fused.set_compute_dtype(torch.int16)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_float16_views_stay_close_and_never_synchronise(registry):
    cuda = torch.device("cuda")
    pipeline = build_pipeline(IMAGENET[:-1], registry=registry).to(cuda)
    images = photo_like_batch(64, 48).to(cuda)
    exact = pipeline.stacked_views(images, 2, torch.Generator(cuda).manual_seed(0))
    pipeline.set_compute_dtype(torch.float16)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        half = pipeline.stacked_views(images, 2, torch.Generator(cuda).manual_seed(0))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    error = (half.float() - exact).abs()
    assert error.mean() < (exact.bfloat16().float() - exact).abs().mean()
    assert error.max() <= 5 / 255  # 0.0159 measured on an H100 (see the CPU test's docstring)


# --- the blur as matrix products ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "taps"),
    [((4, 3, 24, 30), (5, 7)), ((2, 1, 9, 9), (9, 9)), ((3, 3, 40, 33), (23, 3)), ((2, 3, 11, 16), (1, 5))],
)
def test_the_matrix_product_blur_equals_the_depthwise_convolution(shape, taps):
    generator = seeded(7)
    images = torch.rand(shape, generator=generator, dtype=torch.float64)
    sigma = torch.rand(shape[0], generator=generator, dtype=torch.float64) * 2 + 0.1
    kernel_y = fused_ops.gaussian_kernels(sigma, taps[0])
    kernel_x = fused_ops.gaussian_kernels(0.7 * sigma, taps[1])
    by_conv = fused_ops.separable_blur(images, kernel_y, kernel_x, method="conv")
    by_matmul = fused_ops.separable_blur(images, kernel_y, kernel_x, method="matmul")
    torch.testing.assert_close(by_matmul, by_conv, atol=1e-12, rtol=0)


def test_blur_matrices_fold_the_reflected_border_in_and_keep_the_mass():
    kernel = torch.tensor([[0.25, 0.5, 0.25]], dtype=torch.float64)
    matrix = fused_ops.blur_matrices(kernel, 4)[0]
    # row 0 reads pixels (reflect(-1) = 1, 0, 1); row 3 reads (2, 3, reflect(4) = 2)
    assert matrix[0].tolist() == [0.5, 0.5, 0.0, 0.0]
    assert matrix[3].tolist() == [0.0, 0.0, 0.5, 0.5]
    torch.testing.assert_close(matrix.sum(dim=1), torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="too large"):
        fused_ops.blur_matrices(torch.ones(1, 9), 4)


def test_auto_blur_keeps_the_convolution_on_the_cpu(monkeypatch):
    calls = []
    monkeypatch.setattr(fused_ops, "_blur_by_matmul", lambda *args: calls.append("matmul"))
    images = torch.rand(1, 1, 16, 16)
    fused_ops.separable_blur(images, torch.ones(1, 9) / 9, torch.ones(1, 9) / 9)
    assert calls == []  # on the CPU the convolution is cheaper
    with pytest.raises(ValueError, match="unknown blur method"):
        fused_ops.separable_blur(images, torch.ones(1, 3) / 3, torch.ones(1, 3) / 3, method="fft")


def test_batches_below_min_values_keep_float32(registry):
    pipeline = build_pipeline(IMAGENET[:-1], registry=registry)
    images = photo_like_batch(4, 48)  # two views: 8 x 3 x 40 x 40 = 38,400 values
    pipeline.set_compute_dtype(torch.float16, min_values=38_401)
    assert pipeline.stacked_views(images, 2, seeded(0)).dtype == torch.float32
    pipeline.set_compute_dtype(torch.float16, min_values=38_400)
    assert pipeline.stacked_views(images, 2, seeded(0)).dtype == torch.float16


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_blur_of_simclr_size_runs_as_matrix_products_equal_to_the_convolution(monkeypatch):
    cuda = torch.device("cuda")
    generator = torch.Generator(cuda).manual_seed(0)
    images = torch.rand((32, 3, 224, 224), generator=generator, device=cuda)
    kernels = fused_ops.gaussian_kernels(torch.rand(32, generator=generator, device=cuda) * 1.9 + 0.1, 23)
    used = []
    original = fused_ops._blur_by_matmul
    monkeypatch.setattr(fused_ops, "_blur_by_matmul", lambda *args: used.append(True) or original(*args))
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False  # full float32 products, to compare closely
    try:
        by_conv = fused_ops.separable_blur(images, kernels, kernels, method="conv")
        by_matmul = fused_ops.separable_blur(images, kernels, kernels)  # "auto": 23 taps on CUDA
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    assert used == [True]
    torch.testing.assert_close(by_matmul, by_conv, atol=1e-5, rtol=0)
    in_half = fused_ops.separable_blur(images.half(), kernels.half(), kernels.half())
    assert (in_half.float() - by_conv).abs().max() < 4e-3
