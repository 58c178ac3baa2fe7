"""Branch-free batched versions of the SimCLR augmentation ops' ``apply``, for whole batches on a device.

Each function takes the parameters the registered op's ``sample_params`` drew (one set per sample) and
computes what that op's ``apply`` computes, up to floating-point rounding, but as a few whole-batch
tensor expressions: no per-op or per-sample Python branching on tensor values, no boolean indexing and
no host-device transfers, so a step never waits on the device and ``torch.compile`` can trace the
whole pipeline in one graph. The registered Kornia-based ops stay the definition; tests compare these
functions with them on identical parameters.

* crop + resize + flip: one bilinear resampling (``grid_sample``) whose per-sample affine grid maps the
  output square onto the crop box, mirrored for the flipped samples;
* colour jitter: brightness, contrast and saturation as per-sample affine maps between clamps,
  ``clamp(a x + b gray(x) + c mean(gray(x)), 0, 1)``, in each sample's own random order, around a single
  per-sample HSV hue rotation of the whole batch;
* grayscale, flip and the blur's choice of samples: per-sample blends with weight 0 or 1 between two
  whole-batch results; solarize: a per-pixel selection;
* Gaussian blur: a separable depthwise convolution with one kernel per sample over the whole batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: ITU-R BT.601 luma weights, as torchvision's and Kornia's grayscale conversions use.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def per_sample(values: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N, 1, 1, 1), to broadcast one value per sample over a (N, C, H, W) batch."""
    return values.view(-1, 1, 1, 1)


def select(applied: torch.Tensor, transformed: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W): ``transformed[n]`` where ``applied[n]`` (a (N,) bool), else ``images[n]``, exactly.

    Written as the blend ``lerp(images, transformed, w)`` with w in {0, 1} (exact at both ends), which
    is one pass over the pixels and faster than ``torch.where`` with a broadcast mask on CPUs. The
    registered ops choose their samples with it too.
    """
    return torch.lerp(images, transformed, per_sample(applied.to(images.dtype)))


def luma(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) gray ``0.299 R + 0.587 G + 0.114 B``; one channel is returned as is."""
    if images.shape[1] == 1:
        return images
    red, green, blue = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    return (red * LUMA_WEIGHTS[0]).add_(green, alpha=LUMA_WEIGHTS[1]).add_(blue, alpha=LUMA_WEIGHTS[2])


def mean_luma(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, 1, 1, 1): the mean of each sample's gray image, from its channel means."""
    means = images.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1)
    return luma(means)


# --------------------------------------------------------------------------- crop, resize and flip


def crop_grid(
    boxes: dict[str, torch.Tensor],
    image_size: tuple[int, int],
    size: int,
    mirror: torch.Tensor | None,
    dtype: torch.dtype,
    half_pixel: bool = False,
) -> torch.Tensor:
    """The sampling grid (N, size, size, 2) of ``grid_sample(..., align_corners=True)`` for crop boxes
    (with ``half_pixel``: of ``grid_sample(..., align_corners=False)``, see below).

    ``boxes`` holds (N,) ``top``, ``left``, ``height``, ``width`` in pixels. As in the reference op,
    the centres of the box's corner pixels map onto the output's corner pixels: output column j reads
    source column ``left + j (width - 1) / (size - 1)`` (rows alike). In grid_sample's normalised
    coordinates ``u = 2 x / (W - 1) - 1`` this is an affine map of the output's own normalised column
    ``t`` in [-1, 1]: ``u = offset + scale * t``. A mirrored sample (``mirror[n]`` True) reads column
    ``size - 1 - j`` instead, i.e. ``t`` negated: the flip costs nothing.

    ``half_pixel``: the convention of resizing the cropped box as an image of its own (TensorFlow's
    ``tf.image.resize`` in google-research/simclr, half-pixel centres): output column j reads source
    column ``left + (j + 1/2) width / size - 1/2``, the box's edges (not its corner pixels' centres)
    mapping onto the output's edges. With ``align_corners=False``, ``u = (2 x + 1) / W - 1``, again
    affine in ``t``: ``u = (2 left + width) / W - 1 + t width / W``, with ``t`` at the output's pixel
    centres ``(2 j + 1) / size - 1``.
    """
    image_height, image_width = image_size
    device = boxes["top"].device
    if half_pixel:
        t = (2 * torch.arange(size, device=device, dtype=dtype) + 1) / size - 1
    else:
        t = torch.linspace(-1.0, 1.0, size, device=device, dtype=dtype)

    def axis(start: torch.Tensor, extent: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
        start, extent = start.to(dtype), extent.to(dtype)
        if half_pixel:
            return (2 * start + extent) / side - 1, extent / side
        denominator = max(side - 1, 1)  # a 1-pixel side has one position; any finite map reads it
        return (2 * start + extent - 1) / denominator - 1, (extent - 1) / denominator

    x_offset, x_scale = axis(boxes["left"], boxes["width"], image_width)
    y_offset, y_scale = axis(boxes["top"], boxes["height"], image_height)
    if mirror is not None:
        x_scale = torch.where(mirror, -x_scale, x_scale)
    xs = x_offset[:, None] + x_scale[:, None] * t  # (N, size): the normalised column of each output column
    ys = y_offset[:, None] + y_scale[:, None] * t  # (N, size)
    batch = xs.shape[0]
    return torch.stack(
        [xs[:, None, :].expand(batch, size, size), ys[:, :, None].expand(batch, size, size)], -1
    )


def resized_crops(
    images: torch.Tensor,
    boxes: dict[str, torch.Tensor],
    size: int,
    mirror: torch.Tensor | None = None,
    resample: str = "bilinear",
) -> torch.Tensor:
    """Crop each box and resize it to (size, size), mirroring where ``mirror`` says.

    ``resample``: "bilinear" (the box's corner pixels onto the output's, ``align_corners=True``) or
    "bicubic" (half-pixel centres as google-research/simclr's ``tf.image.resize(..., BICUBIC)``; torch's
    cubic kernel, a = -0.75; the cubic's 4 x 4 footprint reads the photo just beyond the box where TF
    reads the box's edge; values clipped to [0, 1] afterwards, as the reference clips its views).

    ``images`` (B, C, H, W); ``boxes`` (N,) each with N a multiple of B: sample n reads image n mod B,
    so the V = N / B views of a batch are cut from one copy of the source images (view v is rows
    v B ... (v + 1) B - 1). Returns (N, C, size, size). For a canvas of photos of different sizes
    (each in its top-left corner) the boxes lie within each photo, in canvas pixels, and the grid is
    the same: the canvas's (H, W) only sets the normalisation of grid_sample's coordinates.
    """
    source_batch = images.shape[0]
    bicubic = resample == "bicubic"
    grid = crop_grid(
        boxes, (images.shape[2], images.shape[3]), size, mirror, images.dtype, half_pixel=bicubic
    )
    # Bilinear reads stay inside the box; 'border' only guards the last pixel against rounding (and
    # gives the bicubic footprint the photo's edge at the photo's edge).
    views = [
        F.grid_sample(
            images,
            grid_rows,
            mode="bicubic" if bicubic else "bilinear",
            padding_mode="border",
            align_corners=not bicubic,
        )
        for grid_rows in grid.split(source_batch)
    ]
    out = views[0] if len(views) == 1 else torch.cat(views)
    return out.clamp_(0.0, 1.0) if bicubic else out


def antialias_sigmas(boxes: dict[str, torch.Tensor], size: int, dtype: torch.dtype) -> torch.Tensor:
    """(N, 2) per-axis standard deviations ``(crop side / size - 1) / 2`` (at least 1e-3) of the reference
    crop's anti-aliasing blur: shrunk crops are low-pass filtered, enlarged ones keep a one-hot kernel."""
    shrink = torch.stack([boxes["height"], boxes["width"]], dim=-1).to(dtype) / size
    return ((shrink - 1) / 2).clamp(min=1e-3)


def antialias_blur(images: torch.Tensor, boxes: dict[str, torch.Tensor], size: int) -> torch.Tensor:
    """The crop's anti-aliasing blur of (N, C, H, W) sources before their boxes are resized to ``size``.

    Sample n is blurred by the Gaussian of its per-axis sigmas (:func:`antialias_sigmas` of its box),
    borders reflected. The largest possible shrink (the whole image to ``size``) bounds every sample's
    sigma, so the shared kernel size follows from shapes alone, without reading the sampled boxes on
    the host; when no crop can be shrunk, the images are returned as they are. The registered
    ``random_resized_crop`` op and the fused pipeline both blur with this function.
    """
    _, _, height, width = images.shape
    largest_sigma = (max(height, width) / size - 1) / 2
    if largest_sigma <= 0:
        return images
    radius = math.ceil(2 * largest_sigma)
    sigmas = antialias_sigmas(boxes, size, images.dtype)
    # Reflect padding needs the radius to stay below each side.
    kernel_y = gaussian_kernels(sigmas[:, 0], 2 * min(radius, height - 1) + 1)
    kernel_x = gaussian_kernels(sigmas[:, 1], 2 * min(radius, width - 1) + 1)
    return separable_blur(images, kernel_y, kernel_x)


# --------------------------------------------------------------------------------------- blur


def gaussian_kernels(sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """(N,) standard deviations -> (N, kernel_size) normalised Gaussian weights centred on the middle tap.

    A sigma far below one pixel underflows every off-centre weight to 0: a one-hot kernel, no blur.
    """
    offsets = torch.arange(kernel_size, device=sigma.device, dtype=sigma.dtype) - kernel_size // 2
    weights = torch.exp(-(offsets**2) / (2 * sigma[:, None] ** 2))
    return weights / weights.sum(dim=1, keepdim=True)


#: From this many taps on, a blur on CUDA runs as matrix products (see :func:`separable_blur`).
MATMUL_BLUR_MIN_TAPS = 9


def separable_blur(
    images: torch.Tensor, kernel_y: torch.Tensor, kernel_x: torch.Tensor, method: str = "auto"
) -> torch.Tensor:
    """Convolve sample n of (N, C, H, W) with the outer product of its (N, ky) and (N, kx) kernels.

    Both kernel sides are odd; borders are reflected (``F.pad(mode="reflect")``). Two exact ways:

    * ``"conv"``: one depthwise convolution per axis over the whole batch: the N * C image planes become
      channels of a single image, each with its sample's kernel (groups = N * C);
    * ``"matmul"``: per axis, one batched matrix product with each sample's (side, side) blur matrix,
      the kernel laid along its diagonal and the reflected border taps folded in. It does side / k
      times the arithmetic of the convolution, but as a GEMM (tensor cores in float16, or TF32 when
      allowed), where a 23-tap depthwise convolution over thousands of planes is slow.

    ``"auto"`` takes the matrix products on CUDA for kernels of at least :data:`MATMUL_BLUR_MIN_TAPS`
    taps (SimCLR's blur: 23 at 224 px) and the convolution otherwise (CPUs, small kernels).
    """
    if method == "auto":
        large = max(kernel_y.shape[1], kernel_x.shape[1]) >= MATMUL_BLUR_MIN_TAPS
        method = "matmul" if images.is_cuda and large else "conv"
    if method == "matmul":
        return _blur_by_matmul(images, kernel_y, kernel_x)
    if method != "conv":
        raise ValueError(f"unknown blur method {method!r}")
    batch, channels, height, width = images.shape
    planes = images.reshape(1, batch * channels, height, width)
    radius_y, radius_x = kernel_y.shape[1] // 2, kernel_x.shape[1] // 2
    weight_y = kernel_y.repeat_interleave(channels, dim=0).view(batch * channels, 1, -1, 1)
    weight_x = kernel_x.repeat_interleave(channels, dim=0).view(batch * channels, 1, 1, -1)
    if radius_y > 0:
        planes = F.conv2d(
            F.pad(planes, (0, 0, radius_y, radius_y), mode="reflect"), weight_y, groups=batch * channels
        )
    if radius_x > 0:
        planes = F.conv2d(
            F.pad(planes, (radius_x, radius_x, 0, 0), mode="reflect"), weight_x, groups=batch * channels
        )
    return planes.view(batch, channels, height, width)


def blur_matrices(kernels: torch.Tensor, side: int) -> torch.Tensor:
    """(N, k) kernels -> (N, side, side) matrices M with ``(M @ x)[i] = sum_t kernel[t] x[reflect(i + t - k//2)]``.

    Reflection as ``F.pad(mode="reflect")`` (the edge pixel is not repeated: -1 -> 1, side -> side - 2);
    the kernel radius must be below ``side``.
    """
    batch, taps = kernels.shape
    radius = taps // 2
    if radius >= side:
        raise ValueError(f"a {taps}-tap kernel is too large to reflect at the border of a {side}-pixel side")
    sources = torch.arange(side, device=kernels.device)[:, None] + torch.arange(
        -radius, radius + 1, device=kernels.device
    )
    sources = sources.abs()
    sources = torch.where(sources > side - 1, 2 * (side - 1) - sources, sources)  # (side, k)
    matrices = torch.zeros(batch, side, side, dtype=kernels.dtype, device=kernels.device)
    return matrices.scatter_add_(
        2, sources.expand(batch, side, taps), kernels[:, None, :].expand(batch, side, taps)
    )


def _blur_by_matmul(images: torch.Tensor, kernel_y: torch.Tensor, kernel_x: torch.Tensor) -> torch.Tensor:
    _, _, height, width = images.shape
    out = images
    if kernel_y.shape[1] > 1:  # rows: M_y (H, H) times each (H, W) plane
        out = torch.matmul(blur_matrices(kernel_y, height)[:, None], out)
    if kernel_x.shape[1] > 1:  # columns: each (H, W) plane times M_x transposed (W, W)
        out = torch.matmul(out, blur_matrices(kernel_x, width).transpose(1, 2)[:, None])
    return out


def random_blur(
    images: torch.Tensor, applied: torch.Tensor, sigma: torch.Tensor, kernel_size: tuple[int, int]
) -> torch.Tensor:
    """Blur the samples with ``applied`` (N,) True by an isotropic Gaussian of their own ``sigma`` (N,)."""
    # The weights are computed in float32 (their normalising sum too), then used in the images' dtype.
    kernel_y = gaussian_kernels(sigma.float(), kernel_size[0]).to(images.dtype)
    kernel_x = gaussian_kernels(sigma.float(), kernel_size[1]).to(images.dtype)
    return select(applied, separable_blur(images, kernel_y, kernel_x), images)


# ------------------------------------------------------------------------------------ colour


def rotate_hue(images: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the HSV hue of (N, 3, H, W) RGB images by ``shift`` (N,) turns in [-1/2, 1] (the colour
    jitter draws |shift| <= 1/2); S and V are kept.

    With V = max, chroma c = max - min and the hue H in sextants [0, 6), the rotated hue H' gives each
    channel directly: ``V - c * clamp(min(k, 4 - k), 0, 1)`` with ``k = (n + H') mod 6`` and n = 5, 3,
    1 for R, G, B (the closed form of the HSV -> RGB conversion), so no HSV image is materialised.

    Written for few passes over the pixels: H' is one division (the numerator ``c H`` of each pixel's
    sextant over c, plus the shift) and is wrapped into [0, 6) on one channel by adding or subtracting
    a period, not by a float remainder (which costs as much as a dozen multiplications). Then k + 6
    would be needed for the channels where n + H' >= 6; instead the ramp, symmetric about k = 2 within
    each period, is evaluated at ``u = n + H'`` in [1, 11) as ``clamp(2 - |3 - |u - 5||, 0, 1)``, which
    equals it over both periods.
    """
    red, green, blue = images[:, 0:1], images[:, 1:2], images[:, 2:3]
    value = images.amax(dim=1, keepdim=True)
    chroma = value - images.amin(dim=1, keepdim=True)
    # c H by the first maximal channel (ties give the same hue either way): g - b for red, b - r + 2c for
    # green, r - g + 4c for blue. A gray pixel (c = 0) has 0 here, and any hue then gives it back.
    numerator = torch.where(
        red == value,
        green - blue,
        torch.where(green == value, (blue - red).add_(chroma, alpha=2), (red - green).add_(chroma, alpha=4)),
    )
    safe_chroma = chroma.clamp(min=torch.finfo(images.dtype).tiny)
    rotated = torch.addcdiv(6 * per_sample(shift), numerator, safe_chroma)  # H' in [-4, 11], (N, 1, H, W)
    rotated = torch.where(rotated < 0, rotated + 6, torch.where(rotated >= 6, rotated - 6, rotated))
    # u - 5 = H' + n - 5 for (R, G, B), made on the device: a tensor copied from the host would wait for
    # the GPU.
    channel_offsets = torch.arange(0, -6, -2, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    distance = (rotated + channel_offsets).abs_()  # |u - 5|, (N, 3, H, W)
    ramp = torch.rsub(distance.sub_(3).abs_(), 2).clamp_(0, 1)
    return torch.addcmul(value, chroma, ramp, value=-1)


def color_jitter(
    images: torch.Tensor, params: dict[str, torch.Tensor], active: tuple[bool, bool, bool, bool]
) -> torch.Tensor:
    """The reference colour jitter on (N, C, H, W) in [0, 1], C = 1 or 3, from its sampled ``params``.

    ``params``: ``applied`` (N,) bool, ``order`` (N, 4) permutations of the op indices (brightness 0,
    contrast 1, saturation 2, hue 3) and the (N,) factors. ``active`` says which of the four ops run at
    all (an op with amount 0, or saturation and hue on one channel, is skipped as in the reference).

    Each sample runs its ops in its own order. The three linear ops are one per-sample map
    ``clamp(a x + b gray(x) + c mean(gray(x)), 0, 1)``: brightness ``(f, 0, 0)``, saturation
    ``(f, 1 - f, 0)``, contrast ``(f, 0, 1 - f)``. The costly hue rotation runs once for the whole
    batch: each sample's three linear ops in its order are split at its hue's position p into the ops
    before it (slots 0..2 of a first pass, slot j runs when j < p) and after it (slots of a second pass,
    slot j runs when j >= p). A sample that runs no op in a slot keeps its pixels (to rounding).
    """
    brightness_on, contrast_on, saturation_on, hue_on = active
    applied, order = params["applied"], params["order"]
    dtype = images.dtype
    # Each sample's linear ops in its order (hue taken out, stable) and where its hue sat: (N, 3), (N,).
    is_hue = order == 3
    linear_order = order.gather(1, torch.argsort(is_hue.to(torch.uint8), dim=1, stable=True)[:, :3])
    hue_position = is_hue.to(torch.uint8).argmax(dim=1)
    # The factor of the op in each slot, and whether that op runs at all: (N, 3).
    factors = torch.stack([params["brightness"], params["contrast"], params["saturation"]], dim=1).to(dtype)
    slot_factor = factors.gather(1, linear_order)
    enabled = torch.zeros_like(linear_order, dtype=torch.bool)
    for index, on in enumerate((brightness_on, contrast_on, saturation_on)):
        if on:
            enabled |= linear_order == index
    slots = torch.arange(3, device=order.device)

    def coefficients(runs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(a, b, c) per sample and slot, (N, 3) each, for the slots where ``runs`` (N, 3) is True;
        (1, 0, 0), the identity, elsewhere."""
        runs = runs & enabled
        scale = torch.where(runs, slot_factor, torch.ones_like(slot_factor))
        blend = torch.where(runs, 1 - slot_factor, torch.zeros_like(slot_factor))
        gray_weight = torch.where(linear_order == 2, blend, torch.zeros_like(blend))
        mean_weight = torch.where(linear_order == 1, blend, torch.zeros_like(blend))
        return scale, gray_weight, mean_weight

    def linear_slots(out: torch.Tensor, runs: torch.Tensor) -> torch.Tensor:
        scale, gray_weight, mean_weight = coefficients(runs)
        for slot in range(3):
            # a x + (b gray(x) + c mean(gray(x))), with per-sample coefficients broadcast over the pixels:
            # the bracket has one channel, so the full-width work is one multiply-add and the clamp. A
            # sample with (1, 0, 0) passes through unchanged (the clamp only removes rounding overshoot
            # beyond [0, 1]), so no selection pass is needed.
            a = per_sample(scale[:, slot])
            if saturation_on:
                gray = luma(out)
                offset = gray * per_sample(gray_weight[:, slot])  # (N, 1, H, W)
                if contrast_on:
                    offset += per_sample(mean_weight[:, slot]) * gray.mean(dim=(2, 3), keepdim=True)
            elif contrast_on:
                # The mean of the gray image is the luma of the channel means: a reduction, no gray image.
                offset = per_sample(mean_weight[:, slot]) * mean_luma(out)  # (N, 1, 1, 1)
            else:
                offset = None
            linear = out * a if offset is None else torch.addcmul(offset, out, a)
            out = linear.clamp_(0, 1)
        return out

    if not hue_on:
        return linear_slots(images, applied[:, None].expand(-1, 3))
    before_hue = applied[:, None] & (slots[None, :] < hue_position[:, None])
    after_hue = applied[:, None] & (slots[None, :] >= hue_position[:, None])
    out = linear_slots(images, before_hue)
    # A zero shift gives the pixels back (to rounding); the HSV round trip can overshoot [0, 1] by
    # rounding error, so it is clamped as in the reference.
    shift = torch.where(applied, params["hue"].to(dtype), torch.zeros_like(factors[:, 0]))
    out = rotate_hue(out, shift).clamp_(0, 1)
    return linear_slots(out, after_hue)


def random_grayscale(images: torch.Tensor, applied: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W): the luma in every channel for the samples with ``applied`` (N,) True; C = 1 is kept."""
    if images.shape[1] == 1:
        return images
    return select(applied, luma(images).expand_as(images), images)


def random_solarize(images: torch.Tensor, applied: torch.Tensor, threshold: float) -> torch.Tensor:
    """Pixels at or above ``threshold`` become ``1 - x`` in the samples with ``applied`` (N,) True."""
    return torch.where(per_sample(applied) & (images >= threshold), 1 - images, images)


def random_flip(images: torch.Tensor, applied: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the samples of (N, C, H, W) with ``applied`` (N,) True."""
    return select(applied, images.flip(-1), images)
