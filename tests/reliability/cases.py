"""Every fault the reliability tests inject and every bad input they try, defined once.

The tests take their parametrization from these tables, and ``scripts/reliability_table.py`` renders
the same tables into ``docs/reliability.md`` (a test checks that the page is the script's output). The
outcome column is written from the fields the tests assert, so the page says what is checked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

DEFAULT = "default"
SLOW = "slow"

#: Training steps of the run the kill and write-failure tests interrupt (tests/reliability/interrupted_run.py).
KILL_RUN_STEPS = 12


# ----------------------------------------------------------------------------------------- kills


@dataclass(frozen=True)
class KillCase:
    """SIGKILL a real ``contrastive run`` at the ``count``-th arrival at a pause point (see pause_at.py)."""

    id: str
    fault: str
    point: str
    count: int
    checkpoints: tuple[int, ...]
    """The complete checkpoints (steps) on disk right after the kill; the last is the one resumed."""
    left_behind: str | None = None
    """A hidden leftover in ``pretrain/checkpoints/`` that the kill leaves and the restart deletes."""
    left_behind_state: str = ""
    """What the leftover holds ("half written", "complete", "partly deleted")."""
    finished_stages: tuple[str, ...] = ()
    """Stages whose ``stage.json`` marker exists right after the kill."""
    suite: str = DEFAULT

    @property
    def outcome(self) -> str:
        steps = ", ".join(str(step) for step in self.checkpoints)
        parts = [
            f"checkpoints on disk: {steps}; the latest ({self.checkpoints[-1]}) loads with `weights_only`"
        ]
        if self.left_behind:
            parts.append(
                f"`{self.left_behind}` left behind {self.left_behind_state}, never read, deleted on restart"
            )
        parts.append("stage markers: " + (", ".join(f"`{key}`" for key in self.finished_stages) or "none"))
        parts.append("every other file parses")
        parts.append("the re-run ends with the same encoder (bit for bit), losses and kNN accuracy")
        return "; ".join(parts)


KILLS = [
    KillCase(
        "during-a-step",
        "during step 6, after its backward pass, before the optimizer step",
        "backward",
        6,
        checkpoints=(4, 5),
    ),
    KillCase(
        "inside-the-rng-file-write",
        "inside the write of step 3's `rng-rank0.pt` (half of its bytes on disk)",
        "write:rng-rank0.pt",
        3,
        checkpoints=(1, 2),
        left_behind=".step-00000003.tmp/rng-rank0.pt",
        left_behind_state="half written",
        suite=SLOW,
    ),
    KillCase(
        "inside-the-state-file-write",
        "inside the write of step 3's `state.pt` (half of its bytes on disk)",
        "write:state.pt",
        3,
        checkpoints=(1, 2),
        left_behind=".step-00000003.tmp/state.pt",
        left_behind_state="half written",
    ),
    KillCase(
        "before-the-rename",
        "step 3's checkpoint complete in its hidden temporary directory, before the rename",
        "before-rename",
        3,
        checkpoints=(1, 2),
        left_behind=".step-00000003.tmp",
        left_behind_state="complete",
        suite=SLOW,
    ),
    KillCase(
        "after-the-rename",
        "right after step 3's checkpoint is renamed into place, before older ones are pruned",
        "after-rename",
        3,
        checkpoints=(1, 2, 3),
        suite=SLOW,
    ),
    KillCase(
        "while-pruning",
        "while step 1's checkpoint is pruned (its first file deleted)",
        "pruning",
        1,
        checkpoints=(2, 3),
        left_behind=".step-00000001.old",
        left_behind_state="partly deleted",
    ),
    KillCase(
        "after-the-stage-marker",
        "after `pretrain/stage.json` is written, before `results.json`",
        "stage-done",
        1,
        checkpoints=(11, 12),
        finished_stages=("pretrain",),
        suite=SLOW,
    ),
    KillCase(
        "after-the-last-stage-marker",
        "after `knn_eval/stage.json` (the last stage) is written, before `results.json`",
        "stage-done",
        2,
        checkpoints=(11, 12),
        finished_stages=("knn_eval", "pretrain"),
    ),
    KillCase(
        "between-stages",
        "between the stages: `pretrain` recorded, `knn_eval` not started",
        "between-stages",
        1,
        checkpoints=(11, 12),
        finished_stages=("pretrain",),
    ),
]


@dataclass(frozen=True)
class RandomKillCase:
    """SIGKILL the plain ``contrastive`` executable (no pause point) after random delays, several times."""

    id: str
    kills: int
    max_delay_s: float
    suite: str = SLOW

    @property
    def fault(self) -> str:
        return (
            f"{self.kills} times in a row, each after a random delay of up to {self.max_delay_s} s past the "
            "first checkpoint (plain `contrastive` executable, no pause point)"
        )

    @property
    def outcome(self) -> str:
        return (
            "after every kill: the latest checkpoint loads with `weights_only` and every other file parses; "
            "the last re-run ends with the same encoder (bit for bit) and losses"
        )


RANDOM_KILLS = [RandomKillCase("random-delays", kills=3, max_delay_s=0.6)]


# ---------------------------------------------------------------------------------- write failures


@dataclass(frozen=True)
class WriteFailureCase:
    id: str
    fault: str
    how: str
    exit_code: int
    message: str
    """A fragment of the error message the run prints."""
    intact_checkpoint: int
    """The latest complete checkpoint after the failure (the one the re-run resumes)."""
    point: str | None = None
    """Where the run is paused while the fault is put in (see pause_at.py); None: before it starts."""
    count: int = 1
    suite: str = DEFAULT

    @property
    def outcome(self) -> str:
        return (
            f"exit code {self.exit_code}, `error: ...{self.message}...`, no traceback; checkpoint "
            f"{self.intact_checkpoint} intact, no corrupt file; once writable again the same command "
            "resumes and ends with the same encoder (bit for bit) and kNN accuracy"
        )


WRITE_FAILURES = [
    WriteFailureCase(
        "disk-full-mid-run",
        "the disk fills up during step 5",
        "the run directory on a small tmpfs in a private mount namespace, filled to the last byte",
        exit_code=1,
        message="No space left on device",
        intact_checkpoint=4,
        point="backward",
        count=5,
    ),
    WriteFailureCase(
        "disk-full-before-export",
        "the disk fills up after the last checkpoint, before the encoder is exported",
        "as above",
        exit_code=1,
        message="No space left on device",
        intact_checkpoint=12,
        point="before-export",
        suite=SLOW,
    ),
    WriteFailureCase(
        "read-only-run-directory",
        "the run directory of an interrupted run is read-only when the run is started again",
        "a read-only bind mount (which stops root too) in a private mount namespace",
        exit_code=2,
        message="cannot use the run directory",
        intact_checkpoint=11,
    ),
    WriteFailureCase(
        "checkpoints-become-read-only",
        "the checkpoint directory becomes read-only during step 5",
        "a read-only bind mount added to the running process's mount namespace",
        exit_code=1,
        message="could not write the checkpoint of step 5",
        intact_checkpoint=4,
        point="backward",
        count=5,
    ),
]


# ---------------------------------------------------------------------------------- two runs at once


@dataclass(frozen=True)
class ConcurrentRunCase:
    id: str
    fault: str
    outcome: str
    suite: str = DEFAULT


CONCURRENT_RUNS = [
    ConcurrentRunCase(
        "two-runs-one-directory",
        "two `contrastive run` processes started at the same time into one run directory",
        "one trains to the end (exit code 0, complete checkpoints); the other exits with code 2 and "
        "`another run is using DIR (it holds the directory's lock); wait for it to finish or use another --out "
        "directory`, without a traceback",
    )
]


# ------------------------------------------------------------------------------- untrusted files


@dataclass(frozen=True)
class CraftedCheckpointCase:
    id: str
    file: str
    form: str
    suite: str = DEFAULT

    @property
    def fault(self) -> str:
        return (
            f"the latest checkpoint's `{self.file}` replaced by {self.form} whose loading runs `touch MARKER`"
        )

    @property
    def outcome(self) -> str:
        return (
            f"`contrastive run` resuming exits with code 1: `no checkpoint of this stage loads: refusing to load "
            f".../{self.file}: it is not a plain tensor checkpoint`; MARKER is not created (the test rewrites "
            "`checksums.json` to match, as an attacker could, so that `weights_only` is what refuses it)"
        )


CRAFTED_CHECKPOINTS = [
    CraftedCheckpointCase("state-pickle", "state.pt", "a plain pickle"),
    CraftedCheckpointCase("state-torch-file", "state.pt", "a `torch.save` file"),
    CraftedCheckpointCase("rng-torch-file", "rng-rank0.pt", "a `torch.save` file"),
]


@dataclass(frozen=True)
class CraftedEncoderCase:
    id: str
    fault: str
    message: str
    """A fragment of the EncoderFileError message."""
    through_stage: bool = False
    """Also tried as an evaluation stage's ``encoder = "<path>"``."""
    suite: str = DEFAULT

    @property
    def outcome(self) -> str:
        where = (
            '`load_encoder` and a `knn_eval` stage with `encoder = "<path>"`'
            if self.through_stage
            else ("`load_encoder`")
        )
        return f"{where}: `EncoderFileError` naming the file: `...{self.message}...`"


CRAFTED_ENCODERS = [
    CraftedEncoderCase(
        "pickle-as-safetensors",
        "`encoder.safetensors` is a pickle whose loading runs `touch MARKER`",
        "cannot read",
        through_stage=True,
    ),
    CraftedEncoderCase("truncated-safetensors", "`encoder.safetensors` cut to 100 bytes", "cannot read"),
    CraftedEncoderCase(
        "huge-header",
        "`encoder.safetensors` whose header claims 2^62 bytes",
        "header too large",
    ),
    CraftedEncoderCase("empty-safetensors", "`encoder.safetensors` empty", "cannot read"),
    CraftedEncoderCase(
        "wrong-shapes", "a tensor of `encoder.safetensors` with the wrong shape", "does not match the encoder"
    ),
    CraftedEncoderCase(
        "missing-tensor", "a weight missing from `encoder.safetensors`", "does not match the encoder"
    ),
    CraftedEncoderCase("invalid-json", "`encoder.json` is not JSON", "is not valid JSON", through_stage=True),
    CraftedEncoderCase("not-utf8", "`encoder.json` is not UTF-8", "is not valid JSON"),
    CraftedEncoderCase("json-list", "`encoder.json` holds a list", "is not a contrastive encoder config"),
    CraftedEncoderCase(
        "wrong-format", '`encoder.json` has `"format": "pickle"`', "is not a contrastive encoder"
    ),
    CraftedEncoderCase("future-version", '`encoder.json` has `"version": 99`', "has format version 99"),
    CraftedEncoderCase(
        "no-encoder-table", "`encoder.json` lacks its `encoder` table", "has no 'encoder' table"
    ),
    CraftedEncoderCase(
        "import-path-type",
        '`encoder.json` names `"type": "os.system"`',
        "unknown encoder 'os.system'",
        through_stage=True,
    ),
    CraftedEncoderCase(
        "bad-params", "`encoder.json` gives `widths` a string", "widths: Input should be a valid tuple"
    ),
    CraftedEncoderCase(
        "absurd-widths",
        "`encoder.json` asks for `widths = [1000000, 1000000]` (a 36 TB convolution)",
        "would hold over 268,",
        through_stage=True,
    ),
    CraftedEncoderCase(
        "a-hundred-thousand-layers",
        "`encoder.json` asks for 100,000 conv blocks (`widths = [1, 1, ...]`)",
        "modules (stopped at",
    ),
    CraftedEncoderCase(
        "another-encoders-config",
        "`encoder.json` of another small encoder (`widths = [8, 32]` instead of `[8, 16]`)",
        "features.1.0.weight is [16, 8, 3, 3] in the file but [32, 8, 3, 3] in the encoder",
    ),
]


# ------------------------------------------------------------------------------- recipes run no code


@dataclass(frozen=True)
class RecipeAttackCase:
    """The base recipe with ``value`` set at ``path`` (tables created as needed)."""

    id: str
    path: tuple[str | int, ...]
    value: object
    message: str
    """A fragment of the validation error."""
    shown: str | None = None
    """How the change reads in the docs, where ``path = value`` would be too long."""
    suite: str = DEFAULT

    @property
    def fault(self) -> str:
        if self.shown is not None:
            return f"`{self.shown}`"
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in self.path).lstrip(
            "."
        )
        return f"`{where} = {json.dumps(self.value, ensure_ascii=False)}`"

    @property
    def outcome(self) -> str:
        return (
            f"`validate_recipe` raises `RecipeError` and `contrastive validate` exits with code 2, without a "
            f"traceback: `{self.message}`; MARKER is not created and `evil_recipe_module` is not imported"
        )


EVIL = "__import__('os').system('touch MARKER')"
DEEP_NESTING = 200


def nested(depth: int) -> dict:
    """``{"x": {"x": ... {"x": 1}}}``, ``depth`` tables deep."""
    value: object = 1
    for _ in range(depth):
        value = {"x": value}
    return value  # type: ignore[return-value]


RECIPE_ATTACKS = [
    RecipeAttackCase(
        "loss-import-path", ("loss", "type"), "os.system", "loss.type: unknown loss 'os.system'"
    ),
    RecipeAttackCase(
        "encoder-import-path",
        ("model", "encoder", "type"),
        "torchvision.models.resnet50",
        "model.encoder.type: unknown encoder 'torchvision.models.resnet50'",
    ),
    RecipeAttackCase(
        "dataset-module-with-side-effects",
        ("data", "type"),
        "evil_recipe_module:Dataset",
        "data.type: unknown dataset 'evil_recipe_module:Dataset'",
    ),
    RecipeAttackCase("stage-python-expression", ("stages", 0, "type"), EVIL, "stages[0].type: unknown stage"),
    RecipeAttackCase(
        "number-python-expression",
        ("loss", "temperature"),
        EVIL,
        "loss.temperature: Input should be a valid number",
    ),
    RecipeAttackCase(
        "seed-module-name", ("run", "seed"), "os.system", "run.seed: Input should be a valid integer"
    ),
    RecipeAttackCase(
        "dunder-table", ("__class__",), {"__init__": "os.system"}, "__class__: unknown key '__class__'"
    ),
    RecipeAttackCase("dunder-key", ("loss", "__reduce__"), "os.system", "loss.__reduce__: unknown key"),
    RecipeAttackCase(
        "look-alike-unicode-key",
        ("loss", "temper\u0430ture"),
        0.1,
        "did you mean 'temperature'?",
    ),
    RecipeAttackCase(
        "deep-nesting",
        ("data", "x"),
        nested(DEEP_NESTING - 1),
        "data.x: unknown key 'x'",
        shown=f"data.x.x.x ... = 1 ({DEEP_NESTING} tables deep)",
    ),
]


@dataclass(frozen=True)
class RecipePropertyCase:
    """A hypothesis property: every generated recipe validates or raises RecipeError, nothing else."""

    id: str
    fault: str
    examples: int
    suite: str = DEFAULT

    @property
    def outcome(self) -> str:
        if self.id == "mutated-recipe-files":
            return (
                f"{self.examples} generated examples per run: exit code 0 (valid) or 2 with `error: ...`, never "
                "a traceback"
            )
        return (
            f"{self.examples} generated examples per run: each is a valid recipe or a `RecipeError`, never "
            "another exception"
        )


RECIPE_PROPERTIES = [
    RecipePropertyCase(
        "mutated-recipes",
        "the recipes in `recipes/`, mutated 1 to 4 times: keys deleted, renamed (any unicode), values of "
        "another type, junk tables inserted, values nested up to 120 levels deep",
        examples=150,
    ),
    RecipePropertyCase(
        "mutated-recipe-files",
        "such mutated recipes written as TOML files and given to `contrastive validate`",
        examples=10,
    ),
    RecipePropertyCase(
        "random-documents", "random TOML-like documents (tables, arrays, scalars, unicode keys)", examples=100
    ),
    RecipePropertyCase(
        "random-overrides",
        "random `--set KEY=VALUE` overrides applied to a valid recipe",
        examples=100,
    ),
]


# ------------------------------------------------------------------------------------------ bad data


@dataclass(frozen=True)
class BadDataCase:
    id: str
    fault: str
    exit_code: int
    message: str
    """A fragment of the error (exit code 2) or of the output (exit code 0)."""
    before_training: bool = True
    """The failure comes before the first step: no checkpoint and no metrics are written."""
    suite: str = DEFAULT

    @property
    def outcome(self) -> str:
        if self.exit_code == 0:
            return f"the run finishes (exit code 0) and says `{self.message}`"
        when = (
            "before training starts (no checkpoint, no metrics)"
            if self.before_training
            else "at the first batch that holds the file, before any checkpoint"
        )
        return f"exit code {self.exit_code}, {when}, no traceback: `{self.message}`"


BAD_DATA = [
    BadDataCase(
        "skip-bad-images",
        'an image folder with a truncated JPEG and a text file named `.jpg`, `on_bad_image = "skip"`, read by 2 '
        "DataLoader workers",
        exit_code=0,
        message="skipped 2 unreadable image files of split 'train'",
    ),
    BadDataCase(
        "stop-on-bad-images",
        'the same folder with `on_bad_image = "error"` (the default), read by 2 DataLoader workers',
        exit_code=2,
        message="not_an_image.jpg: not a readable image (Unsupported image file",
        before_training=False,
    ),
    BadDataCase(
        "labels-of-another-split",
        "Fashion-MNIST whose training label file is the test split's (32 labels for 64 images)",
        exit_code=2,
        message="32 labels for the 64 images",
    ),
    BadDataCase(
        "label-out-of-range",
        "Fashion-MNIST with a training label 10 (classes are 0..9)",
        exit_code=2,
        message="label 10 outside 0..9",
    ),
    BadDataCase(
        "images-of-another-shape",
        "Fashion-MNIST whose training images are 28 x 27",
        exit_code=2,
        message="expected uint8 images of shape (N, 28, 28), found torch.uint8 (64, 28, 27)",
    ),
    BadDataCase(
        "channels-do-not-fit-the-encoder",
        "grey Fashion-MNIST (1 channel) with `model.encoder.in_channels = 3`",
        exit_code=2,
        message="do not fit the augmentations and the model (encoder 'small_cnn')",
    ),
    BadDataCase(
        "mixed-image-sizes",
        "an image folder of 32 x 32 colour, 28 x 28 grey and 32 x 48 colour images (by design, not an error: "
        "pretraining pads every photo whole into one canvas with its size, and crops each view from it; "
        "evaluation resizes and centre-crops to `image_size`)",
        exit_code=0,
        message="pretrain epoch 1/1 step 2/2",
    ),
    BadDataCase(
        "png-with-too-little-image-data-skipped",
        "an image folder holding a 28 x 28 PNG whose image data inflates to 10 of the 2,380 bytes its header "
        "implies (libpng ended the process with a segmentation fault, exit code 139), "
        '`on_bad_image = "skip"`, read in the training process (`num_workers = 0`); run in a process of its own',
        exit_code=0,
        message="skipped 1 unreadable image file of split 'train'",
    ),
    BadDataCase(
        "png-with-too-little-image-data-stops",
        'the same folder with `on_bad_image = "error"`, read by 2 DataLoader workers (a worker died: "DataLoader '
        'worker exited unexpectedly", no file named); run in a process of its own',
        exit_code=2,
        message="short.png: not a readable image (the PNG image data is too short: 10 of the 2,380 bytes",
        before_training=False,
    ),
    BadDataCase(
        "jpeg-claiming-65000-x-65000-pixels",
        "an image folder holding a 1 KB JPEG whose frame header claims 65,000 x 65,000 pixels (each worker "
        "asked for 12.7 GB), the default `max_image_pixels`, read by 2 DataLoader workers; run in a process "
        "of its own",
        exit_code=2,
        message="huge.jpg: too large to decode (65000 x 65000 = 4,225,000,000 pixels, more than "
        "max_image_pixels = 178,956,970). If such images are expected, raise max_image_pixels",
        before_training=False,
    ),
    BadDataCase(
        "png-claiming-25000-x-25000-pixels-skipped",
        "an image folder holding a PNG whose header claims 25,000 x 25,000 grey pixels (1.9 GB once decoded "
        'to RGB), `on_bad_image = "skip"`, `num_workers = 0`; run in a process of its own',
        exit_code=0,
        message="skipped 1 unreadable image file of split 'train'",
    ),
]


# ------------------------------------------------------------------------------------------ numerics


@dataclass(frozen=True)
class NumericsCase:
    id: str
    fault: str
    outcome: str
    suite: str = DEFAULT


NUMERICS = [
    NumericsCase(
        "bf16-temperature-0.01-run",
        '`pretrain` for 12 steps with `run.precision = "bf16"` and `loss.temperature = 0.01` (logits up to '
        "1/0.01 = 100; exp(100) is beyond the range of float32 and bfloat16)",
        "the run finishes (exit code 0); every logged loss and every exported weight is finite",
    ),
]


# ----------------------------------------------------------------------------------- broken plugins


@dataclass(frozen=True)
class BrokenPluginCase:
    id: str
    plugin: str
    """The entry point name of the broken plugin in the test package."""
    fault: str
    message: str
    """A fragment of the plugin error, which also names the plugin."""
    suite: str = DEFAULT

    @property
    def outcome(self) -> str:
        return (
            f"`contrastive validate` exits with code 2: `plugin '{self.plugin}' ...{self.message}...`; "
            f"with `--block {self.plugin}` (and the other broken ones) a real `contrastive run` finishes"
        )


BROKEN_PLUGINS = [
    BrokenPluginCase(
        "raises-on-import",
        "reliability_raises",
        "a pip-installed plugin whose module raises `ImportError` when imported",
        "failed to load: ImportError: needs the package not_installed_anywhere",
    ),
    BrokenPluginCase(
        "bad-component",
        "reliability_bad_component",
        "a pip-installed plugin registering a loss whose params' `type` is not its name",
        "RenamedLoss.Params must declare",
    ),
    BrokenPluginCase(
        "duplicate-name",
        "reliability_duplicate",
        "a pip-installed plugin registering a second loss named `nt_xent`",
        "is registered twice",
    ),
]


# -------------------------------------------------------------------------- deeply nested files

#: How deep the JSON files of DEEPLY_NESTED nest their arrays: far beyond Python's recursion limit.
DEEP_JSON = 100_000
#: How deep the TOML of DEEPLY_NESTED nests: beyond what tomllib reads (about 400 levels).
DEEP_TOML = 600


@dataclass(frozen=True)
class DeeplyNestedCase:
    """A recipe, an override or a run directory's file replaced by arrays (or tables) nested hundreds or
    thousands of levels deep, given to a real ``contrastive`` command (in process)."""

    id: str
    fault: str
    command: str
    """What reads it, as the docs show it (``contrastive run`` resuming, ``load_encoder``, ...)."""
    exit_code: int
    message: str
    """A fragment of the error (exit code 2) or of the warning (exit code 0) naming the file."""
    same_results: bool = False
    """The run then ends with the same encoder (bit for bit), losses and kNN accuracy as the reference."""
    suite: str = DEFAULT

    @property
    def outcome(self) -> str:
        said = f"exit code {self.exit_code}, no traceback: `...{self.message}...`"
        if self.same_results:
            said += "; the run ends with the same encoder (bit for bit), losses and kNN accuracy"
        return f"{self.command}: {said}"


DEEPLY_NESTED = [
    DeeplyNestedCase(
        "recipe-tables",
        f"the recipe holds inline tables nested {DEEP_TOML} deep (`x = {{x = {{x = ...}}}}`)",
        "`contrastive validate`",
        exit_code=2,
        message="not a usable recipe: tables or arrays are nested too deeply to be read",
    ),
    DeeplyNestedCase(
        "recipe-arrays",
        f"the recipe holds arrays nested {DEEP_TOML} deep (`x = [[[...]]]`)",
        "`contrastive validate`",
        exit_code=2,
        message="not a usable recipe: tables or arrays are nested too deeply to be read",
    ),
    DeeplyNestedCase(
        "override",
        f"`--set data.x=[[[...]]]`, {DEEP_TOML} arrays deep",
        "`contrastive validate`",
        exit_code=2,
        message="the value's arrays or tables are nested too deeply to be read",
    ),
    DeeplyNestedCase(
        "recipe-dict",
        f"a recipe dict (from Python) with tables nested {DEEP_TOML} deep",
        "`validate_recipe`",
        exit_code=2,
        message="tables or arrays are nested too deeply to be read",
    ),
    DeeplyNestedCase(
        "stage-marker",
        f"`pretrain/stage.json` of a finished run, arrays {DEEP_JSON:,} deep",
        "`contrastive run` resuming",
        exit_code=2,
        message="pretrain/stage.json is damaged: not JSON (maximum recursion depth exceeded",
    ),
    DeeplyNestedCase(
        "metrics-line-on-resume",
        f"a line in the middle of `pretrain/metrics.jsonl` of an interrupted run, arrays {DEEP_JSON:,} deep",
        "`contrastive run` resuming",
        exit_code=0,
        message="resuming from",
        same_results=True,
    ),
    DeeplyNestedCase(
        "checkpoint-checksums",
        f"`checksums.json` of the latest checkpoint of an interrupted run, arrays {DEEP_JSON:,} deep",
        "`contrastive run` resuming",
        exit_code=0,
        message="checksums.json is damaged (maximum recursion depth exceeded",
        same_results=True,
    ),
    DeeplyNestedCase(
        "manifest",
        f"`manifest.json` of a finished run, arrays {DEEP_JSON:,} deep",
        "`contrastive run`",
        exit_code=2,
        message="is not empty and is not a contrastive run directory",
    ),
    DeeplyNestedCase(
        "results-in-report",
        f"`results.json` of a finished run, arrays {DEEP_JSON:,} deep",
        "`contrastive report`",
        exit_code=0,
        message="results.json is damaged: not JSON (maximum recursion depth exceeded",
    ),
    DeeplyNestedCase(
        "results-in-compare",
        f"`results.json` of a finished run, arrays {DEEP_JSON:,} deep",
        "`contrastive compare`",
        exit_code=2,
        message="results.json is damaged: not JSON (maximum recursion depth exceeded",
    ),
    DeeplyNestedCase(
        "metrics-line-in-report",
        f"a line of `pretrain/metrics.jsonl` of a finished run, arrays {DEEP_JSON:,} deep",
        "`contrastive report`",
        exit_code=0,
        message="metrics.jsonl, line 4: not a JSON record (maximum recursion depth exceeded",
    ),
    DeeplyNestedCase(
        "resolved-recipe-in-report",
        f"`recipe.resolved.toml` of a finished run, inline tables {DEEP_TOML} deep",
        "`contrastive report`",
        exit_code=0,
        message="wrote",
    ),
    DeeplyNestedCase(
        "encoder-config",
        f"`encoder.json` of an exported encoder, arrays {DEEP_JSON:,} deep",
        '`load_encoder` and a `knn_eval` stage with `encoder = "<path>"`',
        exit_code=2,
        message="encoder.json is not valid JSON",
    ),
]


# ------------------------------------------------------------------------------------- odd inputs


@dataclass(frozen=True)
class OddInputCase:
    """A value of the wrong kind or size, a deleted or non-finite artifact, or a preview asked too much."""

    id: str
    fault: str
    command: str
    """The command given it, as the docs show it."""
    exit_code: int
    message: str
    """A fragment of what the command prints: the error (exit code 2), else a warning or a line."""
    also: str = ""
    """What else the test asserts, in words."""
    suite: str = DEFAULT

    @property
    def outcome(self) -> str:
        said = f"{self.command}: exit code {self.exit_code}, no traceback: `{self.message}`"
        return f"{said}; {self.also}" if self.also else said


ODD_INPUTS = [
    OddInputCase(
        "string-for-an-integer",
        '`stages[0].batch_size = "32"` (a string)',
        "`contrastive validate`",
        exit_code=2,
        message='stages[0].batch_size: expected an integer, got the string "32"; write 32 without quotes',
    ),
    OddInputCase(
        "string-in-an-array",
        '`augmentations[0].scale = ["0.3", 1.0]`',
        "`contrastive validate`",
        exit_code=2,
        message='augmentations[0].scale[0]: expected a number, got the string "0.3"; write 0.3 without quotes',
    ),
    OddInputCase(
        "integer-for-a-boolean",
        "`run.deterministic = 1` and `stages[0].epochs = 3.0`",
        "`contrastive validate`",
        exit_code=2,
        message="run.deterministic: expected true or false, got 1; write true",
        also="`stages[0].epochs: expected an integer, got 3.0; write 3`; an integer for a float "
        "(`optimizer.lr = 1`) stays accepted",
    ),
    OddInputCase(
        "temperature-that-cannot-train",
        "`loss.temperature = 1e-9` (NT-Xent; logits up to 10^9)",
        "`contrastive validate`",
        exit_code=2,
        message="loss.temperature: too small to train with",
        also="the message says to use at least 0.0001",
    ),
    OddInputCase(
        "unusual-temperature",
        "`loss.temperature = 0.001` (NT-Xent)",
        "`contrastive validate` and a real `contrastive run`",
        exit_code=0,
        message="warning: loss.temperature: 0.001 is outside the usual range 0.05 to 1 (SimCLR uses 0.1 on "
        "ImageNet and 0.5 on CIFAR-10",
        also="both print the warning; the run trains",
    ),
    OddInputCase(
        "non-finite-encoder",
        '`encoder.safetensors` full of NaN, evaluated by a `knn_eval` stage with `encoder = "<path>"`',
        "`contrastive run`",
        exit_code=2,
        message="encoder.safetensors: 15 of the encoder's 18 tensors hold NaN or infinite values",
        also="the message says what to do; no `stage.json` is written (it used to blame the evaluation)",
    ),
    OddInputCase(
        "deleted-encoder",
        "`pretrain/encoder.safetensors` of a finished run deleted",
        "the same `contrastive run` again",
        exit_code=0,
        message="is missing: running it again",
        also="`pretrain` resumes from its last checkpoint and exports the encoder again, bit for bit; "
        "`knn_eval` stands; `results.json` is unchanged",
    ),
    OddInputCase(
        "deleted-encoder-and-checkpoints",
        "`pretrain/encoder.json` and `pretrain/checkpoints/` of a finished run deleted, its `stage.json` "
        "written before markers recorded checksums",
        "the same `contrastive run` again",
        exit_code=0,
        message="removing",
        also="`pretrain` trains again; `knn_eval`, computed from the old encoder, is removed and runs again; "
        "the run ends with the reference's encoder and results",
    ),
    OddInputCase(
        "preview-brackets",
        "`contrastive preview` of a recipe without `[[augmentations]]`, into `grid[1].png`",
        "`contrastive preview`",
        exit_code=0,
        message="the recipe has no [[augmentations]]: every view equals its image",
        also="`wrote .../grid[1].png` is printed with its brackets",
    ),
    OddInputCase(
        "preview-too-many-images",
        "`contrastive preview --n 100000000`",
        "`contrastive preview`",
        exit_code=2,
        message="argument --n: at most 1024 images, got 100000000",
        also="also `--views 1000`: `at most 64 views`",
    ),
    OddInputCase(
        "preview-too-many-pixels",
        "`contrastive preview --n 64 --views 30 --scale 64` (a grid of 6.4 billion pixels)",
        "`contrastive preview`",
        exit_code=2,
        message="more than 134,217,728: lower --scale, --n or --views",
        also="refused before the grid is allocated; no PNG is written",
    ),
    OddInputCase(
        "all-images-skipped",
        'an image folder whose every file is unreadable, with `on_bad_image = "skip"`',
        "`contrastive run`",
        exit_code=2,
        message='on_bad_image = "skip" left out every one',
        also='the message does not suggest setting `on_bad_image = "skip"`, which is set',
    ),
]


# ----------------------------------------------------------------------------- covered elsewhere


@dataclass(frozen=True)
class CoveredElsewhere:
    """A fault tested outside tests/reliability; a test checks that the named test still exists."""

    fault: str
    outcome: str
    test: str
    """``path::function`` of the test."""


ELSEWHERE = [
    CoveredElsewhere(
        "2 nodes x 1 process through torchrun's static rendezvous on 127.0.0.1",
        "the losses and weights of 1 process holding the whole batch (float rounding)",
        "tests/engine/test_multi_node.py::test_two_nodes_of_one_process_train_like_one_process",
    ),
    CoveredElsewhere(
        "rank 1 SIGKILLed mid-run under `torchrun --max-restarts 1`",
        "every rank restarts from the last checkpoint; bit-identical weights and losses to an uninterrupted run",
        "tests/engine/test_multi_node.py::test_a_killed_rank_restarts_every_rank_from_the_last_checkpoint",
    ),
    CoveredElsewhere(
        "rank 1 stopped (SIGSTOP) with `collective_timeout_s = 10`",
        "rank 0 stops within a minute: 'rank 1 stopped responding', exit code 1, no silent hang",
        "tests/engine/test_multi_node.py::test_a_hung_rank_is_named_after_the_collective_timeout",
    ),
    CoveredElsewhere(
        "a checkpoint written by 2 processes resumed on 1, and one written by 1 resumed on 2",
        "resumes, says so; the losses and weights of an uninterrupted run (float rounding)",
        "tests/engine/test_multi_node.py::test_a_checkpoint_resumes_on_another_number_of_processes",
    ),
    CoveredElsewhere(
        "SIGKILL after a random step (plain `contrastive` executable)",
        "resumes to bit-identical weights and losses",
        "tests/engine/test_pretrain.py::test_resume_after_sigkill_ends_with_identical_weights",
    ),
    CoveredElsewhere(
        "SIGTERM during training",
        "checkpoint saved, exit code 130, the resume command printed",
        "tests/engine/test_pretrain.py::test_sigterm_saves_a_checkpoint_and_says_how_to_resume",
    ),
    CoveredElsewhere(
        "NaN loss after step 5",
        "exit code 1 at the next check; checkpoint 5 kept, the bad state not saved",
        "tests/engine/test_pretrain.py::test_nan_guard_stops_without_checkpointing_the_bad_state",
    ),
    CoveredElsewhere(
        "NT-Xent at temperature 0.01 on bf16 projections that are all identical (every logit 100)",
        "finite, equals log(2N - 1), finite gradients",
        "tests/simclr/test_nt_xent.py::test_tau_0_01_with_all_logits_at_the_maximum_is_finite",
    ),
    CoveredElsewhere(
        "NT-Xent at temperature 0.01 on random bf16 projections",
        "finite, float32, equal to the seed's formula in float64",
        "tests/simclr/test_nt_xent.py::test_tau_0_01_with_bfloat16_inputs_is_finite",
    ),
    CoveredElsewhere(
        "a fine-tuning run that diverges",
        "stops before checkpointing the bad state",
        "tests/stages/test_finetune.py::test_a_diverging_run_stops_before_checkpointing_the_bad_state",
    ),
    CoveredElsewhere(
        "`torch.save` raising ENOSPC inside `CheckpointManager.save`",
        "`CheckpointError` naming the intact previous checkpoint; no temporary left",
        "tests/engine/test_engine_parts.py::test_write_failure_keeps_previous_checkpoint_when_disk_fills",
    ),
    CoveredElsewhere(
        "the latest checkpoint zeroed, its `step` rewritten, or its `checksums.json` damaged",
        "a warning naming the file and why; the run resumes from the previous complete checkpoint",
        "tests/engine/test_engine_parts.py::test_a_damaged_latest_checkpoint_falls_back_to_the_previous_one",
    ),
    CoveredElsewhere(
        "every checkpoint of a stage damaged",
        "`CheckpointError` naming each checkpoint and saying to delete the stage's checkpoints (or `--fresh`)",
        "tests/engine/test_engine_parts.py::test_when_no_checkpoint_loads_the_error_names_each_and_what_to_do",
    ),
    CoveredElsewhere(
        "a checkpoint whose tensors do not fit the model (a changed model)",
        "`CheckpointError` naming the checkpoint, the part and torch's size mismatch; no traceback",
        "tests/engine/test_training_loop.py::test_a_checkpoint_of_another_model_is_named_instead_of_a_traceback",
    ),
    CoveredElsewhere(
        "a half-written hidden checkpoint directory",
        "ignored by `latest()`, deleted by `remove_stale_temporaries()`",
        "tests/engine/test_engine_parts.py::test_half_written_checkpoints_are_ignored_and_cleaned",
    ),
    CoveredElsewhere(
        "a crafted pickle given to `checkpoint.load_file`",
        "`CheckpointError`; its code does not run",
        "tests/engine/test_engine_parts.py::test_a_crafted_pickle_is_refused",
    ),
    CoveredElsewhere(
        "a second run while the run directory's lock is held (in process)",
        "`RunDirectoryError: another run is using ...`",
        "tests/core/test_runner.py::test_second_run_into_a_held_directory_refuses",
    ),
    CoveredElsewhere(
        "a changed recipe run into the directory of another",
        "`RunDirectoryError: ... holds a run of a different recipe`; `--fresh` or another `--out` suggested",
        "tests/core/test_runner.py::test_resume_skips_finished_stages_and_restores_artifacts",
    ),
    CoveredElsewhere(
        "`--fresh` on a directory that is not a run directory",
        "refused; nothing is deleted",
        "tests/core/test_runner.py::test_fresh_refuses_a_directory_that_is_not_a_run",
    ),
    CoveredElsewhere(
        "`run` or `--fresh` into a folder with a `manifest.json` contrastive did not write (a web app's, "
        "an unparsable one, one without the run-directory format)",
        "`RunDirectoryError: ... is not a contrastive run directory`; nothing is written or deleted",
        "tests/core/test_runner.py::test_a_folder_with_someone_elses_manifest_is_neither_cleared_nor_written",
    ),
    CoveredElsewhere(
        "`run` into a non-empty folder that is not a run directory",
        "refused before anything is written",
        "tests/core/test_runner.py::test_a_run_into_a_non_empty_folder_that_is_not_a_run_writes_nothing",
    ),
    CoveredElsewhere(
        "`report` on a run whose last `metrics.jsonl` line was cut short by a kill",
        "the report is written from every complete record, without a warning",
        "tests/visual/test_report.py::test_an_unterminated_last_metrics_line_is_left_out",
    ),
    CoveredElsewhere(
        "`report` on damaged `results.json`, `manifest.json` and a damaged `metrics.jsonl` line",
        "the report is written from the rest; each damaged file is named (with the line) in a warning "
        "and in the page",
        "tests/visual/test_report.py::test_damaged_records_are_named_and_left_out_of_the_report",
    ),
    CoveredElsewhere(
        "`compare` with a damaged `results.json`",
        "exit code 2 naming the file, no traceback",
        "tests/visual/test_report.py::test_compare_names_a_damaged_results_file",
    ),
    CoveredElsewhere(
        "resuming a run whose `stage.json` is damaged",
        "`RunDirectoryError` naming the file and saying to delete it to run that stage again",
        "tests/core/test_runner.py::test_a_damaged_stage_marker_is_named_with_what_to_do",
    ),
    CoveredElsewhere(
        "run records written atomically under umasks 022, 027 and 077",
        "each file gets the mode `open()` gives a new file (0644, 0640, 0600), not `mkstemp`'s 0600",
        "tests/core/test_runner.py::test_run_records_get_the_mode_the_umask_gives_any_new_file",
    ),
    CoveredElsewhere(
        "a plugin failing on import (fake entry point)",
        "reported with its name and file; the others load; blocking it clears the error",
        "tests/core/test_registry.py::test_plugin_failing_on_import_is_reported_and_others_load",
    ),
    CoveredElsewhere(
        "a plugin calling `sys.exit()` while it is imported",
        "reported as `failed to load: called sys.exit(3)` with its file; the other plugins load",
        "tests/core/test_registry.py::test_a_plugin_calling_sys_exit_on_import_is_reported_and_others_load",
    ),
    CoveredElsewhere(
        "a hook returning a class, a string, or calling `sys.exit()` instead of returning a list",
        "a problem naming the plugin and the hook (`return [ToyLoss]` suggested); no crash",
        "tests/core/test_registry.py::test_a_hook_returning_something_else_than_a_list_names_the_plugin",
    ),
    CoveredElsewhere(
        "a loss returning per-pair values, a detached tensor, a float or an integer tensor",
        "`ContrastiveError` naming the method and its loss, before the backward pass and any update",
        "tests/engine/test_method_loss_checks.py::test_a_bad_loss_is_named_before_the_backward_pass",
    ),
    CoveredElsewhere(
        "a directory given as the recipe; a recipe saved with a UTF-8 byte-order mark",
        "`RecipeError`: `is a directory; give the recipe's .toml file`; `starts with a UTF-8 byte-order mark`",
        "tests/core/test_recipe.py::test_a_directory_or_a_file_with_a_byte_order_mark_is_named_as_such",
    ),
    CoveredElsewhere(
        "`run.name` holding a path (`../../x`, `/abs/path`, `a/b`, a backslash, a leading dot, empty)",
        "`run.name: ... is not a folder name`; nothing is written outside `runs/`",
        "tests/core/test_recipe.py::test_a_run_name_is_one_folder_never_a_path",
    ),
    CoveredElsewhere(
        "a seed of 2^64 - 1, and one of 2^64",
        "the first trains (the data order's seed is taken modulo 2^64); the second is refused: `run.seed:`",
        "tests/core/test_recipe.py::test_seeds_are_bounded_by_the_generators_range_and_large_ones_work",
    ),
    CoveredElsewhere(
        "components that break the registry's rules (five kinds)",
        "refused with the reason, naming the plugin",
        "tests/core/test_registry.py::test_bad_components_are_refused_with_a_reason",
    ),
    CoveredElsewhere(
        "a plugin component with a params field that has no docstring",
        "registered and usable; `contrastive plugins` and `contrastive list` warn `... fields have no "
        "description ...`, naming the plugin and the field",
        "tests/core/test_cli_listing.py::test_an_undescribed_field_is_a_warning_of_plugins_not_a_refusal_of_every_command",
    ),
    CoveredElsewhere(
        "damaged IDX files (magic, type, header, truncated, trailing bytes)",
        "`DatasetFormatError` naming the file",
        "tests/datasets/test_idx.py::test_damaged_files_raise_a_format_error_naming_the_file",
    ),
    CoveredElsewhere(
        "archive members that escape the target folder (downloads)",
        "extraction stops before anything is written",
        "tests/datasets/test_download.py::test_unsafe_members_stop_extraction_before_anything_is_written",
    ),
    CoveredElsewhere(
        "numbers written as strings, a float for an integer and an integer for a boolean, in a recipe and "
        "in `build()`",
        "`RecipeError` with the dotted path and the literal to write (`write 8 without quotes`); an integer "
        "for a float is accepted",
        "tests/core/test_recipe.py::test_numbers_and_booleans_are_not_converted_from_other_kinds",
    ),
    CoveredElsewhere(
        "NT-Xent temperatures 1e-5, 0.0001, 0.001 and 3.0",
        "1e-5 refused (`too small to train with ... at least 0.0001`); the others accepted with a warning "
        "giving SimCLR's values (at `loss.temperature` in a recipe); 0.05 to 1.0 without one",
        "tests/simclr/test_nt_xent.py::test_a_temperature_that_cannot_train_is_refused_and_an_unusual_one_is_warned",
    ),
    CoveredElsewhere(
        "an encoder whose weights were NaN before a frozen-encoder evaluation",
        "not reported as changed by the evaluation; a real change among the NaN still is",
        "tests/stages/test_frozen_encoder.py::test_nan_weights_are_not_taken_for_a_changed_encoder",
    ),
    CoveredElsewhere(
        "PNGs damaged as libpng fails on while reading rows (16 kinds: short, corrupt or unfinished zlib "
        "data, a bad IDAT CRC, a bad filter byte, a chunk between IDATs, a bomb after the image, ...)",
        "`BadImageError` naming the file and the damage, before the decoder sees the bytes; every sound "
        "layout (each colour type, bit depth, interlaced or not) decodes, one byte less is refused",
        "tests/datasets/test_image_headers.py::test_a_damaged_png_is_refused_before_decoding_naming_the_file_and_the_damage",
    ),
    CoveredElsewhere(
        "`contrastive preview` of an image folder holding the PNG that crashed libpng",
        'exit code 2 naming the file, no traceback; with `on_bad_image = "skip"` the grid is written',
        "tests/visual/test_preview.py::test_preview_names_a_png_that_crashed_the_decoder_or_skips_it",
    ),
    CoveredElsewhere(
        "a JPEG over `max_image_pixels` in a batch decoded on the device",
        "never handed to the batched (GPU) decoder; reported or skipped by the CPU path, naming the file",
        "tests/datasets/test_image_folder_device_decoding.py::test_a_jpeg_over_the_pixel_limit_never_reaches_the_batched_decoder",
    ),
    CoveredElsewhere(
        "an exported encoder that cannot be built on the meta device (the ViT reads values while it is built) "
        "whose config asks for a huge temporary tensor",
        "built for real with every allocation counted first; refused before the tensor is allocated",
        "tests/engine/test_encoder_fit.py::test_an_encoder_built_for_real_is_stopped_before_a_huge_allocation",
    ),
]


@dataclass(frozen=True)
class Group:
    """One section of docs/reliability.md."""

    title: str
    intro: str
    test_file: str
    cases: list = field(default_factory=list)


GROUPS = [
    Group(
        "Killed at any moment",
        "A real `contrastive run` process is stopped at an exact point and killed with SIGKILL (no handler "
        "runs); then the same command is run again. The run is `pretrain` (12 steps, a checkpoint after "
        "every step, the 2 latest kept) followed by `knn_eval`, on CPU with `run.deterministic = true`, "
        "and the result is compared with an uninterrupted run. The pause is put in from outside the "
        "library by `tests/reliability/pause_at.py`.",
        "tests/reliability/test_kill.py",
        [*KILLS, *RANDOM_KILLS],
    ),
    Group(
        "Write failures",
        "Real operating-system errors, not mocked ones: the tests run as root, which ignores file "
        "permissions, so a full disk is a small tmpfs and a read-only directory a read-only bind mount, "
        "each in a private mount namespace (`unshare`). Where mount namespaces are not available the tests "
        "are skipped.",
        "tests/reliability/test_write_failures.py",
        WRITE_FAILURES,
    ),
    Group(
        "Two runs into one run directory",
        "The run directory is locked with `flock` for as long as a run uses it.",
        "tests/reliability/test_concurrent_runs.py",
        CONCURRENT_RUNS,
    ),
    Group(
        "Untrusted checkpoints",
        "Checkpoints are loaded with `torch.load(weights_only=True)`, which refuses anything but tensors "
        "and plain containers.",
        "tests/reliability/test_untrusted_files.py",
        CRAFTED_CHECKPOINTS,
    ),
    Group(
        "Untrusted encoders",
        "Exported encoders are `encoder.safetensors` (tensors only) and `encoder.json` (data only); the "
        "encoder is built through the registry by name.",
        "tests/reliability/test_untrusted_files.py",
        CRAFTED_ENCODERS,
    ),
    Group(
        "Recipes cannot run code",
        "Components resolve only through the registry by name; nothing in a recipe is imported or "
        "evaluated. The base recipe is the one of the kill tests.",
        "tests/reliability/test_recipes_run_no_code.py",
        [*RECIPE_ATTACKS, *RECIPE_PROPERTIES],
    ),
    Group(
        "Bad data",
        "Through `contrastive run`; the files are the committed fixtures or copies of them with one fault.",
        "tests/reliability/test_bad_data.py",
        BAD_DATA,
    ),
    Group(
        "Numerics",
        "NaN and infinite losses are covered by the engine's NaN guard (see the last table).",
        "tests/reliability/test_numerics.py",
        NUMERICS,
    ),
    Group(
        "Broken plugins",
        "One test distribution with three `contrastive.plugins` entry points, one per fault, installed "
        "with pip into a private folder (`--target`) put on `PYTHONPATH`, so no other process sees it.",
        "tests/reliability/test_broken_plugins.py",
        BROKEN_PLUGINS,
    ),
    Group(
        "Deeply nested files",
        "Python's JSON and TOML readers recurse once per level and raise `RecursionError` past about a "
        "thousand (TOML: about 400); each place a recipe or a run directory's file is parsed turns that "
        "into the error (or the warning) it gives any damaged file, naming the file.",
        "tests/reliability/test_deep_nesting.py",
        DEEPLY_NESTED,
    ),
    Group(
        "Odd values, deleted artifacts and previews",
        "Values of the wrong kind or of implausible size, artifacts of a finished stage deleted or full of "
        "NaN, and previews asked for more than can be drawn; through `contrastive` in process, on the "
        "fixtures and the run of the kill tests.",
        "tests/reliability/test_odd_inputs.py",
        ODD_INPUTS,
    ),
]
