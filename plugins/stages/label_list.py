"""A file naming the labelled training examples of a semi-supervised run (the paper's fixed subsets).

Chen et al. (2020, Sec. 6) fine-tune on published 1% and 10% subsets of ImageNet's training labels
(google-research/simclr ``imagenet_subsets/1percent.txt`` and ``10percent.txt``: one training file
name per line, e.g. ``n01440764_10026.JPEG``). A label list is such a text file: one example per line,
blank lines and lines starting with ``#`` ignored. For a split read from files (an image folder) a line
is a file's name, matched against the split's file names (the name alone, or its path below the split's
folder); for an in-memory split a line is an example's index.
"""

from __future__ import annotations

from pathlib import Path

import torch

from contrastive_core.errors import ContrastiveError


class LabelListError(ContrastiveError):
    """A label list that cannot be read, or names examples the training split does not have."""


def read_label_list(path: Path) -> list[str]:
    """The non-blank, non-comment lines of ``path``, stripped; LabelListError naming the file if it cannot
    be read or names nothing."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LabelListError(f"cannot read the label list {path}: {error}") from None
    entries = [line.strip() for line in text.splitlines()]
    entries = [entry for entry in entries if entry and not entry.startswith("#")]
    if not entries:
        raise LabelListError(f"the label list {path} names no example (every line is blank or a comment)")
    return entries


def label_list_indices(
    path: Path, files: list[Path] | None, split_root: Path | None, count: int
) -> torch.Tensor:
    """Indices int64 (M,) into the training split of the examples the list at ``path`` names, in the
    list's order, each once.

    ``files``: the split's files (None for an in-memory split of ``count`` examples, whose lines are
    indices); ``split_root``: the split's folder, for lines given as relative paths.
    """
    entries = list(dict.fromkeys(read_label_list(path)))  # a repeated line labels its example once
    if files is None:
        return _indices_from_numbers(path, entries, count)
    by_name: dict[str, list[int]] = {}
    for index, file in enumerate(files):
        by_name.setdefault(file.name, []).append(index)
        if split_root is not None:
            by_name.setdefault(file.relative_to(split_root).as_posix(), []).append(index)
    missing = [entry for entry in entries if entry not in by_name]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise LabelListError(
            f"the label list {path} names {len(missing)} of its {len(entries)} examples that the training "
            f"split does not have: {shown}. Lines must be file names of the split (e.g. "
            f"{files[0].name}) or their paths below {split_root}."
        )
    ambiguous = [entry for entry in entries if len(by_name[entry]) > 1]
    if ambiguous:
        raise LabelListError(
            f"the label list {path} names {ambiguous[0]!r}, which {len(by_name[ambiguous[0]])} files of the "
            "training split share; write their paths below the split's folder (class/file) instead"
        )
    return torch.tensor([by_name[entry][0] for entry in entries], dtype=torch.int64)


def _indices_from_numbers(path: Path, entries: list[str], count: int) -> torch.Tensor:
    indices = []
    for entry in entries:
        if not entry.isdigit() or int(entry) >= count:
            raise LabelListError(
                f"the label list {path} has the line {entry!r}: the training split is held in memory, so "
                f"each line must be an example index from 0 to {count - 1}"
            )
        indices.append(int(entry))
    return torch.tensor(indices, dtype=torch.int64)
