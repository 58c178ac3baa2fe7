"""A plain reader of a W&B offline run's ``run-<id>.wandb`` file, written for the tests from the file's
layout: a 7-byte header (``:W&B``, magic 0xBEE1 little-endian, version 0), then 32 KiB blocks of chunks,
each a 7-byte chunk header (CRC-32C uint32, length uint16, type uint8: 1 full, 2 first, 3 middle,
4 last) and its bytes; a block's tail shorter than a chunk header is zero padding. A record's chunks
joined are a serialised ``wandb_internal_pb2.Record``."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

BLOCK = 32 * 1024
HEADER = struct.Struct("<4sHB")
CHUNK = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[Any]:
    """Every Record of the file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    ident, magic, version = HEADER.unpack_from(data, 0)
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0), "not a W&B transaction log"
    position, pending, found = HEADER.size, b"", []
    while position + CHUNK.size <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < CHUNK.size:  # padding up to the next block
            position += left_in_block
            continue
        _, length, kind = CHUNK.unpack_from(data, position)
        chunk = data[position + CHUNK.size : position + CHUNK.size + length]
        position += CHUNK.size + length
        if kind == 0 and length == 0:  # zero fill at the end of the file
            break
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
            pending = b""
    return found


def history(path: Path) -> list[dict[str, Any]]:
    """The logged rows: {key: value} per ``wandb.log`` call, with ``_step``."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            row = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }
            rows.append(row)
    return rows


def config(path: Path) -> dict[str, Any]:
    """The run's config (hyperparameters) as last updated."""
    values: dict[str, Any] = {}
    for record in records(path):
        if record.WhichOneof("record_type") == "config":
            for item in record.config.update:
                values[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return values
