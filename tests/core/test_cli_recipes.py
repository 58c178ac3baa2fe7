"""``contrastive recipes``: the shipped recipes listed, printed and copied out (never over a file unasked)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from contrastive_core import cli
from contrastive_core.cli.recipe_catalog import find_recipe, shipped_recipes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_the_catalog_is_the_repository_recipes_folder():
    """In this (editable) install the data package is recipes/ itself: nothing to keep in sync."""
    assert [recipe.name for recipe in shipped_recipes()] == sorted(
        path.stem for path in RECIPES.glob("*.toml")
    )
    for recipe in shipped_recipes():
        data = tomllib.loads((RECIPES / recipe.file_name).read_text(encoding="utf-8"))
        assert recipe.method == data["method"]["type"] and recipe.dataset == data["data"]["type"]
        assert recipe.target, f"{recipe.name} has no '# Target:' line in its header"


def test_the_listing_shows_name_method_dataset_and_target(capsys):
    assert cli.main(["recipes"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "│ quickstart " in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[:3] == ["quickstart", "simclr", "fashion_mnist"]
    assert cells[3].startswith("runs anywhere in about 6 minutes on 2 CPU cores")
    assert cells[3].endswith(" ...")  # the header's sentence goes on in the file
    assert all(f"│ {path.stem} " in out for path in RECIPES.glob("*.toml"))


def test_a_name_prints_the_recipe_verbatim(capsys):
    assert cli.main(["recipes", "quickstart.toml"]) == 0
    assert capsys.readouterr().out == (RECIPES / "quickstart.toml").read_text(encoding="utf-8")


def test_copy_writes_the_file_and_refuses_to_overwrite_without_force(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    original = (RECIPES / "quickstart.toml").read_bytes()
    assert cli.main(["recipes", "quickstart", "--copy"]) == 0
    assert (tmp_path / "quickstart.toml").read_bytes() == original
    assert "run it with: contrastive run quickstart.toml" in capsys.readouterr().out

    (tmp_path / "quickstart.toml").write_text("# my edits\n")
    assert cli.main(["recipes", "quickstart", "--copy"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "error: quickstart.toml already exists; not overwriting it (pass --force to replace it" in err
    assert (tmp_path / "quickstart.toml").read_text() == "# my edits\n"

    assert cli.main(["recipes", "quickstart", "--copy", "--force"]) == 0
    assert (tmp_path / "quickstart.toml").read_bytes() == original


def test_copy_into_a_folder_or_to_a_file_name(tmp_path):
    assert cli.main(["recipes", "byol_fashion_mnist", "--copy", str(tmp_path)]) == 0
    assert (tmp_path / "byol_fashion_mnist.toml").read_text() == find_recipe("byol_fashion_mnist").text
    assert cli.main(["recipes", "byol_fashion_mnist", "--copy", str(tmp_path / "mine.toml")]) == 0
    assert (tmp_path / "mine.toml").is_file()


def test_copy_to_a_missing_folder_is_refused(tmp_path, capsys):
    assert cli.main(["recipes", "quickstart", "--copy", str(tmp_path / "missing" / "q.toml")]) == 2
    assert f"folder {tmp_path / 'missing'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "missing").exists()


def test_an_unknown_name_suggests_the_closest_and_lists_them(capsys):
    assert cli.main(["recipes", "quickstrat", "--copy"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "error: unknown recipe 'quickstrat'; did you mean 'quickstart'? Shipped recipes: " in err
    assert "simclr_r50" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["recipes", "--force"], "--copy and --force need a recipe"),
        (["recipes", "quickstart", "--force"], "--force applies to --copy"),
    ],
)
def test_force_without_copy_is_a_usage_error(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
