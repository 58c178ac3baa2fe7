"""SimCLR's augmentation ops and the pipeline that composes them.

Distributions are checked on N = 4096 per-sample draws: a rate p must be within 5 binomial standard
errors sqrt(p (1 - p) / N) of its target, a uniform U(a, b) must stay in [a, b] with its mean within
5 standard errors (b - a) / sqrt(12 N) and each quarter of [a, b] holding N / 4 draws within 5 sigma.
"""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.transforms import RandomResizedCrop as TorchvisionRandomResizedCrop

from contrastive_core import RecipeError, Registry, build, get_plugin_manager, hookimpl
from contrastive_core.engine import AugmentationPipeline, build_pipeline
from contrastive_plugins.simclr.augmentations import AUGMENTATIONS

N = 4096
CPU = torch.device("cpu")

SIMCLR_IMAGENET = [
    {"type": "random_resized_crop", "size": 224},
    {"type": "horizontal_flip"},
    {"type": "color_jitter", "strength": 1.0},
    {"type": "random_grayscale"},
    {"type": "gaussian_blur"},
    {"type": "normalize"},
]
SIMCLR_CIFAR = [
    {"type": "random_resized_crop", "size": 32},
    {"type": "horizontal_flip"},
    {"type": "color_jitter", "strength": 0.5},
    {"type": "random_grayscale"},
]


class _AugmentationsOnly:
    """A plugin registering just the augmentations, so these tests do not depend on other components."""

    @hookimpl
    def register_augmentations(self) -> list[type]:
        return AUGMENTATIONS


@pytest.fixture(scope="module")
def registry() -> Registry:
    manager = get_plugin_manager(autoload=False)
    manager.register(_AugmentationsOnly(), name="simclr_augmentations")
    return Registry.from_plugin_manager(manager)


def make(registry: Registry, type_: str, **params):
    return build("augmentation", {"type": type_, **params}, registry=registry)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_rate(mask: torch.Tensor, p: float) -> None:
    rate = mask.float().mean().item()
    standard_error = math.sqrt(p * (1 - p) / mask.numel())
    assert abs(rate - p) <= 5 * standard_error, f"rate {rate:.4f}, expected {p} +- {5 * standard_error:.4f}"


def assert_uniform(samples: torch.Tensor, low: float, high: float, slack: float = 0.0) -> None:
    """Samples of U(low, high); ``slack`` widens the range for values that went through rounding."""
    n = samples.numel()
    assert samples.min() >= low - slack and samples.max() <= high + slack
    mean_error = (high - low) / math.sqrt(12 * n)
    assert abs(samples.mean().item() - (low + high) / 2) <= 5 * mean_error + slack
    counts = torch.histc(samples.float(), bins=4, min=low - slack, max=high + slack)
    count_error = math.sqrt(n * 0.25 * 0.75)
    assert (counts - n / 4).abs().max() <= 5 * count_error + slack * n, counts


def rgb_batch(batch: int = 8, side: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand((batch, 3, side, side), generator=seeded(seed))


# --- registration ------------------------------------------------------------------------------------


def test_every_augmentation_registers_cleanly(registry):
    assert registry.problems == []
    assert registry.names("augmentation") == sorted(
        [
            "color_jitter",
            "gaussian_blur",
            "horizontal_flip",
            "normalize",
            "random_grayscale",
            "random_resized_crop",
            "solarize",
        ]
    )


@pytest.mark.parametrize(
    "params",
    [
        {"type": "random_resized_crop", "size": 0},
        {"type": "random_resized_crop", "size": 32, "scale": [0.9, 0.1]},
        {"type": "random_resized_crop", "size": 32, "ratio": [0.0, 1.0]},
        {"type": "horizontal_flip", "p": 1.5},
        {"type": "color_jitter", "hue": 0.6},
        {"type": "color_jitter", "strength": 3.0},
        {"type": "gaussian_blur", "sigma": [2.0, 0.1]},
        {"type": "normalize", "mean": [0.5, 0.5], "std": [0.2]},
        {"type": "normalize", "mean": [0.5], "std": [0.0]},
        {"type": "solarize", "threshold": 2.0},
        {"type": "horizontal_flip", "probability": 0.5},
    ],
)
def test_invalid_params_are_rejected(registry, params):
    with pytest.raises(RecipeError):
        build("augmentation", params, registry=registry)


# --- random_resized_crop -----------------------------------------------------------------------------


def crop_geometry(crop, height: int, width: int, generator=None):
    params = crop.sample_params(torch.Size((N, 3, height, width)), CPU, generator or seeded())
    return params["top"], params["left"], params["height"], params["width"]


def test_crop_area_and_log_aspect_are_uniform_when_the_first_try_always_fits(registry):
    # With areas up to half the image and ratios within 4/3, every try fits a square image, so the
    # accepted crops follow the sampling distributions exactly (up to rounding to whole pixels).
    crop = make(registry, "random_resized_crop", size=32, scale=(0.08, 0.5))
    _, _, h, w = crop_geometry(crop, 224, 224)
    fraction = (h * w).double() / (224 * 224)
    assert_uniform(fraction, 0.08, 0.5, slack=0.002)
    assert_uniform(torch.log(w.double() / h), math.log(3 / 4), math.log(4 / 3), slack=0.02)


def test_crop_boxes_stay_inside_the_image_with_area_and_ratio_in_range(registry):
    crop = make(registry, "random_resized_crop", size=32)
    top, left, h, w = crop_geometry(crop, 224, 224)
    assert (top >= 0).all() and (left >= 0).all() and (h >= 1).all() and (w >= 1).all()
    assert (top + h <= 224).all() and (left + w <= 224).all()
    fraction = (h * w).double() / (224 * 224)
    assert fraction.min() >= 0.08 - 0.002 and fraction.max() <= 1.0
    ratio = w.double() / h
    assert ratio.min() >= 3 / 4 - 0.02 and ratio.max() <= 4 / 3 + 0.02
    # Every sample gets its own crop.
    assert len({tuple(box) for box in torch.stack([top, left, h, w], 1).tolist()}) > N * 0.9


def test_crop_position_is_uniform_over_the_positions_where_it_fits(registry):
    crop = make(registry, "random_resized_crop", size=32, scale=(0.08, 0.5))
    top, left, h, w = crop_geometry(crop, 224, 224)
    # top is uniform on {0, ..., 224 - h}; (top + 0.5) / (225 - h) is then uniform on (0, 1) to within
    # half a step, at most 0.5 / 64 for these crops.
    assert_uniform((top + 0.5) / (225 - h).double(), 0.0, 1.0, slack=0.01)
    assert_uniform((left + 0.5) / (225 - w).double(), 0.0, 1.0, slack=0.01)


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [(100, 300, (0, 83, 100, 133)), (300, 100, (83, 0, 133, 100)), (50, 50, (0, 0, 50, 50))],
)
def test_crop_falls_back_to_the_central_crop_when_no_try_fits(registry, height, width, expected):
    # The whole area never fits a 1:3 image with a ratio within [3/4, 4/3], and on a square image only
    # a ratio that rounds to exactly 1 fits: (almost) every sample exhausts its tries.
    crop = make(registry, "random_resized_crop", size=32, scale=(1.0, 1.0))
    boxes = torch.stack(crop_geometry(crop, height, width), dim=1)
    central = (boxes == torch.tensor(expected)).all(dim=1)
    assert central.float().mean() > 0.99


def test_crop_distribution_matches_torchvisions_sequential_algorithm(registry):
    # On a 1:3 image about 3% of the samples exhaust their 10 tries, so the vectorised tries, the
    # choice of the first fitting one and the fallback all shape these statistics.
    height, width, n = 100, 300, 2048
    crop = make(registry, "random_resized_crop", size=32)
    params = crop.sample_params(torch.Size((n, 3, height, width)), CPU, seeded())
    ours = torch.stack([params["top"], params["left"], params["height"], params["width"]], dim=1).double()

    torch.manual_seed(0)
    image = torch.empty(3, height, width)
    theirs = torch.tensor(
        [TorchvisionRandomResizedCrop.get_params(image, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(n)]
    ).double()

    def statistics(boxes: torch.Tensor) -> list[torch.Tensor]:
        top, left, h, w = boxes.unbind(1)
        fallback = (boxes == torch.tensor([0.0, 83.0, 100.0, 133.0], dtype=torch.float64)).all(dim=1)
        return [h * w / (height * width), torch.log(w / h), left / width, top / height, fallback.double()]

    for mine, reference in zip(statistics(ours), statistics(theirs), strict=True):
        error = math.sqrt(mine.var().item() / n + reference.var().item() / n)
        assert abs(mine.mean().item() - reference.mean().item()) <= 5 * error + 1e-9


def ramp_image(height: int, width: int) -> torch.Tensor:
    """(1, 2, H, W): channel 0 holds the column index x, channel 1 the row index y."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([xs, ys]).float().unsqueeze(0)


def test_crop_apply_cuts_each_samples_own_box(registry):
    crop = make(registry, "random_resized_crop", size=8)
    images = ramp_image(32, 32).repeat(2, 1, 1, 1)
    params = {
        "top": torch.tensor([2, 20]),
        "left": torch.tensor([3, 0]),
        "height": torch.tensor([8, 8]),
        "width": torch.tensor([8, 8]),
    }
    out = crop.apply(images, params)
    assert out.shape == (2, 2, 8, 8)
    torch.testing.assert_close(out[0], images[0, :, 2:10, 3:11], atol=1e-4, rtol=0)
    torch.testing.assert_close(out[1], images[1, :, 20:28, 0:8], atol=1e-4, rtol=0)


def test_crop_apply_resizes_bilinearly_from_corner_pixel_to_corner_pixel(registry):
    crop = make(registry, "random_resized_crop", size=7)
    images = ramp_image(8, 8)
    params = {
        "top": torch.tensor([2]),
        "left": torch.tensor([1]),
        "height": torch.tensor([4]),
        "width": torch.tensor([4]),
    }
    out = crop.apply(images, params)
    # A linear ramp stays linear under bilinear interpolation: columns 1..4 spread over 7 samples.
    expected_x = torch.linspace(1, 4, 7).expand(7, 7)
    expected_y = torch.linspace(2, 5, 7)[:, None].expand(7, 7)
    torch.testing.assert_close(out[0, 0], expected_x, atol=1e-4, rtol=0)
    torch.testing.assert_close(out[0, 1], expected_y, atol=1e-4, rtol=0)


def test_crop_antialias_smooths_shrunk_crops_and_keeps_enlarged_ones(registry):
    sharp = make(registry, "random_resized_crop", size=16)
    smooth = make(registry, "random_resized_crop", size=16, antialias=True)
    noise = torch.rand((2, 3, 64, 64), generator=seeded())
    # Sample 0: the whole image shrunk 4x; sample 1: an 8x8 crop enlarged 2x.
    params = {
        "top": torch.tensor([0, 10]),
        "left": torch.tensor([0, 10]),
        "height": torch.tensor([64, 8]),
        "width": torch.tensor([64, 8]),
    }
    aliased, filtered = sharp.apply(noise, params), smooth.apply(noise, params)
    assert filtered[0].var() < 0.5 * aliased[0].var()
    torch.testing.assert_close(filtered[1], aliased[1])


# --- horizontal_flip -----------------------------------------------------------------------------------


def test_flip_mirrors_half_of_the_samples(registry):
    flip = make(registry, "horizontal_flip")
    images = torch.rand((N, 1, 2, 3), generator=seeded(1))
    params = flip.sample_params(images.shape, CPU, seeded())
    assert_rate(params["applied"], 0.5)
    out = flip.apply(images, params)
    applied = params["applied"]
    assert torch.equal(out[applied], images[applied].flip(-1))
    assert torch.equal(out[~applied], images[~applied])


# --- color_jitter --------------------------------------------------------------------------------------


def test_jitter_is_applied_to_80_percent_in_a_uniformly_random_order(registry):
    jitter = make(registry, "color_jitter")
    params = jitter.sample_params(torch.Size((N, 3, 4, 4)), CPU, seeded())
    assert_rate(params["applied"], 0.8)
    order = params["order"]
    assert torch.equal(order.sort(dim=1).values, torch.arange(4).expand(N, 4))
    for step in (0, 3):
        for op in range(4):
            assert_rate(order[:, step] == op, 0.25)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"strength": 1.0}, {"brightness": 0.8, "contrast": 0.8, "saturation": 0.8, "hue": 0.2}),
        ({"strength": 0.5}, {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1}),
        (
            {"brightness": 1.5, "hue": 0.5},
            {"brightness": 1.5, "contrast": 0.8, "saturation": 0.8, "hue": 0.5},
        ),
    ],
)
def test_jitter_factors_are_uniform_in_their_ranges(registry, params, expected):
    jitter = make(registry, "color_jitter", **params)
    drawn = jitter.sample_params(torch.Size((N, 3, 4, 4)), CPU, seeded())
    for op in ("brightness", "contrast", "saturation"):
        assert_uniform(drawn[op], max(0.0, 1 - expected[op]), 1 + expected[op])
    assert_uniform(drawn["hue"], -expected["hue"], expected["hue"])


def jitter_params(batch: int, order=(0, 1, 2, 3), **factors) -> dict[str, torch.Tensor]:
    """Hand-made params: every sample jittered in ``order``, identity factors unless given."""
    params = {
        "applied": torch.ones(batch, dtype=torch.bool),
        "order": torch.tensor(order).expand(batch, 4),
        "brightness": torch.ones(batch),
        "contrast": torch.ones(batch),
        "saturation": torch.ones(batch),
        "hue": torch.zeros(batch),
    }
    params.update({op: torch.full((batch,), float(value)) for op, value in factors.items()})
    return params


def luma(images: torch.Tensor) -> torch.Tensor:
    red, green, blue = images.unbind(1)
    return (0.299 * red + 0.587 * green + 0.114 * blue).unsqueeze(1)


def test_jitter_ops_follow_the_torchvision_conventions(registry):
    jitter = make(registry, "color_jitter")
    images = rgb_batch() * 0.5
    torch.testing.assert_close(jitter.apply(images, jitter_params(8, brightness=1.5)), images * 1.5)
    flat = jitter.apply(images, jitter_params(8, contrast=0.0))
    torch.testing.assert_close(flat, luma(images).mean(dim=(1, 2, 3), keepdim=True).expand_as(images))
    gray = jitter.apply(images, jitter_params(8, saturation=0.0))
    torch.testing.assert_close(gray, luma(images).expand_as(images))
    red = torch.zeros(1, 3, 2, 2)
    red[:, 0] = 1.0
    green = torch.zeros(1, 3, 2, 2)
    green[:, 1] = 1.0
    torch.testing.assert_close(jitter.apply(red, jitter_params(1, hue=1 / 3)), green, atol=1e-5, rtol=0)


def test_jitter_applies_each_samples_ops_in_its_own_order(registry):
    jitter = make(registry, "color_jitter")
    image = rgb_batch(1)
    images = image.repeat(2, 1, 1, 1)
    params = jitter_params(2, brightness=1.8, contrast=0.3)
    params["order"] = torch.tensor([[0, 1, 2, 3], [1, 0, 3, 2]])
    out = jitter.apply(images, params)
    brightened = (image * 1.8).clamp(0, 1)
    brightness_first = jitter.apply(brightened, jitter_params(1, contrast=0.3))
    contrast_first = (jitter.apply(image, jitter_params(1, contrast=0.3)) * 1.8).clamp(0, 1)
    torch.testing.assert_close(out[:1], brightness_first)
    torch.testing.assert_close(out[1:], contrast_first)
    assert not torch.allclose(out[0], out[1])


def test_jitter_changes_only_the_selected_samples_and_stays_in_unit_range(registry):
    jitter = make(registry, "color_jitter", strength=2.0, hue=0.5)
    images = rgb_batch(256)
    params = jitter.sample_params(images.shape, CPU, seeded())
    out = jitter.apply(images, params)
    applied = params["applied"]
    assert torch.equal(out[~applied], images[~applied])
    changed = (out[applied] - images[applied]).abs().amax(dim=(1, 2, 3)) > 1e-3
    assert changed.all()
    assert out.min() >= 0 and out.max() <= 1 and out.dtype == images.dtype


def test_jitter_on_one_channel_uses_brightness_and_contrast_only(registry):
    images = torch.rand((64, 1, 8, 8), generator=seeded())
    color_only = make(registry, "color_jitter", brightness=0.0, contrast=0.0, p=1.0)
    assert torch.equal(color_only(images, seeded()), images)
    jitter = make(registry, "color_jitter", p=1.0)
    out = jitter(images, seeded())
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1
    assert ((out - images).abs().amax(dim=(1, 2, 3)) > 1e-4).all()
    # Brightness then contrast, exactly, on one channel: the mean is the image's own mean.
    params = jitter_params(64, brightness=0.5, contrast=2.0)
    dimmed = images * 0.5
    expected = (2.0 * dimmed - dimmed.mean(dim=(1, 2, 3), keepdim=True)).clamp(0, 1)
    torch.testing.assert_close(jitter.apply(images, params), expected)


# --- random_grayscale ----------------------------------------------------------------------------------


def test_grayscale_converts_20_percent_and_keeps_three_equal_channels(registry):
    grayscale = make(registry, "random_grayscale")
    images = torch.rand((N, 3, 2, 2), generator=seeded(1))
    params = grayscale.sample_params(images.shape, CPU, seeded())
    assert_rate(params["applied"], 0.2)
    out = grayscale.apply(images, params)
    applied = params["applied"]
    assert out.shape == images.shape
    torch.testing.assert_close(out[applied], luma(images[applied]).expand(-1, 3, -1, -1))
    assert torch.equal(out[~applied], images[~applied])
    one_channel = images[:, :1]
    assert torch.equal(grayscale.apply(one_channel, params), one_channel)


# --- gaussian_blur -------------------------------------------------------------------------------------


def test_blur_rate_and_sigma_distribution(registry):
    blur = make(registry, "gaussian_blur")
    params = blur.sample_params(torch.Size((N, 3, 32, 32)), CPU, seeded())
    assert_rate(params["applied"], 0.5)
    assert_uniform(params["sigma"], 0.1, 2.0)


def test_blur_kernel_is_ten_percent_of_the_side_and_odd(registry):
    blur = make(registry, "gaussian_blur")
    assert blur.kernel_size(224, 224) == (23, 23)
    assert blur.kernel_size(96, 64) == (9, 7)
    assert blur.kernel_size(32, 32) == (3, 3)
    assert blur.kernel_size(8, 8) == (1, 1)
    tiny = rgb_batch(4, side=8)
    assert torch.equal(blur(tiny, seeded()), tiny)


def test_blur_uses_each_samples_sigma_and_only_on_selected_samples(registry):
    blur = make(registry, "gaussian_blur")
    noise = torch.rand((1, 3, 32, 32), generator=seeded()).repeat(3, 1, 1, 1)
    params = {"applied": torch.tensor([True, True, False]), "sigma": torch.tensor([0.1, 2.0, 2.0])}
    out = blur.apply(noise, params)
    # sigma = 0.1 leaves a one-hot kernel; sigma = 2 averages about 25 pixels.
    torch.testing.assert_close(out[0], noise[0])
    assert out[1].var() < 0.2 * noise[1].var()
    assert torch.equal(out[2], noise[2])


# --- solarize ------------------------------------------------------------------------------------------


def test_solarize_inverts_bright_pixels_of_20_percent(registry):
    solarize = make(registry, "solarize")
    images = torch.rand((N, 1, 2, 2), generator=seeded(1))
    params = solarize.sample_params(images.shape, CPU, seeded())
    assert_rate(params["applied"], 0.2)
    out = solarize.apply(images, params)
    applied = params["applied"]
    expected = torch.where(images[applied] >= 0.5, 1 - images[applied], images[applied])
    torch.testing.assert_close(out[applied], expected)
    assert torch.equal(out[~applied], images[~applied])


# --- normalize -----------------------------------------------------------------------------------------


def test_normalize_standardises_each_channel(registry):
    images = rgb_batch()
    out = make(registry, "normalize")(images)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(out, (images - mean) / std)
    gray = make(registry, "normalize", mean=[0.5], std=[0.25])
    torch.testing.assert_close(gray(images[:, :1]), (images[:, :1] - 0.5) / 0.25)
    with pytest.raises(ValueError, match="channel"):
        gray(images)


# --- the pipeline --------------------------------------------------------------------------------------


def test_simclr_imagenet_pipeline_builds_and_runs(registry):
    pipeline = build_pipeline(SIMCLR_IMAGENET, registry=registry)
    assert isinstance(pipeline, AugmentationPipeline)
    assert [op.name for op in pipeline.augmentations] == [params["type"] for params in SIMCLR_IMAGENET]
    images = torch.randint(0, 256, (4, 3, 256, 320), dtype=torch.uint8, generator=seeded())
    first, second = pipeline.views(images, generator=seeded())
    assert first.shape == second.shape == (4, 3, 224, 224)
    assert first.dtype == torch.float32 and torch.isfinite(first).all()
    assert not torch.allclose(first, second)


def test_cifar_pipeline_views_are_float_in_unit_range_and_differ(registry):
    pipeline = build_pipeline(SIMCLR_CIFAR, registry=registry)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=seeded())
    views = pipeline.views(images, n_views=3, generator=seeded())
    assert len(views) == 3
    for view in views:
        assert view.shape == (64, 3, 32, 32) and view.dtype == torch.float32
        assert view.min() >= 0 and view.max() <= 1
    assert not torch.allclose(views[0], views[1]) and not torch.allclose(views[1], views[2])


def test_uint8_input_is_scaled_to_unit_float(registry):
    pipeline = build_pipeline(SIMCLR_CIFAR, registry=registry)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=seeded())
    from_uint8 = pipeline(images, generator=seeded(3))
    from_float = pipeline(images.float() / 255, generator=seeded(3))
    torch.testing.assert_close(from_uint8, from_float)
    identity = AugmentationPipeline([])
    torch.testing.assert_close(identity(images), images.float() / 255)


def test_float_dtype_is_kept(registry):
    pipeline = build_pipeline(SIMCLR_CIFAR + [{"type": "gaussian_blur"}], registry=registry)
    images = torch.rand((8, 3, 40, 40), dtype=torch.float64, generator=seeded())
    assert pipeline(images, generator=seeded()).dtype == torch.float64


def test_every_sample_gets_its_own_parameters(registry):
    pipeline = build_pipeline(SIMCLR_CIFAR, registry=registry)
    images = rgb_batch(1, side=32).repeat(16, 1, 1, 1)
    out = pipeline(images, generator=seeded()).flatten(1)
    distances = torch.cdist(out, out) + torch.eye(16)
    assert distances.min() > 1e-3


def test_a_seeded_generator_reproduces_the_views_and_leaves_the_global_rng_alone(registry):
    small_imagenet = [{"type": "random_resized_crop", "size": 40}, *SIMCLR_IMAGENET[1:]]
    pipeline = build_pipeline(small_imagenet, registry=registry)
    images = torch.randint(0, 256, (4, 3, 48, 48), dtype=torch.uint8, generator=seeded())
    global_state = torch.get_rng_state()
    first = pipeline.views(images, generator=seeded(7))
    again = pipeline.views(images, generator=seeded(7))
    other = pipeline.views(images, generator=seeded(8))
    assert torch.equal(global_state, torch.get_rng_state())
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a, b)
    assert not torch.allclose(first[0], other[0])


def test_one_channel_pipeline(registry):
    fashion_mnist = [
        {"type": "random_resized_crop", "size": 28},
        {"type": "horizontal_flip"},
        {"type": "color_jitter", "strength": 0.5},
        {"type": "random_grayscale"},
        {"type": "normalize", "mean": [0.286], "std": [0.353]},
    ]
    pipeline = build_pipeline(fashion_mnist, registry=registry)
    images = torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8, generator=seeded())
    first, second = pipeline.views(images, generator=seeded())
    assert first.shape == (32, 1, 28, 28) and torch.isfinite(first).all()
    assert not torch.allclose(first, second)


def test_pipeline_rejects_bad_input(registry):
    pipeline = build_pipeline(SIMCLR_CIFAR, registry=registry)
    with pytest.raises(ValueError, match="B, C, H, W"):
        pipeline(torch.rand(3, 32, 32))
    with pytest.raises(TypeError, match="uint8 or float"):
        pipeline(torch.zeros((2, 3, 32, 32), dtype=torch.int32))
    with pytest.raises(ValueError, match="n_views"):
        pipeline.views(torch.rand(2, 3, 32, 32), n_views=0)
    with pytest.raises(ValueError, match="float batch"):
        make(registry, "horizontal_flip")(torch.zeros((2, 3, 4, 4), dtype=torch.uint8))


# --- CUDA ----------------------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pipeline_on_cuda_matches_cpu_on_the_same_parameters(registry):
    cuda = torch.device("cuda")
    images = torch.rand((32, 3, 64, 64), generator=seeded())
    ops = [
        make(registry, "random_resized_crop", size=48, antialias=True),
        make(registry, "horizontal_flip"),
        make(registry, "color_jitter"),
        make(registry, "random_grayscale"),
        make(registry, "gaussian_blur"),
        make(registry, "solarize"),
        make(registry, "normalize"),
    ]
    on_cpu, on_cuda = images, images.to(cuda)
    for op in ops:
        params = op.sample_params(on_cpu.shape, CPU, seeded())
        on_cpu = op.apply(on_cpu, params)
        on_cuda = op.to(cuda).apply(on_cuda, {key: value.to(cuda) for key, value in params.items()})
        assert on_cuda.device.type == "cuda"
        torch.testing.assert_close(on_cuda.cpu(), on_cpu, atol=1e-4, rtol=1e-4)

    pipeline = AugmentationPipeline(ops).to(cuda)
    uint8 = torch.randint(0, 256, (32, 3, 64, 64), dtype=torch.uint8, device=cuda)
    first = pipeline.views(uint8, generator=torch.Generator(cuda).manual_seed(0))
    again = pipeline.views(uint8, generator=torch.Generator(cuda).manual_seed(0))
    assert first[0].device.type == "cuda" and first[0].shape == (32, 3, 48, 48)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.allclose(first[0], first[1])
