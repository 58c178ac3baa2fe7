"""Checking an image file's header (and, for PNG, its data) before it is decoded.

Decoding trusts the file: it allocates what the header claims (a 1 KB JPEG can claim 65,000 x 65,000
pixels, 12.7 GB once decoded; a 400 KB PNG of one colour 25,000 x 25,000) and libpng kills the process
on damaged image data (see :mod:`.png_structure`). :func:`check_encoded_image` reads the header of each
format ``decode_image`` accepts, refuses an image of more than ``max_pixels`` pixels before anything is
allocated, and refuses a file whose structure the decoder would fail on. Both raise
:class:`~.errors.BadImageError` naming the file, which ``on_bad_image`` then skips or reports like any
other unreadable file.

The format is told by the file's first bytes, as ``decode_image`` tells it, not by the suffix (a PNG
named ``.jpg`` is decoded as a PNG). Bytes that are none of the four formats are left to the decoder,
which refuses them with its own message.
"""

from __future__ import annotations

import struct
from pathlib import Path

from .errors import BadImageError, ImageTooLargeError
from .png_structure import SIGNATURE as PNG_SIGNATURE
from .png_structure import PngStructureError, check_image_data, read_header

#: Default of ``max_image_pixels``: Pillow's decompression-bomb limit (2 x 1 GiB / 4 / 3 pixels), so an
#: image any Pillow-based pipeline opens opens here too: 13,377 x 13,377 pixels, 537 MB as uint8 RGB.
DEFAULT_MAX_IMAGE_PIXELS = 178_956_970

#: JPEG start-of-frame markers (every coding process); 0xC4, 0xC8 and 0xCC in that range are not frames.
JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageHeaderError(ValueError):
    """An image header the decoder would fail on; the message says how."""


def check_encoded_image(path: Path, data: bytes, max_pixels: int) -> None:
    """Refuse the encoded image ``data`` of the file ``path`` before it is decoded.

    Raises :class:`ImageTooLargeError` when it decodes to more than ``max_pixels`` pixels (all frames
    of an animated GIF count: the decoder returns every one), :class:`BadImageError` when its header or
    (PNG) image data is damaged. Returns quietly for a sound file and for bytes of no known format.
    """
    try:
        if data.startswith(PNG_SIGNATURE[:4]):
            header = read_header(data)
            _check_pixels(path, f"{header.width} x {header.height}", header.width * header.height, max_pixels)
            check_image_data(data, header)
        elif data.startswith(b"\xff\xd8\xff"):
            width, height = jpeg_size(data)
            _check_pixels(path, f"{width} x {height}", width * height, max_pixels)
        elif data.startswith(b"GIF8"):
            width, height, frames, frame_pixels = gif_size(data)
            size = f"{width} x {height}" if frames == 1 else f"{frames} frames of {width} x {height}"
            # giflib holds every frame's own rectangle as well as the output it is drawn into.
            _check_pixels(path, size, max(frames * width * height, frame_pixels), max_pixels)
        elif data.startswith(b"RIFF") and data[8:12] == b"WEBP":
            width, height = webp_size(data)
            _check_pixels(path, f"{width} x {height}", width * height, max_pixels)
    except (ImageHeaderError, PngStructureError) as error:
        raise BadImageError(path, str(error)) from None


def _check_pixels(path: Path, size: str, pixels: int, max_pixels: int) -> None:
    if pixels > max_pixels:
        raise ImageTooLargeError(path, size, pixels, max_pixels)


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a JPEG from its frame header, which must come before the first scan.

    Markers are found as libjpeg finds them: bytes that are not a marker are skipped (libjpeg warns
    "extraneous bytes"), as are fill bytes 0xFF and the markers without a length (RSTn, TEM).
    """
    size: tuple[int, int] | None = None
    position = 2
    while True:
        position = data.find(b"\xff", position)
        while 0 <= position < len(data) and data[position] == 0xFF:
            position += 1
        if not 0 <= position < len(data):
            raise ImageHeaderError("the JPEG file ends before its image data (cut short)")
        marker = data[position]
        position += 1
        if marker == 0x00 or marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue  # a stuffed 0xFF 0x00 in stray bytes, or a marker without a length
        if marker == 0xD8:
            raise ImageHeaderError("the JPEG file has a second start-of-image marker before its image data")
        if marker == 0xD9:
            raise ImageHeaderError("the JPEG file ends (EOI marker) before any image data")
        if position + 2 > len(data):
            raise ImageHeaderError("the JPEG file ends before its image data (cut short)")
        (length,) = struct.unpack_from(">H", data, position)
        if length < 2:
            raise ImageHeaderError(f"the JPEG file has a damaged segment length at byte {position}")
        if marker in JPEG_FRAMES:
            if length < 8 or position + 7 > len(data):
                raise ImageHeaderError("the JPEG file's frame header is cut short")
            height, width = struct.unpack_from(">HH", data, position + 3)
            if not (width and height):
                # Height 0 means "given later, by a DNL marker", which libjpeg does not support.
                raise ImageHeaderError(f"the JPEG frame header gives a size of {width} x {height} pixels")
            size = (width, height)
        if marker == 0xDA:
            if size is None:
                raise ImageHeaderError("the JPEG file has no frame header (SOF) before its image data")
            return size
        position += length


def gif_size(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, frames, pixels of all frames' own rectangles) of a GIF.

    Blocks are walked to count the frames; at damaged or missing data the count stops, and the
    decoder reports the damage itself (giflib checks its input, unlike libpng's callers).
    """
    if len(data) < 13:
        raise ImageHeaderError("the GIF file ends inside its header (cut short)")
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    if not (width and height):
        raise ImageHeaderError(f"the GIF header gives a size of {width} x {height} pixels")
    position = 13 + _colour_table(flags)
    frames = frame_pixels = 0
    while position < len(data):
        block = data[position]
        if block == 0x2C and position + 10 <= len(data):  # an image descriptor: one frame
            frame_width, frame_height, frame_flags = struct.unpack_from("<HHB", data, position + 5)
            frames += 1
            frame_pixels += frame_width * frame_height
            position = _skip_sub_blocks(data, position + 10 + _colour_table(frame_flags) + 1)
        elif block == 0x21:  # an extension: its label, then sub-blocks
            position = _skip_sub_blocks(data, position + 2)
        else:  # the trailer 0x3B, or damage the decoder reports
            break
    return width, height, max(frames, 1), frame_pixels


def _colour_table(flags: int) -> int:
    """Bytes of the colour table that a GIF screen or image descriptor with ``flags`` announces."""
    return 3 << ((flags & 0x07) + 1) if flags & 0x80 else 0


def _skip_sub_blocks(data: bytes, position: int) -> int:
    """The position after the sub-blocks (a length byte, then that many bytes; 0 ends) at ``position``."""
    while position < len(data):
        length = data[position]
        position += 1 + length
        if length == 0:
            break
    return position


def webp_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a WebP from its first chunk: VP8X (extended: the canvas), VP8 (lossy) or VP8L
    (lossless); libwebp checks the rest itself."""
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise ImageHeaderError("the WebP file's header is damaged or cut short")
