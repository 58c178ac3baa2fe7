"""image_folder's checks before decoding: damaged PNGs that would crash libpng, and images over the pixel limit.

Damaged PNGs and images claiming billions of pixels are given to the decoder only in a process of its
own: should the checks regress, libpng would end this process, and libjpeg fill gigabytes (see also
tests/reliability/test_bad_data.py, which runs such files through ``contrastive run``). Sound files are
decoded here, to show that the checks refuse nothing the decoder reads.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import resource
import struct
import subprocess
import sys
import zlib

import pytest

from contrastive_core import RecipeError
from contrastive_plugins.datasets.errors import BadImageError, ImageTooLargeError
from contrastive_plugins.datasets.image_folder import decode_square
from contrastive_plugins.datasets.image_headers import DEFAULT_MAX_IMAGE_PIXELS, check_encoded_image

from .crafted_images import (
    PNG_SIGNATURE,
    black_rgb_rows,
    chunk,
    ihdr,
    jpeg_claiming,
    png,
    png_claiming,
    png_with_too_little_image_data,
    small_jpeg,
)
from .reference import FIXTURES

pytestmark = pytest.mark.filterwarnings(
    "ignore:The image decoding and encoding capabilities of TorchVision are deprecated:DeprecationWarning"
)

#: Samples per pixel and allowed bit depths of each PNG colour type (the PNG specification, 11.2.2).
COLOUR_TYPES = {
    0: (1, (1, 2, 4, 8, 16)),
    2: (3, (8, 16)),
    3: (1, (1, 2, 4, 8)),
    4: (2, (8, 16)),
    6: (4, (8, 16)),
}


def adam7_pass(x: int, y: int) -> int:
    """The Adam7 pass (1..7) of pixel (x, y): the specification's 8 x 8 pattern, looked up directly."""
    pattern = [
        [1, 6, 4, 6, 2, 6, 4, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
        [5, 6, 5, 6, 5, 6, 5, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
        [3, 6, 4, 6, 3, 6, 4, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
        [5, 6, 5, 6, 5, 6, 5, 6],
        [7, 7, 7, 7, 7, 7, 7, 7],
    ]
    return pattern[y % 8][x % 8]


def image_data_size(width: int, height: int, bits_per_pixel: int, interlaced: bool) -> int:
    """Bytes of uncompressed PNG image data, counted pixel by pixel (independently of the code under
    test): each pass's reduced image has rows of a filter byte plus its pixels' bits, rounded up."""
    if not interlaced:
        return height * (1 + (width * bits_per_pixel + 7) // 8)
    total = 0
    for number in range(1, 8):
        rows = [[x for x in range(width) if adam7_pass(x, y) == number] for y in range(height)]
        total += sum(1 + (len(row) * bits_per_pixel + 7) // 8 for row in rows if row)
    return total


def sound_png(
    width: int, height: int, colour_type: int, bit_depth: int, interlaced: bool, *, less: int = 0
) -> bytes:
    samples, _ = COLOUR_TYPES[colour_type]
    size = image_data_size(width, height, samples * bit_depth, interlaced) - less
    palette = chunk(b"PLTE", bytes(range(48))) if colour_type == 3 else b""
    return png(
        width,
        height,
        zlib.compress(bytes(size)),
        bit_depth=bit_depth,
        colour_type=colour_type,
        interlaced=interlaced,
        before_data=palette,
    )


LAYOUTS = [
    (width, height, colour_type, bit_depth, interlaced)
    for (width, height), (colour_type, (_, depths)), interlaced in itertools.product(
        [(1, 1), (3, 5), (9, 17), (33, 31)], COLOUR_TYPES.items(), (False, True)
    )
    for bit_depth in depths
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: "x".join(str(int(value)) for value in layout))
def test_every_sound_png_layout_is_decoded_and_one_byte_less_is_refused(layout, tmp_path):
    path = tmp_path / "image.png"
    path.write_bytes(sound_png(*layout))
    assert decode_square(path, 4).shape == (3, 4, 4)
    short = sound_png(*layout, less=1)
    with pytest.raises(BadImageError, match="the PNG image data is too short"):
        check_encoded_image(path, short, DEFAULT_MAX_IMAGE_PIXELS)


RGB_28 = black_rgb_rows(28, 28)
IMAGE_DATA = zlib.compress(RGB_28)
_unfinished = zlib.compressobj()
UNFINISHED_STREAM = _unfinished.compress(RGB_28) + _unfinished.flush(zlib.Z_SYNC_FLUSH)
_bomb = zlib.compressobj()
#: The image data followed by 64 MiB of zeros in the same zlib stream (about 64 KB compressed).
BOMB_AFTER_THE_IMAGE = _bomb.compress(RGB_28) + _bomb.compress(bytes(64 * 2**20)) + _bomb.flush()
HEADER = PNG_SIGNATURE + ihdr(28, 28)
IEND = chunk(b"IEND", b"")

#: Each damage that made libpng end the process (or that it fails on while reading rows), and the
#: fragment of the reason the check gives.
DAMAGED_PNGS = {
    "too-little-image-data": (png_with_too_little_image_data(), "too short: 10 of the 2,380 bytes"),
    "interlaced-one-byte-short": (sound_png(9, 17, 2, 8, True, less=1), "too short"),
    "corrupt-zlib-stream": (HEADER + chunk(b"IDAT", b"not zlib at all") + IEND, "image data is corrupt"),
    "wrong-zlib-checksum": (
        HEADER + chunk(b"IDAT", IMAGE_DATA[:-4] + bytes(4)) + IEND,
        "incorrect data check",
    ),
    "unfinished-zlib-stream": (HEADER + chunk(b"IDAT", UNFINISHED_STREAM) + IEND, "does not end"),
    "idat-crc": (HEADER + chunk(b"IDAT", IMAGE_DATA, crc=1) + IEND, "IDAT chunk is damaged"),
    "bad-filter-byte": (png(28, 28, zlib.compress(b"\x05" + RGB_28[1:])), "row 0 has filter type 5"),
    "chunk-between-image-data": (
        HEADER
        + chunk(b"IDAT", IMAGE_DATA[:10])
        + chunk(b"tEXt", b"a\0b")
        + chunk(b"IDAT", IMAGE_DATA[10:])
        + IEND,
        "too short",
    ),
    "cut-inside-image-data": ((HEADER + chunk(b"IDAT", IMAGE_DATA))[:-10], "IDAT chunk is cut short"),
    "bomb-after-the-image": (HEADER + chunk(b"IDAT", BOMB_AFTER_THE_IMAGE) + IEND, "far longer than"),
    "no-palette": (png(28, 28, zlib.compress(bytes(28 * 29)), colour_type=3), "has no palette"),
    "unknown-critical-chunk": (HEADER + chunk(b"ZZZZ", b"") + chunk(b"IDAT", IMAGE_DATA) + IEND, "'ZZZZ'"),
    "no-image-data": (HEADER + IEND, "no image data"),
    "bit-depth-7": (
        PNG_SIGNATURE + ihdr(28, 28, bit_depth=7) + chunk(b"IDAT", IMAGE_DATA) + IEND,
        "bit depth 7",
    ),
    "zero-width": (PNG_SIGNATURE + ihdr(0, 28) + chunk(b"IDAT", IMAGE_DATA) + IEND, "0 x 28"),
    "ihdr-crc": (PNG_SIGNATURE + chunk(b"IHDR", ihdr(28, 28)[8:21], crc=7) + IEND, "IHDR chunk is damaged"),
}


@pytest.mark.parametrize("name", DAMAGED_PNGS)
def test_a_damaged_png_is_refused_before_decoding_naming_the_file_and_the_damage(name, tmp_path):
    data, reason = DAMAGED_PNGS[name]
    path = tmp_path / f"{name}.png"
    with pytest.raises(BadImageError) as caught:
        check_encoded_image(path, data, DEFAULT_MAX_IMAGE_PIXELS)
    assert str(path) in str(caught.value) and reason in caught.value.reason
    assert 'on_bad_image = "skip"' in str(caught.value)


DECODE_EACH = """
import json, sys, warnings
from pathlib import Path
from contrastive_plugins.datasets.errors import BadImageError
from contrastive_plugins.datasets.image_folder import decode_square
warnings.simplefilter("ignore")
reasons = {}
for name in sys.argv[1:]:
    try:
        decode_square(Path(name), 8)
        reasons[name] = None
    except BadImageError as error:
        reasons[name] = error.reason
print(json.dumps(reasons))
"""


def test_decoding_refuses_each_damaged_or_huge_image_in_a_process_of_its_own(tmp_path):
    files = {tmp_path / f"{name}.png": reason for name, (data, reason) in DAMAGED_PNGS.items()}
    for path, (data, _) in zip(files, DAMAGED_PNGS.values(), strict=True):
        path.write_bytes(data)
    (tmp_path / "huge.jpg").write_bytes(jpeg_claiming(65000, 65000))
    (tmp_path / "huge.png").write_bytes(png_claiming(25000, 25000))
    files[tmp_path / "huge.jpg"] = "65000 x 65000 = 4,225,000,000 pixels, more than max_image_pixels"
    files[tmp_path / "huge.png"] = "25000 x 25000 = 625,000,000 pixels"
    done = subprocess.run(
        [sys.executable, "-c", DECODE_EACH, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_DATA, (4 * 2**30, 4 * 2**30)),
    )
    assert done.returncode == 0, f"the decoding process ended with {done.returncode}: {done.stderr[-2000:]}"
    reasons = json.loads(done.stdout)
    for path, fragment in files.items():
        assert fragment in (reasons[str(path)] or "decoded"), path.name


#: Damage libpng only warns about: these files decode, so the check must let them through.
TOLERATED_PNGS = {
    "extra-image-data": png(28, 28, zlib.compress(RGB_28 + bytes(500))),
    "no-iend": HEADER + chunk(b"IDAT", IMAGE_DATA),
    "junk-after-the-image-data": HEADER + chunk(b"IDAT", IMAGE_DATA) + b"\x00\x00\x00\x05junk",
    "image-data-in-two-chunks": HEADER
    + chunk(b"IDAT", IMAGE_DATA[:10])
    + chunk(b"IDAT", IMAGE_DATA[10:])
    + IEND,
    "damaged-text-chunk": HEADER + chunk(b"tEXt", b"a\0b", crc=3) + chunk(b"IDAT", IMAGE_DATA) + IEND,
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("name", TOLERATED_PNGS)
def test_what_libpng_only_warns_about_is_let_through_and_decodes(name, tmp_path):
    path = tmp_path / f"{name}.png"
    path.write_bytes(TOLERATED_PNGS[name])
    assert decode_square(path, 28).eq(0).all()


def test_the_fixture_images_pass_the_checks(tmp_path):
    for path in sorted((FIXTURES / "image_folder").rglob("*.*")):
        check_encoded_image(path, path.read_bytes(), DEFAULT_MAX_IMAGE_PIXELS)


def test_a_jpeg_claiming_65000_x_65000_pixels_is_refused_from_its_header(tmp_path):
    path = tmp_path / "huge.jpg"
    with pytest.raises(ImageTooLargeError) as caught:
        check_encoded_image(path, jpeg_claiming(65000, 65000), DEFAULT_MAX_IMAGE_PIXELS)
    assert str(caught.value) == (
        f"{path}: too large to decode (65000 x 65000 = 4,225,000,000 pixels, more than max_image_pixels = "
        "178,956,970). If such images are expected, raise max_image_pixels in the [data] section; or set "
        'on_bad_image = "skip" to leave them out.'
    )


def test_a_png_claiming_25000_x_25000_pixels_is_refused_before_its_data_is_read(tmp_path):
    with pytest.raises(ImageTooLargeError, match="25000 x 25000 = 625,000,000 pixels"):
        check_encoded_image(tmp_path / "huge.png", png_claiming(25000, 25000), DEFAULT_MAX_IMAGE_PIXELS)


def jpeg_with_segment(marker: int, payload: bytes) -> bytes:
    """:func:`small_jpeg` with a segment inserted right after its SOI marker."""
    data = small_jpeg()
    return data[:2] + bytes([0xFF, marker]) + struct.pack(">H", 2 + len(payload)) + payload + data[2:]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (jpeg_claiming(28, 0), "gives a size of 28 x 0 pixels"),
        (small_jpeg()[:2] + small_jpeg()[small_jpeg().index(b"\xff\xc4") :], "no frame header (SOF)"),
        (small_jpeg()[:100], "ends before its image data"),
        (b"\xff\xd8\xff\xd9", "ends (EOI marker) before any image data"),
    ],
    ids=["height-0", "no-frame-header", "cut-in-the-header", "no-image-data"],
)
def test_a_jpeg_header_the_decoder_would_fail_on_is_named(data, reason, tmp_path):
    path = tmp_path / "bad.jpg"
    path.write_bytes(data)
    with pytest.raises(BadImageError, match=re.escape(reason)):
        decode_square(path, 8)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_jpeg_segments_and_stray_bytes_before_the_frame_are_skipped_as_libjpeg_skips_them(tmp_path):
    path = tmp_path / "comment.jpg"
    data = jpeg_with_segment(0xFE, b"a comment \xff\xc0 with a marker-like pair")
    path.write_bytes(data[:2] + b"\xff\xff" + data[2:])  # fill bytes before the marker
    assert decode_square(path, 28).shape == (3, 28, 28)
    check_encoded_image(path, data, 28 * 28)  # the comment's look-alike SOF is not the frame header


def pillow_image(format: str, frames: int = 1, **options) -> bytes:
    image_module = pytest.importorskip("PIL.Image")  # Pillow comes with torchvision
    images = [image_module.new("RGB", (37, 23), (40 * index, 0, 0)) for index in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, format, save_all=frames > 1, append_images=images[1:], **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "options",
    [{"lossless": True}, {"quality": 80}, {"quality": 80, "exif": b"Exif\0\0"}],
    ids=["vp8l", "vp8", "vp8x"],
)
def test_webp_sizes_are_read_from_each_kind_of_header(options, tmp_path):
    path = tmp_path / "image.webp"
    path.write_bytes(pillow_image("WEBP", **options))
    assert decode_square(path, 8).shape == (3, 8, 8)
    check_encoded_image(path, path.read_bytes(), 37 * 23)
    with pytest.raises(ImageTooLargeError, match="37 x 23 = 851 pixels, more than max_image_pixels = 850"):
        check_encoded_image(path, path.read_bytes(), 850)


def test_every_frame_of_an_animated_gif_counts_towards_the_limit(tmp_path):
    path = tmp_path / "animated.gif"
    path.write_bytes(pillow_image("GIF", frames=5, duration=50))
    assert decode_square(path, 8).shape == (3, 8, 8)  # the first frame; the decoder returns all five
    check_encoded_image(path, path.read_bytes(), 5 * 37 * 23)
    with pytest.raises(ImageTooLargeError, match="5 frames of 37 x 23 = 4,255 pixels"):
        check_encoded_image(path, path.read_bytes(), 5 * 37 * 23 - 1)
    claimed = bytearray(path.read_bytes())
    claimed[6:10] = struct.pack("<HH", 20000, 20000)  # the logical screen every frame is decoded into
    with pytest.raises(ImageTooLargeError, match="5 frames of 20000 x 20000"):
        check_encoded_image(path, bytes(claimed), DEFAULT_MAX_IMAGE_PIXELS)


def test_max_image_pixels_is_a_dataset_param_named_in_the_error(make_dataset, tmp_path):
    root = FIXTURES / "image_folder"
    split = make_dataset(type="image_folder", root=str(root), image_size=8, max_image_pixels=1000).split(
        "train"
    )
    with pytest.raises(ImageTooLargeError, match=r"00000\.png: too large to decode \(32 x 32 = 1,024 pixels"):
        split[0]
    skipping = make_dataset(
        type="image_folder", root=str(root), image_size=8, max_image_pixels=1024, on_bad_image="skip"
    ).split("train")
    with pytest.warns(
        UserWarning, match=r"skipping .*00057_wide\.png: 48 x 32 = 1,536 pixels, more than max_image"
    ):
        images = [skipping[index][0] for index in range(len(skipping))]
    assert len(images) == len(skipping) and [path.name for path in skipping.bad_files] == ["00057_wide.png"]
    with pytest.raises(RecipeError, match="max_image_pixels"):
        make_dataset(type="image_folder", root=str(root), max_image_pixels=0)
