"""``contrastive sweep``: the grid from comma-separated ``--set`` values, every point validated first,
one resumable run directory per point, the comparison at the end, and resuming an interrupted sweep."""

from __future__ import annotations

import json

import pytest

from contrastive_core import cli
from contrastive_core.cli.commands import sweep as sweep_command
from contrastive_core.engine.interrupt import TrainingInterrupted
from contrastive_core.recipes.sweep_grid import split_values, sweep_grid
from tests.engine.recipes import tiny_recipe

KNN = '\n[[stages]]\ntype = "knn_eval"\nk = 5\n'


def test_the_grid_is_every_combination_in_order_with_safe_names():
    points = sweep_grid(["loss.temperature=0.1,0.5", "optimizer.lr=0.3,0.6,1.2", "stages[0].epochs=2"])
    assert [point.overrides for point in points[:2]] == [
        ("loss.temperature=0.1", "optimizer.lr=0.3", "stages[0].epochs=2"),
        ("loss.temperature=0.1", "optimizer.lr=0.6", "stages[0].epochs=2"),
    ]
    assert len(points) == 6
    # Only the varied keys name the run directories.
    assert points[0].name == "loss.temperature=0.1__optimizer.lr=0.3"
    assert sweep_grid(["data.root=/data/x"])[0].name == "base"
    assert sweep_grid(['data.root="a/b c"', "loss.temperature=1,2"])[0].name == "loss.temperature=1"


def test_commas_inside_arrays_tables_and_strings_do_not_split():
    assert split_values("[0.2, 1.0],[0.08, 1.0]") == ["[0.2, 1.0]", "[0.08, 1.0]"]
    assert split_values('{type = "sgd", lr = 1},"a,b"') == ['{type = "sgd", lr = 1}', '"a,b"']
    for bad in ("1,,2", "[1, 2", '"open'):
        with pytest.raises(ValueError):
            split_values(bad)
    with pytest.raises(ValueError, match="given twice"):
        sweep_grid(["loss.temperature=0.1", "loss.temperature=0.2"])
    with pytest.raises(ValueError, match="listed twice"):
        sweep_grid(["loss.temperature=0.1,0.1"])


def sweep(recipe, out, *settings):
    return cli.main(["sweep", str(recipe), "--out", str(out), *sum((["--set", s] for s in settings), [])])


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(tiny_recipe(epochs=1) + KNN)
    return path


def test_runs_every_point_then_compares_and_a_rerun_skips_the_finished(recipe, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert sweep(recipe, out, "loss.temperature=0.2,0.5") == 0
    printed = capsys.readouterr().out
    names = ["loss.temperature=0.2", "loss.temperature=0.5"]
    for name in names:
        results = json.loads((out / name / "results.json").read_text())
        assert 0 <= results["knn_eval"]["top1"] <= 1
    assert "temperature = 0.2" in (out / names[0] / "recipe.resolved.toml").read_text()
    assert "sweep 2/2: loss.temperature=0.5" in printed
    table = printed[printed.rindex("results") :]
    assert all(name in table for name in names) and "knn_eval" in table
    record = json.loads((out / "sweep.json").read_text())
    assert [point["overrides"] for point in record["points"]] == [[name] for name in names]

    done = {name: (out / name / "pretrain" / "stage.json").read_text() for name in names}
    assert sweep(recipe, out, "loss.temperature=0.2,0.5") == 0  # resumes: nothing left to do
    assert capsys.readouterr().out.count("finished earlier, skipped") == 4  # 2 stages x 2 runs
    assert {name: (out / name / "pretrain" / "stage.json").read_text() for name in names} == done


def test_an_interrupted_sweep_says_how_to_resume_and_resumes(recipe, tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    real = sweep_command.run_recipe
    calls = []

    def interrupted_second(recipe_model, **kwargs):
        calls.append(kwargs["run_dir"].name)
        if len(calls) == 2:
            raise TrainingInterrupted("stopped by the test")
        return real(recipe_model, **kwargs)

    monkeypatch.setattr(sweep_command, "run_recipe", interrupted_second)
    assert sweep(recipe, out, "loss.temperature=0.2,0.5") == 130
    assert f"contrastive sweep {recipe} --out {out} --set loss.temperature=0.2,0.5" in capsys.readouterr().err
    assert not (out / "loss.temperature=0.5" / "results.json").exists()
    monkeypatch.setattr(sweep_command, "run_recipe", real)
    assert sweep(recipe, out, "loss.temperature=0.2,0.5") == 0
    assert (out / "loss.temperature=0.5" / "results.json").is_file()


def test_a_bad_point_is_refused_before_anything_runs(recipe, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert sweep(recipe, out, "loss.temperature=0.2,-1") == 2
    err = capsys.readouterr().err
    assert (
        "loss.temperature: Input should be greater than 0" in err and "sweep point loss.temperature=-1" in err
    )
    assert not out.exists()


def test_another_grid_in_the_same_folder_is_refused(recipe, tmp_path, capsys):
    out = tmp_path / "sweep"
    (out / "loss.temperature=0.2").mkdir(parents=True)
    assert sweep(recipe, out, "loss.temperature=0.2,0.5") == 2
    assert "is not a sweep folder" in capsys.readouterr().err
    out = tmp_path / "other"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"recipe": "x.toml", "points": []}))
    assert sweep(recipe, out, "loss.temperature=0.2,0.5") == 2
    assert "holds another sweep (x.toml" in capsys.readouterr().err
