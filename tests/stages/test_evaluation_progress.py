"""Progress lines with an ETA for long evaluation passes, none for short ones, and the kNN stage's use."""

from __future__ import annotations

from contrastive_plugins.stages import evaluation_progress
from contrastive_plugins.stages.evaluation_progress import EvaluationProgress
from tests.stages.conftest import recipe, run


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_ten_seconds_with_the_time_left_and_a_closing_line():
    lines: list[str] = []
    clock = FakeClock()
    progress = EvaluationProgress(lines.append, "knn_eval: features of train", 60_000, clock=clock)
    for _ in range(60):  # 1,000 images a second, a batch a second
        clock.now += 1.0
        progress.advance(1_000)
    progress.finish()
    assert lines[0] == "knn_eval: features of train: 10,000/60,000 images (17%), about 50 s left"
    assert len(lines) == 6  # at 10, 20, 30, 40 and 50 s, then the closing line
    assert lines[-1] == "knn_eval: features of train: 60,000 images in 60 s"


def test_a_short_pass_prints_nothing():
    lines: list[str] = []
    clock = FakeClock()
    progress = EvaluationProgress(lines.append, "x", 100, clock=clock)
    clock.now = 3.0
    progress.advance(100)
    progress.finish()
    assert lines == []


def test_the_knn_stage_reports_its_feature_and_vote_passes(registry, exported, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluation_progress, "EVERY_SECONDS", 0.0)
    monkeypatch.setattr(
        EvaluationProgress.__init__, "__defaults__", ("images", 0.0, evaluation_progress.time.monotonic)
    )
    stage = {
        "type": "knn_eval",
        "encoder": str(exported),
        "k": 3,
        "eval_batch_size": 16,
        "query_batch_size": 8,
    }
    _, output = run(registry, recipe(stage), tmp_path / "run")
    assert "knn_eval: features of train: 16/64 images (25%), about" in output
    assert "knn_eval: features of test: 64 images in" not in output  # the test split has 32
    assert "knn_eval: features of test: 32 images in" in output
    assert "knn_eval: kNN votes: 8/32 queries (25%)" in output
