"""SimCLR's random resized crop on photos of their own sizes, padded into one canvas with their sizes.

Statistics on the photo fixture (tests/fixtures/photos, 30 photos from 96 x 128 to 600 x 800) are
compared on 20,000 boxes with torchvision.transforms.v2.RandomResizedCrop drawing from the same
photos, and with the old behaviour (boxes drawn on each photo's centre square resized to 224 px); see
:mod:`tests.simclr.crop_statistics` for the statistics. Pixels: the op-by-op crop (Kornia) and the
fused crop (grid_sample) on a canvas must equal cropping each photo separately with the same box.
"""

from __future__ import annotations

import math

import pytest
import torch

from contrastive_core import RecipeError, build, default_registry, validate_recipe
from contrastive_core.components import StepProgress
from contrastive_core.engine import (
    CanvasOrderError,
    ImageBatch,
    TrainingStep,
    build_pipeline,
    build_training_parts,
    canvas_batch,
    check_views_crop_first,
)
from contrastive_plugins.simclr import fused_ops
from contrastive_plugins.simclr.augmentations import RandomResizedCrop
from contrastive_plugins.simclr.fused_pipeline import FusedSimCLRPipeline
from tests.bench.sampling import seeded

from . import crop_statistics as stats

pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision are deprecated:DeprecationWarning"
)

CPU = torch.device("cpu")
DRAWS = 20_000


def crop_op(**params) -> RandomResizedCrop:
    return RandomResizedCrop(RandomResizedCrop.Params(size=params.pop("size", 224), **params))


def boxes_of(drawn: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.stack([drawn["top"], drawn["left"], drawn["height"], drawn["width"]], dim=1)


@pytest.fixture(scope="module")
def photo_sizes() -> torch.Tensor:
    return stats.photo_sizes()


@pytest.fixture(scope="module")
def canvas() -> ImageBatch:
    """Eight fixture photos of different sizes and shapes as one float64 canvas (up to 427 x 640 ->
    640 x 640) with their sizes; pixels in [0, 1]."""
    from torchvision.io import decode_jpeg, read_file

    names = ["00_375x500", "06_512x256", "18_120x160", "02_427x640"]
    names += ["04_300x300", "07_281x500", "23_96x128", "27_140x250"]
    files = {path.stem: path for path in (stats.PHOTOS / "train").rglob("*.jpg")}
    photos = [decode_jpeg(read_file(str(files[name]))) for name in names]
    batch = canvas_batch(photos, 640)
    return ImageBatch(batch.pixels.double() / 255, batch.sizes)


# --- the boxes ------------------------------------------------------------------------------------------


def test_crop_statistics_on_photos_match_torchvision_and_differ_from_the_centre_square(photo_sizes):
    sizes = stats.tiled(photo_sizes, DRAWS)
    ours = stats.our_boxes(sizes, seed=0, canvas_side=int(photo_sizes.max()))
    theirs = stats.torchvision_boxes(sizes, seed=1)
    square, old = stats.centre_square_boxes(sizes, seed=2)

    # Every zoom quantile of torchvision's boxes splits ours at the same share, to 5 standard errors
    # of the difference of two empirical shares (zooms take discrete values: ties count both ways).
    our_zoom, their_zoom = stats.zoom(ours), stats.zoom(theirs)
    for share in (0.1, 0.25, 0.5, 0.75, 0.9):
        quantile = torch.quantile(their_zoom, share).item()
        slack = 5 * math.sqrt(2 * share * (1 - share) / DRAWS)
        below, at_most = (our_zoom < quantile).double().mean(), (our_zoom <= quantile).double().mean()
        assert below <= share + slack and at_most >= share - slack, (share, quantile, below, at_most)
    ours_summary, theirs_summary = stats.summary(ours, sizes), stats.summary(theirs, sizes)
    for key in ("zoom_q10", "zoom_q50", "zoom_q90"):
        assert ours_summary[key] == pytest.approx(theirs_summary[key], rel=0.03), key
    band = ours_summary["outer_band"]
    assert abs(band - theirs_summary["outer_band"]) <= 5 * math.sqrt(2 * band * (1 - band) / DRAWS)

    # The old boxes: cut from a 224 px square, so never shrunk; they miss the photos' borders.
    old_summary = stats.summary(old, sizes, square)
    assert old_summary["zoom_q10"] >= 1.0 > 0.8 > ours_summary["zoom_q10"]
    assert ours_summary["outer_band"] > 0.5 > 0.15 > old_summary["outer_band"]


def test_on_a_4_by_3_photo_most_crops_are_shrunk_and_most_reach_the_borders():
    sizes = torch.tensor([[375, 500]]).repeat(DRAWS, 1)
    ours = stats.summary(stats.our_boxes(sizes, seed=0, canvas_side=512), sizes)
    square, old = stats.centre_square_boxes(sizes, seed=0)
    before = stats.summary(old, sizes, square)
    assert ours["zoom_q50"] == pytest.approx(0.79, abs=0.02) and ours["zoom_q90"] < 1.4
    assert ours["outer_band"] == pytest.approx(0.63, abs=0.02)
    assert before["zoom_q10"] > 1.0 and before["outer_band"] == 0.0  # the square never reaches them


def test_boxes_stay_inside_each_photo_and_follow_its_own_area(photo_sizes):
    sizes = stats.tiled(photo_sizes, 4096)
    boxes = stats.our_boxes(sizes, seed=3, canvas_side=800)
    top, left, height, width = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (height >= 1).all() and (width >= 1).all()
    assert (top + height <= sizes[:, 0]).all() and (left + width <= sizes[:, 1]).all()
    fraction = (height * width).double() / (sizes[:, 0] * sizes[:, 1]).double()
    assert fraction.min() >= 0.08 - 0.01 and fraction.max() <= 1.0
    # Sampled from the photo's own area: the 600 x 800 photo gets boxes far larger than any square of
    # 224 px could hold.
    largest = (sizes == torch.tensor([600, 800])).all(dim=1)
    assert width[largest].max() > 700 and (width[largest] > 500).double().mean() > 0.3


def test_sizes_that_fill_the_canvas_give_the_boxes_of_a_batch_without_sizes():
    crop = crop_op(size=32)
    shape = torch.Size((512, 3, 100, 300))
    without = crop.sample_params(shape, CPU, seeded(7))
    full = torch.tensor([[100, 300]]).repeat(512, 1)
    with_sizes = crop.sample_params(shape, CPU, seeded(7), sizes=full)
    for key in without:
        assert torch.equal(without[key], with_sizes[key]), key


def test_each_photo_falls_back_to_its_own_central_crop():
    # scale (1, 1): the whole area, whose ratio 1:3 is outside [3/4, 4/3] -> the central fallback.
    crop = crop_op(size=32, scale=(1.0, 1.0))
    sizes = torch.tensor([[100, 300], [300, 100], [50, 50], [60, 400]])
    boxes = boxes_of(crop.sample_params(torch.Size((4, 3, 400, 400)), CPU, seeded(), sizes=sizes))
    assert boxes.tolist()[:2] == [[0, 83, 100, 133], [83, 0, 133, 100]]
    assert boxes[3].tolist() == [0, 160, 60, 80]  # round(60 * 4/3) = 80 wide, centred in 400


# --- the pixels -----------------------------------------------------------------------------------------


def per_photo_reference(canvas: ImageBatch, boxes: dict[str, torch.Tensor], crop_each) -> torch.Tensor:
    """Each photo cut out of the canvas to its own size and cropped on its own with its box."""
    views = []
    for index in range(len(boxes["top"])):
        photo = canvas.image(index % len(canvas))[None]
        box = {key: value[index : index + 1] for key, value in boxes.items()}
        views.append(crop_each(photo, box, index))
    return torch.cat(views)


def test_the_op_by_op_crop_of_a_canvas_equals_cropping_each_photo_alone(canvas):
    crop = crop_op(size=48)
    drawn = crop.sample_params(canvas.pixels.shape, CPU, seeded(1), sizes=canvas.sizes)
    expected = per_photo_reference(canvas, drawn, lambda photo, box, _: crop.apply(photo, box))
    torch.testing.assert_close(crop.apply(canvas.pixels, drawn), expected, atol=1e-9, rtol=0)
    # The op's forward draws the same boxes from the same seed.
    torch.testing.assert_close(
        crop(canvas.pixels, seeded(1), sizes=canvas.sizes), expected, atol=1e-9, rtol=0
    )


def test_the_fused_crop_and_flip_of_a_canvas_equal_cropping_each_photo_alone(canvas):
    crop = crop_op(size=48)
    views = 2
    sizes = canvas.sizes.repeat(views, 1)
    drawn = crop.sample_params(torch.Size((views * len(canvas), 3, 640, 640)), CPU, seeded(2), sizes=sizes)
    mirror = torch.rand(views * len(canvas), generator=seeded(3)) < 0.5
    fused = fused_ops.resized_crops(canvas.pixels, drawn, 48, mirror)

    def alone(photo, box, index):
        return fused_ops.resized_crops(photo, box, 48, mirror[index : index + 1])

    torch.testing.assert_close(fused, per_photo_reference(canvas, drawn, alone), atol=1e-9, rtol=0)
    # ... which is the reference op's crop, mirrored.
    reference = crop.apply(canvas.pixels.repeat(views, 1, 1, 1), drawn)
    reference = torch.where(mirror[:, None, None, None], reference.flip(-1), reference)
    torch.testing.assert_close(fused, reference, atol=1e-9, rtol=0)


IMAGENET = [
    {"type": "random_resized_crop", "size": 48},
    {"type": "horizontal_flip"},
    {"type": "color_jitter", "strength": 1.0},
    {"type": "random_grayscale"},
    {"type": "gaussian_blur"},
    {"type": "normalize"},
]


# The anti-aliasing blur runs over the whole canvas, with a kernel for its largest possible shrink
# (canvas side / output side): a larger output keeps it small enough for a CPU test.
@pytest.mark.parametrize(("antialias", "size"), [(False, 48), (True, 160)])
def test_fused_and_op_by_op_pipelines_give_the_same_views_of_a_canvas(canvas, antialias, size):
    ops = [{**IMAGENET[0], "size": size, "antialias": antialias}, *IMAGENET[1:]]
    registry = default_registry()
    fused = build_pipeline(ops, registry=registry)
    reference = build_pipeline(ops, registry=registry, fused=False)
    assert type(fused) is FusedSimCLRPipeline
    expected = reference.stacked_views(canvas.pixels, 2, seeded(5), sizes=canvas.sizes)
    actual = fused.stacked_views(canvas.pixels, 2, seeded(5), sizes=canvas.sizes)
    assert actual.shape == (2 * len(canvas), 3, size, size)
    # float64; Kornia's HSV conversion adds an eps of 1e-8, hence not 1e-9 (see test_fused_pipeline).
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    uint8 = (canvas.pixels * 255).round().to(torch.uint8)
    torch.testing.assert_close(
        fused.stacked_views(uint8, 2, seeded(6), sizes=canvas.sizes),
        reference.stacked_views(uint8, 2, seeded(6), sizes=canvas.sizes),
        atol=2e-4,
        rtol=0,
    )


# --- a pipeline that does not start with the crop --------------------------------------------------------


@pytest.mark.parametrize("fused", [True, False])
def test_a_pipeline_that_does_not_crop_first_refuses_a_canvas(canvas, fused):
    pipeline = build_pipeline(
        [{"type": "horizontal_flip"}, IMAGENET[0]], registry=default_registry(), fused=fused
    )
    with pytest.raises(CanvasOrderError, match="first augmentation must be a crop.*not 'horizontal_flip'"):
        pipeline.stacked_views(canvas.pixels, 2, seeded(), sizes=canvas.sizes)
    assert pipeline.stacked_views(canvas.pixels, 2, seeded()).shape == (16, 3, 48, 48)  # no sizes: fine


def photo_recipe(**sections) -> dict:
    recipe = {
        "run": {"device": "cpu"},
        "data": {"type": "image_folder", "root": str(stats.PHOTOS)},
        "model": {"encoder": {"type": "small_cnn", "in_channels": 3, "widths": [4], "feature_dim": 8}},
        "optimizer": {"type": "sgd", "lr": 0.1},
        "stages": [{"type": "pretrain", "epochs": 1, "batch_size": 4}],
    }
    return {**recipe, **sections}


def parts_and_split(recipe_dict: dict):
    """The validated recipe, its training parts (view pipelines included) and its pretraining split."""
    registry = default_registry()
    recipe = validate_recipe(recipe_dict, registry=registry)
    parts = build_training_parts(recipe, registry, device=CPU, batch_size=4, total_steps=1, steps_per_epoch=1)
    return recipe, parts, build("dataset", recipe.data, registry=registry).training_split("train")


def test_the_order_error_names_the_recipe_key_and_both_fixes():
    flip_first = [{"type": "horizontal_flip"}, IMAGENET[0]]
    recipe, parts, split = parts_and_split(
        photo_recipe(
            augmentations=flip_first,
            method={"type": "simclr"},
            loss={"type": "nt_xent"},
            model={
                "encoder": {"type": "small_cnn", "in_channels": 3, "widths": [4], "feature_dim": 8},
                "head": {"type": "mlp", "hidden_dim": 8, "out_dim": 8},
            },
        )
    )
    with pytest.raises(RecipeError) as raised:
        check_views_crop_first(recipe, parts.views, split)
    message = str(raised.value)
    assert "augmentations[0]: view group 'global' starts with 'horizontal_flip'" in message
    assert 'Put { type = "random_resized_crop", ... } first, or set data.train_images = "square"' in message


def test_the_order_error_names_the_view_group_table():
    ops = [{"type": "color_jitter"}, {"type": "random_resized_crop", "size": 32}]
    recipe, parts, split = parts_and_split(
        photo_recipe(
            views=[{"name": "global", "augmentations": ops}],
            method={"type": "byol"},
            model={
                "encoder": {"type": "small_cnn", "in_channels": 3, "widths": [4], "feature_dim": 8},
                "head": {"type": "mlp", "hidden_dim": 8, "out_dim": 8},
                "predictor": {"type": "mlp", "hidden_dim": 8, "out_dim": 8},
            },
        )
    )
    with pytest.raises(
        RecipeError, match=r"views\[0\]\.augmentations\[0\]: view group 'global' starts with 'color_jitter'"
    ):
        check_views_crop_first(recipe, parts.views, split)
    # Squares of one size need no crop first.
    squares = {"type": "image_folder", "root": str(stats.PHOTOS), "train_images": "square"}
    check_views_crop_first(
        recipe, parts.views, build("dataset", squares, registry=default_registry()).split("train")
    )


# --- the training step ----------------------------------------------------------------------------------


@pytest.mark.parametrize("micro_batch_size", [None, 2])
def test_the_training_step_crops_every_view_from_its_photo(canvas, micro_batch_size):
    """make_views hands the batch's sizes to every group's pipeline, once per step, also under gradient
    caching (whose micro-batches take rows of those views)."""
    recipe_dict = photo_recipe(
        augmentations=IMAGENET,
        method={"type": "simclr"},
        loss={"type": "nt_xent"},
        model={
            "encoder": {"type": "small_cnn", "in_channels": 3, "widths": [4], "feature_dim": 8},
            "head": {"type": "mlp", "hidden_dim": 8, "out_dim": 8},
        },
    )
    registry = default_registry()
    recipe = validate_recipe(recipe_dict, registry=registry)
    torch.manual_seed(0)
    parts = build_training_parts(recipe, registry, device=CPU, batch_size=8, total_steps=2, steps_per_epoch=2)

    class NoAccelerator:
        """What the step asks of Accelerate, for one process on the CPU in float32."""

        num_processes = 1

        def autocast(self):
            return torch.autocast("cpu", enabled=False)

        def backward(self, loss):
            loss.backward()

    batch = ImageBatch((canvas.pixels * 255).round().to(torch.uint8), canvas.sizes)
    step = TrainingStep(
        parts.views,
        parts.method,
        parts.method,
        parts.optimizer,
        parts.scheduler,
        NoAccelerator(),
        seeded(9),
        micro_batch_size=micro_batch_size,
    )
    views = step.make_views(batch)
    expected = parts.views["global"].stacked_views(batch.pixels, None, seeded(9), sizes=batch.sizes)
    torch.testing.assert_close(views["global"], expected)
    output = step(batch, StepProgress(0, 2, 2))
    assert torch.isfinite(output.loss)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_a_canvas_is_cropped_without_synchronising(canvas):
    cuda = torch.device("cuda")
    fused = build_pipeline(IMAGENET, registry=default_registry()).to(cuda)
    pixels = (canvas.pixels * 255).round().to(torch.uint8).to(cuda)
    sizes = canvas.sizes.to(cuda)
    generator = torch.Generator(cuda).manual_seed(0)
    fused.stacked_views(pixels, 2, generator, sizes=sizes)  # warm-up: kernels loaded, memory cached
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        views = fused.stacked_views(pixels, 2, generator, sizes=sizes)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert views.shape == (16, 3, 48, 48)
