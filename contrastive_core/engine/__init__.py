"""The training engine: everything that turns a recipe's components into a run.

* running a recipe: :mod:`.runner` (the run directory, its records, the stages in order);
* the device and precision: :mod:`.accelerator`;
* the step: :mod:`.training_parts` (a recipe's method, view pipelines, optimizer and schedule, built
  in one place), :mod:`.augmentation_pipeline` (the views), :mod:`.training_step` (views -> forward ->
  backward -> optimizer -> schedule -> momentum updates), :mod:`.activation_checkpointing`;
* data: :mod:`.training_batches` (the global batch order, batches on the device or from loader
  workers), :mod:`.file_batches` (decoding files on the device), :mod:`.image_batch` (a batch of
  photos of different sizes: one padded canvas and each photo's size);
* state across steps and runs: :mod:`.checkpoint`, :mod:`.random_state`, :mod:`.interrupt`,
  :mod:`.scalar_schedule` (host-side schedules of scalars such as an EMA momentum), and
  :mod:`.training_loop`, which puts the first three together around a stage's own step (resume,
  checkpoints, the NaN/inf guard, stop requests, the epochs);
* what a run leaves: :mod:`.metrics_log`, :mod:`.progress`, :mod:`.encoder_export`;
* weights in and out: :mod:`.encoder_init` (an encoder's ``init`` file, read by :mod:`.weights_file`),
  :mod:`.run_export` (``contrastive export``: a run's encoder as a folder to publish);
* measuring the step: :mod:`.benchmark` (``contrastive bench``), and a real run beside it:
  :mod:`.end_to_end_benchmark` (``--end-to-end``).

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
    CanvasOrderError,
    PerViewAugmentationPipeline,
    apply_in_order,
    build_pipeline,
    build_view_pipeline,
    check_crops_first,
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
from .encoder_init import EncoderInitError, InitReport, build_encoder, initialise_encoder
from .end_to_end_benchmark import EndToEndMeasurement, EndToEndRun, EndToEndSettings, run_end_to_end
from .file_batches import (
    DecodeAhead,
    DeviceDecodable,
    EncodedItem,
    WorkerDataError,
    pack_encoded,
    read_batches,
    read_image_batches,
    unpack_encoded,
)
from .image_batch import ImageBatch, canvas_batch, items_batch
from .interrupt import SessionPaused, StopRequest, TrainingInterrupted
from .loss_precision import at_least_float32
from .metrics_log import MetricsLog
from .progress import TrainingProgress
from .random_state import augmentation_generator, capture_rng, restore_rng
from .run_export import EXPORT_FORMATS, ExportError, RunExport, default_export_directory, export_run
from .runner import RunDirectoryError, RunFileSystemError, resolved_toml, results_table, run_recipe
from .scalar_schedule import CosineSchedule, WarmupThenConstant, cosine_schedule, linear_warmup
from .training_batches import DeviceBatches, GlobalBatchOrder, LoaderBatches
from .training_loop import IntervalMeans, NonFiniteLossError, Stateful, TrainingLoop
from .training_parts import (
    TrainingParts,
    build_training_parts,
    check_views_crop_first,
    set_augmentation_precision,
    training_stage,
)
from .training_step import TrainingStep

__all__ = [
    "BARE_SGD",
    "EXPORT_FORMATS",
    "STATE_FILE",
    "SYNTHETIC_BATCHES",
    "AugmentationPipeline",
    "BenchSettings",
    "BenchmarkResult",
    "CanvasOrderError",
    "CheckpointError",
    "CheckpointManager",
    "CosineSchedule",
    "DecodeAhead",
    "DeviceBatches",
    "DeviceDecodable",
    "DeviceError",
    "EncodedItem",
    "EncoderFileError",
    "EncoderInitError",
    "EndToEndMeasurement",
    "EndToEndRun",
    "EndToEndSettings",
    "ExportError",
    "FrozenForSteps",
    "GlobalBatchOrder",
    "ImageBatch",
    "InitReport",
    "IntervalMeans",
    "LoaderBatches",
    "Measurement",
    "MetricsLog",
    "MomentumTarget",
    "NonFiniteLossError",
    "PerViewAugmentationPipeline",
    "RunDirectoryError",
    "RunExport",
    "RunFileSystemError",
    "Stateful",
    "SessionPaused",
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
    "build_encoder",
    "build_pipeline",
    "build_training_parts",
    "build_view_pipeline",
    "canvas_batch",
    "capture_rng",
    "check_crops_first",
    "check_same_op_types",
    "check_views_crop_first",
    "checkpoint_blocks",
    "cosine_schedule",
    "cpu_model",
    "default_export_directory",
    "export_encoder",
    "export_run",
    "exported_files",
    "fused_pipeline",
    "fused_view_pipeline",
    "get_accelerator",
    "initialise_encoder",
    "items_batch",
    "linear_warmup",
    "load_encoder",
    "load_file",
    "machine_info",
    "pack_encoded",
    "read_batches",
    "read_image_batches",
    "resolved_toml",
    "restore_rng",
    "results_table",
    "run_benchmark",
    "run_end_to_end",
    "run_recipe",
    "set_augmentation_precision",
    "synchronize",
    "time_interleaved",
    "time_loader",
    "to_unit_float",
    "training_stage",
    "unpack_encoded",
]
