"""semi_supervised with ``label_list``: the file's examples are the labelled ones, by file name for an
image folder and by index in memory; every mistake in the file is an error naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from contrastive_core import RecipeError, validate_recipe
from contrastive_plugins.stages import finetune
from contrastive_plugins.stages.label_list import LabelListError
from tests.stages.conftest import export_random_encoder, recipe, run

FOLDER = {
    "type": "image_folder",
    "root": str(Path(__file__).resolve().parents[1] / "fixtures" / "image_folder"),
    "image_size": 16,
}
RGB = {"type": "small_cnn", "in_channels": 3, "widths": [4], "feature_dim": 8}
STAGE = {"type": "semi_supervised", "epochs": 1, "batch_size": 2, "num_workers": 0, "eval_batch_size": 4}


@pytest.fixture
def spy(monkeypatch):
    seen = []
    original = finetune.train_classifier

    def recording(*args, train_indices=None, **kwargs):
        seen.append(train_indices)
        return original(*args, train_indices=train_indices, **kwargs)

    monkeypatch.setattr(finetune, "train_classifier", recording)
    return seen


def test_an_image_folder_list_names_files_by_name_or_by_class_path(registry, tmp_path, spy):
    encoder = export_random_encoder(registry, tmp_path / "rgb", seed=4, params=RGB)
    listed = tmp_path / "1percent.txt"
    listed.write_text("# the labelled examples\n00035.jpg\n\ntrouser/00016.png\n00035.jpg\n")
    stage = {**STAGE, "encoder": str(encoder), "label_list": str(listed)}
    results, output = run(registry, recipe(stage, data=FOLDER), tmp_path / "run")
    (indices,) = spy
    # The split's files in sorted order: ankle_boot 00000, 00011; bag 00023, 00035, 00057_wide; trouser ...
    split_files = sorted(
        p.relative_to(Path(FOLDER["root"]) / "train").as_posix()
        for p in (Path(FOLDER["root"]) / "train").rglob("*.*")
    )
    assert [split_files[i] for i in indices.tolist()] == ["bag/00035.jpg", "trouser/00016.png"]
    assert results["semi_supervised"]["labelled_examples"] == 2
    assert "fine-tuned on 2 labelled examples" in output


def test_an_in_memory_list_names_indices(registry, exported, tmp_path, spy):
    listed = tmp_path / "subset.txt"
    listed.write_text("5\n0\n63\n")
    run(registry, recipe({**STAGE, "encoder": str(exported), "label_list": str(listed)}), tmp_path / "run")
    assert torch.equal(spy[0], torch.tensor([5, 0, 63]))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "00035.jpg\nn01440764_10026.JPEG\n",
            r"names 1 of its 2 examples that the training split does not have: n01440764_10026.JPEG",
        ),
        ("# nothing\n\n", "names no example"),
    ],
)
def test_a_wrong_image_folder_list_names_the_file(registry, tmp_path, content, message):
    encoder = export_random_encoder(registry, tmp_path / "rgb", seed=4, params=RGB)
    listed = tmp_path / "list.txt"
    listed.write_text(content)
    with pytest.raises(LabelListError, match=rf"stages\[0\].*{listed}.*{message}"):
        run(
            registry,
            recipe({**STAGE, "encoder": str(encoder), "label_list": str(listed)}, data=FOLDER),
            tmp_path / "run",
        )


def test_a_missing_file_or_a_bad_index_is_an_error(registry, exported, tmp_path):
    stage = {**STAGE, "encoder": str(exported)}
    with pytest.raises(LabelListError, match=r"cannot read the label list .*absent.txt"):
        run(registry, recipe({**stage, "label_list": str(tmp_path / "absent.txt")}), tmp_path / "a")
    listed = tmp_path / "bad.txt"
    listed.write_text("3\n64\n")
    with pytest.raises(LabelListError, match=r"'64'.*index from 0 to 63"):
        run(registry, recipe({**stage, "label_list": str(listed)}), tmp_path / "b")


def test_a_list_and_a_fraction_together_are_refused(registry):
    bad = recipe({**STAGE, "label_list": "list.txt", "label_fraction": 0.01})
    with pytest.raises(RecipeError, match=r"stages\[0\].*set label_list or label_fraction, not both"):
        validate_recipe(bad, registry=registry)
