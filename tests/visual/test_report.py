"""report.html: written at the end of a real run and by `contrastive report`; plots embedded, results shown."""

from __future__ import annotations

import base64
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
from rich.console import Console
from torchvision.io import decode_png

from contrastive_core import cli
from contrastive_core.reports import report, report_after_run
from contrastive_core.run_directory import REPORT_FILE, RunRecordError, read_metrics

EMBEDDED_PNG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="([^"]*)">')


def embedded_images(page: str) -> dict[str, torch.Tensor]:
    """alt text -> decoded image (C, H, W) of every embedded PNG."""
    images = {}
    for data, alt in EMBEDDED_PNG.findall(page):
        encoded = torch.frombuffer(bytearray(base64.b64decode(data)), dtype=torch.uint8)
        images[alt] = decode_png(encoded)
    return images


def test_run_writes_a_self_contained_report_with_curves_and_results(finished_runs):
    run_dir = finished_runs[0]
    page = (run_dir / REPORT_FILE).read_text()

    images = embedded_images(page)
    assert list(images) == [
        "pretrain: loss over steps",
        "pretrain: learning rate over steps",
        "pretrain: throughput (views/s) over steps",
        "pretrain: online kNN top-1 accuracy over steps",  # metrics.jsonl has knn_top1 at epoch ends
        "pretrain: online kNN top-5 accuracy over steps",
    ]
    for image in images.values():
        assert image.shape[1:] == (320, 640)  # 6.4 x 3.2 inches at 100 dpi
        assert image.float().std() > 10  # drawn on, not a blank canvas
    assert '<img src="http' not in page and "<link" not in page and "<script" not in page  # nothing external

    results = json.loads((run_dir / "results.json").read_text())
    for stage, metrics in results.items():
        assert f'<td rowspan="{len(metrics)}">{stage}</td>' in page
        for name, value in metrics.items():
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            assert f'<td>{name}</td><td class="number">{shown}</td>' in page
    assert "temperature = 0.5" in page  # the resolved recipe
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert f"<th>torch</th><td>{manifest['torch']}</td>" in page


def test_report_command_rewrites_the_report(finished_runs, tmp_path, capsys):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished_runs[1], run_dir)
    (run_dir / REPORT_FILE).unlink()
    assert cli.main(["report", str(run_dir)]) == 0
    assert f"wrote {run_dir / REPORT_FILE}" in capsys.readouterr().out
    page = (run_dir / REPORT_FILE).read_text()
    assert len(embedded_images(page)) == 5
    assert "temperature = 0.2" in page


def test_report_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert cli.main(["report", str(tmp_path)]) == 2
    assert f"{tmp_path} is not a run directory (no manifest.json)" in capsys.readouterr().err


def test_without_matplotlib_report_says_how_to_install_it(finished_runs, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    assert cli.main(["report", str(finished_runs[0])]) == 2
    err = capsys.readouterr().err
    assert "contrastive report needs matplotlib, which is not installed" in err
    assert "pip install 'contrastive[report]'" in err
    assert "Traceback" not in err


def test_without_matplotlib_a_run_skips_its_report_and_says_how_to_get_it(
    finished_runs, tmp_path, monkeypatch
):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished_runs[0], run_dir)
    (run_dir / REPORT_FILE).unlink()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    console = Console(record=True, width=200)
    report_after_run(run_dir, console)
    assert not (run_dir / REPORT_FILE).exists()
    assert (
        console.export_text()
        == "report.html skipped: its plots need matplotlib (pip install 'contrastive[report]')\n"
    )


def test_the_report_names_the_device_and_the_wall_time_of_every_stage(finished_runs):
    run_dir = finished_runs[0]
    page = (run_dir / REPORT_FILE).read_text()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["device"].startswith("cpu (") and "core" in manifest["device"]
    assert f"<th>device</th><td>{manifest['device']}</td>" in page
    assert "torch CUDA build" not in page  # a CPU run: the build's CUDA version says nothing about it
    for stage in ("pretrain", "knn_eval"):
        seconds = json.loads((run_dir / stage / "stage.json").read_text())["seconds"]
        assert seconds > 0
        assert f'<tr><td>{stage}</td><td class="number">{report.format_duration(seconds)}</td></tr>' in page
    assert "<th>total</th>" in page


def test_a_metric_with_a_random_init_baseline_shows_it_and_the_difference(tmp_path):
    run = report.RunRecords(
        run_dir=tmp_path,
        results={
            "linear_eval": {
                "top1": 0.82,
                "top5": 0.99,
                "random_init_top1": 0.71,
                "random_init_top5": 0.97,
                "protocol": "augmented",
            }
        },
        manifest={"device": "cuda:0 (NVIDIA H200, 139.8 GiB)", "cuda": "13.0"},
        resolved_recipe="",
    )
    page = report.render_html(run, [])
    assert "<th>random init</th><th>difference</th>" in page
    assert (
        '<td>top1</td><td class="number">0.8200</td><td class="number">0.7100</td><td class="number">+0.1100</td>'
        in page
    )
    assert '<td>protocol</td><td class="number">augmented</td><td class="number"></td>' in page
    assert "<td>random_init_top1</td>" not in page  # folded into its metric's row
    assert '<td rowspan="3">linear_eval</td>' in page
    assert "<th>torch CUDA build</th><td>13.0</td>" in page  # a CUDA run shows it


@pytest.mark.parametrize(("seconds", "text"), [(4.25, "4.2 s"), (185, "3 min 05 s"), (7380, "2 h 03 min")])
def test_durations_read_naturally(seconds, text):
    assert report.format_duration(seconds) == text


def test_a_failing_report_only_warns(finished_runs, tmp_path, monkeypatch):
    def broken_renderer(*args, **kwargs):
        raise RuntimeError("disk on fire")

    run_dir = tmp_path / "copy"
    shutil.copytree(finished_runs[0], run_dir)
    (run_dir / REPORT_FILE).unlink()
    monkeypatch.setattr(report, "render_html", broken_renderer)
    console = Console(record=True, width=200)
    report_after_run(run_dir, console)  # must not raise: the run it follows has succeeded
    assert "warning: report.html not written: RuntimeError: disk on fire" in console.export_text()
    assert not (run_dir / REPORT_FILE).exists()


def test_curves_skip_records_without_the_metric():
    """The kNN monitor logs knn_top1 only every few epochs; the other records must not break its curve."""
    records = [
        {"step": 1, "epoch": 0.5, "loss": 3.0, "lr": 0.1},
        {"step": 2, "epoch": 1.0, "loss": 2.5, "lr": 0.1, "knn_top1": 0.4},
        {"step": 3, "epoch": 1.5, "loss": 2.0, "lr": 0.1, "extra": 7},
        {"step": 4, "epoch": 2.0, "loss": 1.5, "lr": 0.1, "knn_top1": 0.6},
    ]
    # The loop's own timing (read by bench --end-to-end) is no curve.
    records[3] |= {"elapsed_s": 9.0, "checkpoint_s": 0.1, "knn_monitor_s": 2.0}
    assert report.curve_keys(records) == ["loss", "lr", "knn_top1", "extra"]
    assert report.curve(records, "knn_top1") == ([2, 4], [0.4, 0.6])


def _copy(run: Path, destination: Path) -> Path:
    shutil.copytree(run, destination)
    return destination


def test_an_unterminated_last_metrics_line_is_left_out(finished_runs, tmp_path, capsys):
    """What a kill in the middle of an append leaves: the report shows every complete record."""
    run = _copy(finished_runs[0], tmp_path / "killed")
    metrics = run / "pretrain" / "metrics.jsonl"
    complete = metrics.read_text().splitlines()
    metrics.write_text("\n".join(complete) + "\n" + complete[-1][: len(complete[-1]) // 2])
    assert read_metrics(metrics) == [json.loads(line) for line in complete]
    assert cli.main(["report", str(run)]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.out + captured.err
    assert "Records left out" not in (run / REPORT_FILE).read_text()


def test_damaged_records_are_named_and_left_out_of_the_report(finished_runs, tmp_path, capsys):
    run = _copy(finished_runs[0], tmp_path / "damaged")
    (run / "results.json").write_text("garbage{")
    (run / "manifest.json").write_text("[1, 2]")
    metrics = run / "pretrain" / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join([lines[0], "{not json", *lines[1:]]) + "\n")
    with pytest.raises(RunRecordError, match=r"metrics.jsonl, line 2: not a JSON record"):
        read_metrics(metrics)
    assert cli.main(["report", str(run)]) == 0
    output = " ".join(capsys.readouterr().out.split())
    for problem in ("results.json is damaged: not JSON", "manifest.json is damaged: a JSON list", "line 2"):
        assert problem in output
    page = (run / REPORT_FILE).read_text()
    assert "Records left out" in page and "results.json is damaged" in page


def test_compare_names_a_damaged_results_file(finished_runs, tmp_path, capsys):
    run = _copy(finished_runs[0], tmp_path / "damaged")
    (run / "results.json").write_text('{"pretrain": ')
    assert cli.main(["compare", str(finished_runs[1]), str(run)]) == 2
    captured = capsys.readouterr()
    assert f"{run / 'results.json'} is damaged: not JSON" in " ".join(captured.err.split())
    assert "Traceback" not in captured.err
