"""Image files written byte by byte, sound or with one precise fault, for the image-folder tests.

PNGs are assembled from their chunks (signature, IHDR, IDAT, IEND with their CRCs), so a test can give
any header and any image data; JPEGs are a real encoded image with its frame header rewritten.
"""

from __future__ import annotations

import struct
import zlib

import torch
from torchvision.io import encode_jpeg

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    """One PNG chunk: length, type, data and the CRC of type and data (or ``crc`` instead)."""
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def ihdr(
    width: int, height: int, *, bit_depth: int = 8, colour_type: int = 2, interlaced: bool = False
) -> bytes:
    return chunk(
        b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, int(interlaced))
    )


def png(
    width: int,
    height: int,
    image_data: bytes,
    *,
    bit_depth: int = 8,
    colour_type: int = 2,
    interlaced: bool = False,
    before_data: bytes = b"",
) -> bytes:
    """A PNG whose one IDAT chunk holds ``image_data`` (already zlib-compressed), after ``before_data``
    (more chunks, e.g. a PLTE)."""
    header = ihdr(width, height, bit_depth=bit_depth, colour_type=colour_type, interlaced=interlaced)
    return PNG_SIGNATURE + header + before_data + chunk(b"IDAT", image_data) + chunk(b"IEND", b"")


def black_rgb_rows(width: int, height: int) -> bytes:
    """The uncompressed image data of a black 8-bit RGB image: per row a filter byte 0, then 3 x width."""
    return bytes(height * (1 + 3 * width))


def png_with_too_little_image_data() -> bytes:
    """The file that crashed libpng (issue 19): 28 x 28 RGB, whose image data inflates to 10 bytes
    instead of 28 x (1 + 28 x 3) = 2,380."""
    return png(28, 28, zlib.compress(b"\0" * 10))


def png_claiming(width: int, height: int) -> bytes:
    """A grey PNG whose header claims ``width`` x ``height`` pixels; its image data is one black row."""
    return png(width, height, zlib.compress(bytes(1 + width)), colour_type=0)


def small_jpeg() -> bytes:
    """A real 28 x 28 colour JPEG (a gradient), as torchvision encodes it."""
    image = (torch.arange(3 * 28 * 28) % 251).to(torch.uint8).reshape(3, 28, 28)
    return encode_jpeg(image, quality=90).numpy().tobytes()


def jpeg_claiming(width: int, height: int) -> bytes:
    """:func:`small_jpeg` with its frame header (SOF0) rewritten to claim ``width`` x ``height``; about
    1 KB, and libjpeg would allocate the full claimed image before finding its data far too short."""
    data = bytearray(small_jpeg())
    frame = data.index(b"\xff\xc0")  # marker (2 bytes), length (2), precision (1), height (2), width (2)
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)
