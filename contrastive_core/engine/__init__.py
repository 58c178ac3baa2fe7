"""The training engine: everything that turns a recipe's components into a run.

* running a recipe: :mod:`.runner` (the run directory, its records, the stages in order);
* the device and precision: :mod:`.accelerator`;
* the step: :mod:`.training_parts` (a recipe's method, view pipelines, optimizer and schedule, built
  in one place), :mod:`.augmentation_pipeline` (the views), :mod:`.training_step` (views -> forward ->
  backward -> optimizer -> schedule -> momentum updates), :mod:`.activation_checkpointing`;
* data: :mod:`.training_batches` (the global batch order, batches on the device or from loader
  workers), :mod:`.file_batches` (decoding files on the device);
* state across steps and runs: :mod:`.checkpoint`, :mod:`.random_state`, :mod:`.interrupt`,
  :mod:`.scalar_schedule` (host-side schedules of scalars such as an EMA momentum), and
  :mod:`.training_loop`, which puts the first three together around a stage's own step (resume,
  checkpoints, the NaN/inf guard, stop requests, the epochs);
* what a run leaves: :mod:`.metrics_log`, :mod:`.progress`, :mod:`.encoder_export`;
* measuring the step: :mod:`.benchmark` (``contrastive bench``).

:class:`~contrastive_core.components.MomentumTarget` and
:class:`~contrastive_core.components.FrozenForSteps` are defined with the method interface that names
them (:mod:`contrastive_core.components`); they are offered here too, beside the schedules that drive
them.
"""

from __future__ import annotations

from ..components.frozen_for_steps import FrozenForSteps
from ..components.momentum_target import MomentumTarget
from .accelerator import DeviceError, get_accelerator
from .activation_checkpointing import checkpoint_blocks
from .augmentation_pipeline import (
    AugmentationPipeline,
    PerViewAugmentationPipeline,
    apply_in_order,
    build_pipeline,
    build_view_pipeline,
    check_same_op_types,
    fused_pipeline,
    fused_view_pipeline,
    to_unit_float,
)
from .benchmark import (
    BARE_SGD,
    SYNTHETIC_BATCHES,
    BenchmarkResult,
    BenchSettings,
    Measurement,
    cpu_model,
    machine_info,
    run_benchmark,
    synchronize,
    time_interleaved,
    time_loader,
)
from .checkpoint import STATE_FILE, CheckpointError, CheckpointManager, load_file
from .encoder_export import EncoderFileError, export_encoder, exported_files, load_encoder
from .file_batches import (
    DecodeAhead,
    DeviceDecodable,
    EncodedItem,
    WorkerDataError,
    pack_encoded,
    read_batches,
    unpack_encoded,
)
from .interrupt import StopRequest, TrainingInterrupted
from .loss_precision import at_least_float32
from .metrics_log import MetricsLog
from .progress import TrainingProgress
from .random_state import augmentation_generator, capture_rng, restore_rng
from .runner import RunDirectoryError, RunFileSystemError, resolved_toml, results_table, run_recipe
from .scalar_schedule import CosineSchedule, WarmupThenConstant, cosine_schedule, linear_warmup
from .training_batches import DeviceBatches, GlobalBatchOrder, LoaderBatches
from .training_loop import IntervalMeans, NonFiniteLossError, Stateful, TrainingLoop
from .training_parts import (
    TrainingParts,
    build_training_parts,
    set_augmentation_precision,
    training_stage,
)
from .training_step import TrainingStep

__all__ = [
    "BARE_SGD",
    "STATE_FILE",
    "SYNTHETIC_BATCHES",
    "AugmentationPipeline",
    "BenchSettings",
    "BenchmarkResult",
    "CheckpointError",
    "CheckpointManager",
    "CosineSchedule",
    "DecodeAhead",
    "DeviceBatches",
    "DeviceDecodable",
    "DeviceError",
    "EncodedItem",
    "EncoderFileError",
    "FrozenForSteps",
    "GlobalBatchOrder",
    "IntervalMeans",
    "LoaderBatches",
    "Measurement",
    "MetricsLog",
    "MomentumTarget",
    "NonFiniteLossError",
    "PerViewAugmentationPipeline",
    "RunDirectoryError",
    "RunFileSystemError",
    "Stateful",
    "StopRequest",
    "TrainingInterrupted",
    "TrainingLoop",
    "TrainingParts",
    "TrainingProgress",
    "TrainingStep",
    "WarmupThenConstant",
    "WorkerDataError",
    "apply_in_order",
    "at_least_float32",
    "augmentation_generator",
    "build_pipeline",
    "build_training_parts",
    "build_view_pipeline",
    "capture_rng",
    "check_same_op_types",
    "checkpoint_blocks",
    "cosine_schedule",
    "cpu_model",
    "export_encoder",
    "exported_files",
    "fused_pipeline",
    "fused_view_pipeline",
    "get_accelerator",
    "linear_warmup",
    "load_encoder",
    "load_file",
    "machine_info",
    "pack_encoded",
    "read_batches",
    "resolved_toml",
    "restore_rng",
    "results_table",
    "run_benchmark",
    "run_recipe",
    "set_augmentation_precision",
    "synchronize",
    "time_interleaved",
    "time_loader",
    "to_unit_float",
    "training_stage",
    "unpack_encoded",
]
