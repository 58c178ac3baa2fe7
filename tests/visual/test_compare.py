"""`contrastive compare`: both runs' results side by side, a metric filter, and the bar plot."""

from __future__ import annotations

import json
import sys

from torchvision.io import decode_png, read_file

from contrastive_core import cli


def shown(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def test_table_has_a_column_per_run_with_its_results(finished_runs, capsys):
    t05, t02 = finished_runs
    assert cli.main(["compare", str(t05), str(t02)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(line for line in lines if "metric" in line)
    assert header.index("t05") < header.index("t02")
    results = {run.name: json.loads((run / "results.json").read_text()) for run in finished_runs}
    assert results["t05"]["pretrain"]["loss"] != results["t02"]["pretrain"]["loss"]  # two different runs
    for stage in ("pretrain", "knn_eval"):
        for metric in results["t05"][stage]:
            row = next(line for line in lines if f" {metric} " in line)
            cells = row.split()
            # the row ends with both runs' values, in the order the runs were given
            assert [cell for cell in cells if cell[0].isdigit()][-2:] == [
                shown(results["t05"][stage][metric]),
                shown(results["t02"][stage][metric]),
            ]


def test_metric_filter_and_bar_plot(finished_runs, tmp_path, capsys):
    plot = tmp_path / "compare.png"
    runs = [str(run) for run in finished_runs]
    assert (
        cli.main(["compare", *runs, "--metric", "knn_eval.top1", "--metric", "loss", "--plot", str(plot)])
        == 0
    )
    out = capsys.readouterr().out
    assert " top1 " in out and " loss " in out
    assert " top5 " not in out and " steps " not in out
    assert f"wrote {plot}" in out
    image = decode_png(read_file(str(plot)))
    # knn_eval.top1 and pretrain.loss as points, then the pretrain loss curves overlaid: three charts
    # side by side, (3 x 4.2) x 3.2 inches at 100 dpi.
    assert image.shape[1:] == (320, 1260)


def test_result_axes_span_the_values_and_curves_overlay_every_run(finished_runs):
    from contrastive_core.cli.commands.compare import run_curves, value_range

    low, high = value_range([0.81, 0.82])
    assert 0.79 < low < 0.81 and 0.82 < high < 0.83  # not from 0: the two values look different
    assert value_range([0.5, 0.5]) == (0.475, 0.525)
    curves = [run_curves(run, ["pretrain", "knn_eval"], []) for run in finished_runs]
    for found in curves:
        assert {("pretrain", "loss"), ("pretrain", "lr"), ("pretrain", "knn_top1")} <= set(found)
        steps, values = found[("pretrain", "loss")]
        assert len(steps) == len(values) > 1
    assert curves[0][("pretrain", "loss")][1] != curves[1][("pretrain", "loss")][1]
    assert set(run_curves(finished_runs[0], ["pretrain"], ["loss"])) == {("pretrain", "loss")}


def test_a_directory_without_results_is_an_error(finished_runs, tmp_path, capsys):
    assert cli.main(["compare", str(finished_runs[0]), str(tmp_path)]) == 2
    assert f"{tmp_path} has no results.json (not a run directory)" in capsys.readouterr().err


def test_plot_without_matplotlib_says_how_to_install_it(finished_runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code = cli.main(["compare", *(str(run) for run in finished_runs), "--plot", str(tmp_path / "c.png")])
    assert code == 2
    assert "compare --plot needs matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()
