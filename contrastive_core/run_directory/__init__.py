"""The run directory: its file names, how its files are written, its manifest, reading its records.

* :mod:`.names`: the names of the files and folders of a run directory and of its stages' folders;
* :mod:`.atomic`: atomic writes (a reader or a crash sees the old file or folder or the complete new
  one);
* :mod:`.manifest`: ``manifest.json``, what produced a run;
* :mod:`.records`: reading a stage's ``metrics.jsonl`` back.
"""

from __future__ import annotations

from .atomic import new_file_mode, write_atomic, write_directory_atomic, write_json_atomic, write_text_atomic
from .manifest import build_manifest, git_state, is_run_directory
from .names import (
    CHECKPOINTS_DIR,
    ENCODER_CONFIG_FILE,
    ENCODER_WEIGHTS_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    REPORT_FILE,
    RESOLVED_RECIPE_FILE,
    RESULTS_FILE,
    STAGE_DONE_FILE,
    TENSORBOARD_DIR,
)
from .records import RunRecordError, read_json_record, read_metrics

__all__ = [
    "RunRecordError",
    "CHECKPOINTS_DIR",
    "ENCODER_CONFIG_FILE",
    "ENCODER_WEIGHTS_FILE",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "REPORT_FILE",
    "RESOLVED_RECIPE_FILE",
    "RESULTS_FILE",
    "STAGE_DONE_FILE",
    "TENSORBOARD_DIR",
    "build_manifest",
    "git_state",
    "is_run_directory",
    "new_file_mode",
    "read_json_record",
    "read_metrics",
    "write_atomic",
    "write_directory_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
