"""``contrastive bench --end-to-end``: a real run of the training stage, measured from its records.

Checked: the cadence arithmetic against a step-by-step replay of the pretrain loop, the window and
its events from records with known numbers, and a real short run of a tiny recipe (its records, its
counts, its folder), through the API and the command. Never how fast anything is.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import tempfile
from types import SimpleNamespace

import pytest
from rich.console import Console

from contrastive_core import ContrastiveError, default_registry
from contrastive_core.cli import main as cli_main
from contrastive_core.engine.end_to_end_benchmark import (
    Cadence,
    EndToEndRun,
    EndToEndSettings,
    measure_records,
    run_end_to_end,
    split_sessions,
)
from contrastive_core.run_directory import read_metrics
from tests.bench.test_benchmark import TINY, tiny

QUIET = Console(file=open(os.devnull, "w"))  # noqa: SIM115 - for the whole module


def replay(total: int, per_epoch: int, every: int | None, monitor_every: int | None) -> tuple[list, list]:
    """The steps at which the pretrain loop writes a checkpoint and runs its monitor, step by step."""
    saves, passes = [], []
    for step in range(1, total + 1):
        end_of_epoch = step % per_epoch == 0 or step == total
        epochs, mid = divmod(step, per_epoch)
        if monitor_every is not None and (step == total or (not mid and epochs % monitor_every == 0)):
            passes.append(step)
        if every is not None and (step % every == 0 or end_of_epoch):
            saves.append(step)
    return saves, passes


@pytest.mark.parametrize("per_epoch", [1, 3, 4, 7])
@pytest.mark.parametrize("every", [None, 1, 2, 5, 6, 100])
@pytest.mark.parametrize("monitor_every", [None, 1, 2, 3])
def test_the_cadence_counts_what_the_loop_does(per_epoch, every, monitor_every):
    cadence = Cadence(per_epoch, every, monitor_every)
    going_on, _ = replay(100, per_epoch, every, monitor_every)  # a run that goes on past every step below
    for total in range(1, 30):
        saves, passes = replay(total, per_epoch, every, monitor_every)
        assert cadence.checkpoints_in_run(total) == len(saves), total
        assert cadence.knn_monitor_passes_in_run(total) == len(passes), total
        assert cadence.checkpoints_before(total) == len([s for s in going_on if s < total]), total


def test_the_intervals_leave_out_their_checkpoints_and_monitor_passes():
    """Two sessions (the clock starts again in the second); warmup 5 drops each session's first
    interval; the loop is the median interval; each reported write is counted once."""
    records = [
        {"step": 10, "epoch": 0.5, "elapsed_s": 2.0},  # session 1: steps 1-30
        {"step": 20, "epoch": 1.0, "elapsed_s": 4.5, "checkpoint_s": 0.5},  # the write at step 10
        {"step": 30, "epoch": 1.5, "elapsed_s": 7.0, "checkpoint_s": 0.4, "knn_monitor_s": 1.0},
        # Session 2 resumes at 30; the pause's write at 30 came after session 1's last record and
        # before session 2's clock: no record reports it.
        {"step": 40, "epoch": 2.0, "elapsed_s": 3.0},
        {"step": 50, "epoch": 2.5, "elapsed_s": 6.0, "checkpoint_s": 0.6},
        {"step": 60, "epoch": 3.0, "elapsed_s": 9.0, "checkpoint_s": 0.55},
    ]
    stage = SimpleNamespace(epochs=4, max_steps=None, checkpoint_every_steps=10, knn_monitor_every_epochs=2)
    measured = measure_records(
        records, session_starts=[0, 30], stage="pretrain", warmup=5, views_per_step=64, cadence_settings=stage
    )
    # Session 1 times 10-20 and 20-30; session 2 (from step 30, warmup to 35) 40-50 and 50-60.
    assert measured.sessions == 2 and measured.steps == 40
    assert measured.interval_seconds_per_step == pytest.approx([0.2, 0.11, 0.24, 0.245])
    assert measured.median_interval_seconds_per_step == pytest.approx(0.22)
    assert measured.window_seconds == pytest.approx(11.0)
    assert measured.window_event_seconds == pytest.approx(3.05)
    loop = (11.0 - 3.05) / 40  # the intervals together: a run's time is their sum
    assert measured.loop_seconds_per_step == pytest.approx(loop)
    # Reported writes: those at 10, 20 (session 1) and 40, 50 (session 2).
    assert measured.checkpoints_measured == 4
    assert measured.checkpoint_seconds == pytest.approx(2.05 / 4)
    assert measured.knn_monitor_seconds == 1.0 and measured.knn_monitor_passes_measured == 1
    # The recipe's whole stage: 4 epochs of 20 steps, a write every 10 steps, a pass every 2 epochs.
    assert (measured.run_steps, measured.run_checkpoints, measured.run_knn_monitor_passes) == (80, 8, 2)
    expected = loop + (2.05 / 4 * 8 + 1.0 * 2) / 80
    assert measured.run_seconds_per_step == pytest.approx(expected)
    document = measured.to_json(full_seconds_per_step=0.2)
    assert document["run_views_per_s"] == pytest.approx(64 / expected)
    assert document["run_over_full"] == pytest.approx(0.2 / expected)
    # Without a warmup each session's first interval starts at the session's start.
    without_warmup = measure_records(
        records, session_starts=[0, 30], stage="pretrain", warmup=0, views_per_step=64, cadence_settings=stage
    )
    assert without_warmup.steps == 60


def test_sessions_are_told_apart_by_their_start_even_when_the_clock_does_not_drop():
    """A session whose first interval holds a long monitor pass reads a later clock than the end of the
    session before: the start steps, not the clock, separate them (no interval spans two clocks)."""
    records = [
        {"step": 10, "epoch": 0.25, "elapsed_s": 0.3},
        {"step": 20, "epoch": 0.5, "elapsed_s": 0.5},
        {"step": 30, "epoch": 0.75, "elapsed_s": 1.6, "knn_monitor_s": 1.0},  # session 2, from 20
        {"step": 40, "epoch": 1.0, "elapsed_s": 1.8},
    ]
    stage = SimpleNamespace(
        epochs=1, max_steps=None, checkpoint_every_steps=100, knn_monitor_every_epochs=None
    )
    measured = measure_records(
        records, session_starts=[0, 20], stage="pretrain", warmup=1, views_per_step=8, cadence_settings=stage
    )
    assert measured.sessions == 2
    assert measured.interval_seconds_per_step == pytest.approx([0.02, 0.02])  # 10-20, and 30-40


def test_records_that_cannot_be_measured_are_refused():
    stage = SimpleNamespace(epochs=1)
    with pytest.raises(ContrastiveError, match="does not time its loop"):
        measure_records(
            [{"step": 4, "epoch": 1.0}], stage="x", warmup=1, views_per_step=2, cadence_settings=stage
        )
    with pytest.raises(ContrastiveError, match="no two records after the warmup"):
        measure_records(
            [{"step": 4, "epoch": 1.0, "elapsed_s": 1.0}],
            stage="x",
            warmup=4,
            views_per_step=2,
            cadence_settings=stage,
        )


def test_a_real_short_run_is_measured_and_its_folder_kept(tmp_path):
    """The tiny recipe (4 steps an epoch, a record and a checkpoint every step) with the kNN monitor
    every 2 epochs, paused after 2 + 6 steps: the stage writes the timing fields, the schedule is the
    whole stage's, and the measurement counts what its cadence did."""
    text = TINY.replace(
        "checkpoint_every_steps = 1",
        "checkpoint_every_steps = 1\nknn_monitor_every_epochs = 2\nknn_monitor_examples = [64, 32]",
    ).replace("[[stages]]", '[scheduler]\ntype = "warmup_cosine"\nwarmup_epochs = 1\n\n[[stages]]', 1)
    recipe = tiny(text)
    run_dir = tmp_path / "e2e"
    settings = EndToEndSettings(steps=6, warmup=2, run_dir=run_dir)
    measured = run_end_to_end(recipe, default_registry(), settings, views_per_step=32, console=QUIET)
    records = read_metrics(run_dir / "pretrain" / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 9))  # session_steps = 2 + 6
    assert not (run_dir / "pretrain" / "stage.json").exists()  # paused, not finished
    # The learning rate follows the 12-step schedule of the whole stage (warmup 4, then half of its
    # cosine by step 8: half the peak), not one of 8 steps, which would end at 0.
    peak = max(r["lr"] for r in records)
    assert records[-1]["lr"] == pytest.approx(peak / 2, rel=0.05)
    elapsed = [r["elapsed_s"] for r in records]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0
    # A write after every step, reported in the next record; a monitor pass at the end of epoch 2.
    assert ["checkpoint_s" in r for r in records] == [False] + [True] * 7
    assert ["knn_monitor_s" in r for r in records] == [False] * 7 + [True]
    assert (measured.sessions, measured.steps, measured.checkpoints_measured) == (1, 6, 7)
    assert len(measured.interval_seconds_per_step) == 6
    assert measured.window_event_seconds == pytest.approx(
        sum(r["checkpoint_s"] for r in records[2:]) + records[-1]["knn_monitor_s"]
    )
    assert measured.knn_monitor_passes_measured == 1
    assert (measured.run_steps, measured.run_checkpoints, measured.run_knn_monitor_passes) == (12, 12, 2)
    assert measured.run_dir == str(run_dir) and 0 < measured.loop_seconds_per_step
    assert not (run_dir / "report.html").exists()  # no report: the run is the benchmark's

    with pytest.raises(ContrastiveError, match="not an empty folder"):  # nothing of the user's is touched
        run_end_to_end(recipe, default_registry(), settings, views_per_step=32, console=QUIET)
    assert len(read_metrics(run_dir / "pretrain" / "metrics.jsonl")) == 8


def test_the_temporary_run_folder_is_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    settings = EndToEndSettings(steps=2, warmup=1)
    measured = run_end_to_end(tiny(), default_registry(), settings, views_per_step=32, console=QUIET)
    assert measured.run_dir is None and list(tmp_path.iterdir()) == []


def test_the_command_prints_both_tables_and_writes_the_json(tmp_path, capsys):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    out = tmp_path / "bench.json"
    command = ["bench", str(recipe), "--steps", "2", "--warmup", "1", "--rounds", "2"]
    assert cli_main([*command, "--end-to-end", "--end-to-end-steps", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "end to end" in printed and "run / full = " in printed and "projected" in printed
    document = json.loads(out.read_text())
    measured = document["end_to_end"]
    # --rounds 2: two sessions of 1 untimed + 2 timed steps, one after each round.
    assert (measured["sessions"], measured["steps"]) == (2, 4)
    full = statistics.mean(document["measurements"]["full"]["round_seconds"])  # like the loop, a mean
    assert measured["run_over_full"] == pytest.approx(full / measured["run_seconds_per_step"])
    assert "--end-to-end --end-to-end-steps 3" in document["settings"]["command"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--end-to-end-steps", "3"], "go with --end-to-end"),
        (["--end-to-end", "--synthetic-images", "1,28,28"], "cannot use --synthetic-images"),
    ],
)
def test_options_that_do_not_fit_are_refused_before_anything_runs(tmp_path, capsys, extra, message):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    assert cli_main(["bench", str(recipe), *extra]) == 2
    assert message in capsys.readouterr().err


def test_a_folder_with_files_is_refused_before_the_step_is_measured(tmp_path, capsys):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert cli_main(["bench", str(recipe), "--end-to-end", "--end-to-end-dir", str(mine)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (mine / "notes.txt").read_text() == "keep"


def test_without_a_checkpoint_inside_the_run_its_last_one_is_rewritten_and_timed(tmp_path):
    recipe = tiny(TINY.replace("checkpoint_every_steps = 1", "checkpoint_every_steps = 50"))
    run_dir = tmp_path / "e2e"
    settings = EndToEndSettings(steps=3, warmup=1, run_dir=run_dir)
    measured = run_end_to_end(recipe, default_registry(), settings, views_per_step=32, console=QUIET)
    assert measured.checkpoints_measured == 0 and measured.checkpoint_source == "rewrite"
    assert measured.checkpoint_seconds > 0
    # 12 steps, epochs of 4: a write at each epoch's end.
    assert measured.run_checkpoints == 3
    assert measured.checkpoint_seconds_per_step == pytest.approx(measured.checkpoint_seconds * 3 / 12)
    # Only the run's own checkpoint remains (the rewrite's folder is gone).
    assert sorted(p.name for p in (run_dir / "pretrain").iterdir() if p.is_dir()) == ["checkpoints"]


def test_sessions_resume_the_stage_and_each_drops_its_warmup(tmp_path):
    """Three sessions of 1 + 2 steps: the records go on from session to session (a resumed stage), the
    clock starts again in each, and each session's first interval is left out."""
    run_dir = tmp_path / "e2e"
    settings = EndToEndSettings(steps=6, sessions=3, warmup=1, run_dir=run_dir)
    with EndToEndRun(tiny(), default_registry(), settings, console=QUIET) as run:
        for _ in range(3):
            run.session()
        measured = run.measure(32)
    assert run.session_starts == [0, 3, 6]
    records = read_metrics(run_dir / "pretrain" / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(1, 10))
    sessions = split_sessions(records, run.session_starts)
    assert [len(session) for _, session in sessions] == [3, 3, 3]
    # Each session's clock starts again: its first record reads less than the last one before it.
    for (_, before), (_, session) in itertools.pairwise(sessions):
        assert session[0]["elapsed_s"] < before[-1]["elapsed_s"]
    assert (measured.sessions, measured.steps, len(measured.interval_seconds_per_step)) == (3, 6, 6)


def test_a_stop_request_during_a_session_stops_the_benchmark(tmp_path, monkeypatch):
    """A session's planned pause is swallowed; a Ctrl-C the stage honoured ends the benchmark (as a
    KeyboardInterrupt: exit 130), and the temporary run folder still goes."""
    from contrastive_core.engine import SessionPaused, TrainingInterrupted, end_to_end_benchmark

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    raised = [SessionPaused("trained session_steps = 3"), TrainingInterrupted("stopped by SIGINT at step 4")]

    def interrupted_run(*args, **kwargs):
        raise raised.pop(0)

    monkeypatch.setattr(end_to_end_benchmark, "run_recipe", interrupted_run)
    with pytest.raises(KeyboardInterrupt, match="SIGINT"):
        with EndToEndRun(
            tiny(), default_registry(), EndToEndSettings(steps=2, sessions=2), console=QUIET
        ) as run:
            run.session()  # paused as planned
            run.session()  # stopped by the signal
    assert list(tmp_path.iterdir()) == []


def test_the_real_run_leaves_the_recipes_experiment_trackers_out(tmp_path):
    """Every session would open a tracker run of its own in the user's project: none is started."""
    pytest.importorskip("tensorboard")
    recipe = tiny(TINY.replace('device = "cpu"', 'device = "cpu"\ntrackers = ["tensorboard"]'))
    assert recipe.run.trackers == ("tensorboard",)
    settings = EndToEndSettings(steps=2, warmup=1, run_dir=tmp_path / "e2e")
    run_end_to_end(recipe, default_registry(), settings, views_per_step=32, console=QUIET)
    assert not (tmp_path / "e2e" / "tensorboard").exists()
    assert (tmp_path / "e2e" / "pretrain" / "metrics.jsonl").exists()
