"""Checking a PNG file's structure before libpng sees it, so that a damaged file is refused, not fatal.

libpng reports errors by ``longjmp``. torchvision's ``decode_png`` recovers from those raised while the
header is read (they become a ``RuntimeError``), but not from those raised while the rows are read:
the process dies with a segmentation fault and no message (a DataLoader worker dies with "worker exited
unexpectedly", naming no file). Those row-time errors are exactly the ones this module rules out:

* too little image data ("Not enough image data"), including a zlib stream that is still open when the
  image's IDAT chunks end (libpng reads on to finish it, finds another chunk type and fails);
* a corrupt zlib stream ("incorrect header check", "invalid distance too far back", ...);
* a damaged IDAT chunk (its CRC; libpng treats a CRC error in a critical chunk as fatal);
* a row whose filter type byte is not 0..4 ("bad adaptive filter value").

The check inflates the image data once, in pieces of :data:`PIECE` bytes that are counted and dropped,
so its memory stays bounded whatever the file claims (a zip bomb inflates into nothing held), and it
stops at the end of the zlib stream, or once the data is far longer than the header implies.
Inflating costs a fraction of decoding (which inflates too, then unfilters and converts every row),
and the image's size has been checked against the pixel limit before any of it runs.

What libpng only warns about is accepted, so that sound files it decodes are not refused: some extra
image data ("Too much image data"), a damaged ancillary chunk (it is dropped), a missing IEND chunk,
anything after the image data. A zlib error is always refused: libpng survives one only in the extra
data, depending on how far zlib had got.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Bits per sample allowed for each colour type, and the colour type's samples per pixel (PNG spec 11.2.2).
BIT_DEPTHS: dict[int, tuple[tuple[int, ...], int]] = {
    0: ((1, 2, 4, 8, 16), 1),  # greyscale
    2: ((8, 16), 3),  # truecolour
    3: ((1, 2, 4, 8), 1),  # indexed (palette)
    4: ((8, 16), 2),  # greyscale with alpha
    6: ((8, 16), 4),  # truecolour with alpha
}

#: The critical chunk types libpng knows; any other critical type (upper-case first letter) is fatal.
CRITICAL = frozenset({b"IHDR", b"PLTE", b"IDAT", b"IEND"})

#: Adam7's seven passes: (first column, first row, column step, row step) (PNG spec 8.2).
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))

#: Inflated bytes produced (and dropped) at a time.
PIECE = 1 << 20

#: The largest chunk length the PNG format allows (2^31 - 1).
MAX_CHUNK = 0x7FFFFFFF


class PngStructureError(ValueError):
    """The PNG data is damaged in a way libpng would fail on; the message says how."""


@dataclass(frozen=True)
class PngHeader:
    """The IHDR chunk's fields that decide the size of the image data."""

    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlaced: bool

    @property
    def bits_per_pixel(self) -> int:
        return self.bit_depth * BIT_DEPTHS[self.colour_type][1]

    def row_bytes(self, width: int) -> int:
        """Bytes of one scanline of ``width`` pixels, without its filter type byte."""
        return (width * self.bits_per_pixel + 7) // 8

    def passes(self) -> list[tuple[int, int]]:
        """``(rows, bytes per row including the filter byte)`` of each pass of the image data: one pass
        for a plain image, Adam7's seven reduced images for an interlaced one (empty passes left out)."""
        if not self.interlaced:
            return [(self.height, 1 + self.row_bytes(self.width))]
        passes = []
        for x0, y0, dx, dy in ADAM7:
            columns = -(-(self.width - x0) // dx) if self.width > x0 else 0
            rows = -(-(self.height - y0) // dy) if self.height > y0 else 0
            if columns and rows:  # a pass without pixels has no rows at all, not even filter bytes
                passes.append((rows, 1 + self.row_bytes(columns)))
        return passes


def read_header(data: bytes) -> PngHeader:
    """The IHDR fields of the PNG ``data``, checked; raises :class:`PngStructureError`."""
    if not data.startswith(SIGNATURE):
        raise PngStructureError("not a PNG file: its 8-byte signature is damaged")
    if len(data) < len(SIGNATURE) + 8 + 13 + 4 or data[12:16] != b"IHDR":
        raise PngStructureError("the PNG file does not start with an IHDR chunk (cut short or damaged)")
    length, _ = struct.unpack_from(">I4s", data, 8)
    if length != 13:
        raise PngStructureError(f"the PNG file's IHDR chunk has length {length}, not 13")
    _check_crc(data, 8, length)
    width, height, bit_depth, colour_type, compression, filtering, interlace = struct.unpack_from(
        ">IIBBBBB", data, 16
    )
    if not (0 < width <= MAX_CHUNK and 0 < height <= MAX_CHUNK):
        raise PngStructureError(f"the PNG header gives a size of {width} x {height} pixels")
    if colour_type not in BIT_DEPTHS or bit_depth not in BIT_DEPTHS[colour_type][0]:
        raise PngStructureError(f"the PNG header gives colour type {colour_type} with bit depth {bit_depth}")
    if compression != 0 or filtering != 0 or interlace not in (0, 1):
        raise PngStructureError(
            f"the PNG header gives compression {compression}, filter method {filtering}, interlace "
            f"{interlace} (only 0, 0, and 0 or 1 exist)"
        )
    return PngHeader(width, height, bit_depth, colour_type, interlace == 1)


def check_image_data(data: bytes, header: PngHeader) -> None:
    """Check the chunks of the PNG ``data`` up to the end of its image data, and that data itself.

    Raises :class:`PngStructureError` for anything libpng would fail on while reading rows.
    """
    idat = _image_data_chunks(data, header)
    passes = header.passes()
    expected = sum(rows * stride for rows, stride in passes)
    # libpng inflates the whole zlib stream, extra data included (it only warns about that), and fails
    # if the stream is still open when the IDAT chunks end; so the stream is followed to its end too,
    # but a file whose extra data exceeds this (a bomb hidden after the image) is refused instead.
    allowed = 2 * expected + PIECE
    inflater = zlib.decompressobj()
    produced = 0
    try:
        for chunk in idat:
            pending = chunk
            while pending and produced <= allowed and not inflater.eof:
                out = inflater.decompress(pending, min(PIECE, allowed + 1 - produced))
                pending = inflater.unconsumed_tail
                _check_filter_bytes(out, produced, passes)
                produced += len(out)
            if produced > allowed or inflater.eof:
                break
    except zlib.error as error:
        # Fatal to libpng while it reads rows, and whether it still is after the last row depends on
        # how far zlib had got; refused either way.
        raise PngStructureError(f"the PNG image data is corrupt ({error})") from None
    if produced < expected:
        raise PngStructureError(
            f"the PNG image data is too short: {produced:,} of the {expected:,} bytes its "
            f"{header.width} x {header.height} header implies (cut short or damaged)"
        )
    if produced > allowed:
        raise PngStructureError(
            f"the PNG image data is far longer than its {header.width} x {header.height} header implies "
            f"(over {allowed:,} bytes instead of {expected:,})"
        )
    if not inflater.eof:
        raise PngStructureError("the PNG image data's zlib stream does not end with the image data")


def _image_data_chunks(data: bytes, header: PngHeader) -> list[memoryview]:
    """The payloads of the first run of IDAT chunks, after checking every chunk up to its end: lengths
    inside the file, critical chunks' CRCs, no unknown critical chunk, a palette where one is needed."""
    view = memoryview(data)
    position = len(SIGNATURE) + 12 + 13  # past IHDR, checked by read_header
    chunks: list[memoryview] = []
    palette = False
    while True:
        if position + 8 > len(data):
            if chunks:
                return chunks  # libpng reads no chunk header past the data it needs
            raise PngStructureError("the PNG file ends before its image data (cut short)")
        length, kind = struct.unpack_from(">I4s", data, position)
        if chunks and kind != b"IDAT":
            return chunks
        if length > MAX_CHUNK or not kind.isalpha():
            raise PngStructureError(f"the PNG file has a damaged chunk header at byte {position}")
        if position + 12 + length > len(data):
            raise PngStructureError(f"the PNG file's {kind.decode()} chunk is cut short")
        critical = kind[:1].isupper()
        if critical and kind not in CRITICAL:
            raise PngStructureError(f"the PNG file has an unknown critical chunk {kind.decode()!r}")
        if critical:
            _check_crc(data, position, length)
        if kind == b"IHDR":
            raise PngStructureError("the PNG file has a second IHDR chunk")
        if kind == b"IEND":
            raise PngStructureError("the PNG file has no image data (IEND before any IDAT chunk)")
        palette |= kind == b"PLTE"
        if kind == b"IDAT":
            if header.colour_type == 3 and not palette:
                raise PngStructureError(
                    "the PNG file is indexed-colour but has no palette before its image data"
                )
            chunks.append(view[position + 8 : position + 8 + length])
        position += 12 + length


def _check_crc(data: bytes, position: int, length: int) -> None:
    """The CRC of the chunk at ``position`` (over its type and payload) must match the stored one."""
    stored = struct.unpack_from(">I", data, position + 8 + length)[0]
    if zlib.crc32(data[position + 4 : position + 8 + length]) != stored:
        kind = data[position + 4 : position + 8].decode("ascii", "replace")
        raise PngStructureError(f"the PNG file's {kind} chunk is damaged (its CRC does not match)")


def _check_filter_bytes(out: bytes, offset: int, passes: list[tuple[int, int]]) -> None:
    """The filter type bytes (0..4) of the scanlines that start in ``out``, the inflated bytes from
    ``offset`` on; each pass's rows follow the previous pass's."""
    start = 0
    end = offset + len(out)
    for rows, stride in passes:
        size = rows * stride
        if start < end and start + size > offset:
            first = max(0, -(-(offset - start) // stride))
            last = min(rows, -(-(end - start) // stride))
            if first < last:
                filters = out[
                    start + first * stride - offset : start + (last - 1) * stride - offset + 1 : stride
                ]
                if max(filters) > 4:
                    row = first + next(i for i, value in enumerate(filters) if value > 4)
                    raise PngStructureError(
                        f"the PNG image data is corrupt (row {row} has filter type {filters[row - first]})"
                    )
        start += size
