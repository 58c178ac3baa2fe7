"""The names of a run directory's files and folders, in one place for the code that writes and reads them.

Layout of a run directory::

    recipe.resolved.toml   RESOLVED_RECIPE_FILE  the validated recipe with every default filled in
    manifest.json          MANIFEST_FILE         versions, plugins, git commit, command line, start time
    results.json           RESULTS_FILE          metrics of each finished stage, by stage key
    report.html            REPORT_FILE           plots, results and recipe in one page
    tensorboard/           TENSORBOARD_DIR       TensorBoard event files ([run] trackers)
    wandb/                 WANDB_DIR             the W&B run folders ([run] trackers)
    mlruns/                MLFLOW_DIR            MLflow's local file store ([run] trackers, no tracking URI)
    <stage key>/                                 each stage's own files:
        stage.json         STAGE_DONE_FILE       the stage's metrics and artifacts; marks it finished
        metrics.jsonl      METRICS_FILE          one JSON object per logging step
        checkpoints/       CHECKPOINTS_DIR       the training state of the last steps
        encoder.safetensors ENCODER_WEIGHTS_FILE the exported encoder's weights
        encoder.json       ENCODER_CONFIG_FILE   the exported encoder's params (to rebuild it)
"""

from __future__ import annotations

RESOLVED_RECIPE_FILE = "recipe.resolved.toml"
MANIFEST_FILE = "manifest.json"
RESULTS_FILE = "results.json"
REPORT_FILE = "report.html"
STAGE_DONE_FILE = "stage.json"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
WANDB_DIR = "wandb"
MLFLOW_DIR = "mlruns"
CHECKPOINTS_DIR = "checkpoints"
ENCODER_WEIGHTS_FILE = "encoder.safetensors"
ENCODER_CONFIG_FILE = "encoder.json"
