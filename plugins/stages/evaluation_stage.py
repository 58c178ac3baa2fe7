"""What every evaluation stage shares: its common params, the setup (device, dataset, preprocessing)
and the frame of its run (the encoder, the optional random-init baseline, the LSI).

Processes: an evaluation runs on one device and uses no collective communication. Launched with
several processes (``torchrun``), every process runs the same evaluation on its own device with the
same seed and data; only the main process prints and writes files (checkpoints, classifiers). The
numbers agree across processes up to the GPU's floating-point nondeterminism. Evaluation recipes
are best launched as one process.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar

import torch
from pydantic import Field

from contrastive_core import ComponentParams, ComponentTable, Dataset, Encoder, Stage, StageContext
from contrastive_core.engine import get_accelerator
from contrastive_plugins.datasets.label_fraction import balanced_subset

from . import features
from .dataset_source import evaluation_dataset
from .encoder_source import EncoderSource, random_init_like, resolve_encoder
from .evaluation_progress import EvaluationProgress
from .frozen_encoder import FrozenEncoderCheck
from .labelled_split import LabelledSplit
from .lsi import LsiRole, lsi_metrics
from .preprocessing import EvalPreprocessing, recipe_normalization

#: ``evaluate``'s variant for the encoder under evaluation, and the prefix of the random-init baseline.
MAIN = ""
RANDOM_INIT = "random_init_"


class EvaluationParams(ComponentParams):
    """Params every evaluation stage has."""

    data: Annotated[dict[str, Any] | None, ComponentTable("dataset")] = None
    """A dataset table to evaluate on instead of the recipe's data section (transfer), with the same
    keys, e.g. { type = "cifar10", root = "data/cifar10" }. Validated with the recipe."""
    encoder: str | None = None
    """The encoder to evaluate: the key of a preceding stage that exported one (e.g. "pretrain"), or the
    path of an exported encoder directory. Default: the nearest preceding stage that exported an encoder,
    else the recipe's model.encoder at random initialisation (reported on the console)."""
    resize: int | None = Field(None, gt=0)
    """Resize images to resize x resize (bilinear, antialiased) before the encoder; default: keep the size."""
    eval_batch_size: int = Field(256, ge=1)
    """Images per forward pass when computing features or test predictions."""
    train_examples: int | None = Field(None, ge=1)
    """Use a class-balanced subset of this many training images (seeded with run.seed) for quick runs;
    the test split is always used whole. Default: the whole training split."""
    num_workers: int = Field(4, ge=0)
    """DataLoader workers for datasets read from files (image folders); in-memory datasets use none."""


class RandomInitBaselineParams(ComponentParams):
    """The random-initialisation baseline switch."""

    random_init_baseline: bool = False
    """Also evaluate the same architecture at random initialisation (seeded with run.seed) and report
    its metrics with the prefix random_init_, to show what pretraining bought."""


@dataclass
class EvaluationSetup:
    """Device, precision, dataset and preprocessing of one evaluation stage run."""

    context: StageContext
    device: torch.device
    precision: str
    seed: int
    dataset: Dataset
    normalization: list
    resize: int | None
    eval_batch_size: int
    train_examples: int | None
    num_workers: int
    is_main: bool
    say: Callable[[str], None]
    """Print a line on the main process (plain text: brackets such as [data] are shown as they are)."""
    warn: Callable[[str], None]
    """Print a highlighted line on the main process."""
    barrier: Callable[[], None] = lambda: None
    """Wait for every process (after the main process wrote a file the others will read)."""
    _splits: dict[str, LabelledSplit] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"stages[{self.context.index}] ({self.context.key})"

    @property
    def preprocessing(self) -> EvalPreprocessing:
        """The deterministic eval view (see :mod:`.preprocessing`)."""
        return EvalPreprocessing(self.normalization, self.resize).to(self.device)

    def split(self, name: str) -> LabelledSplit:
        """The labelled split ``name`` of the stage's dataset (read once per stage)."""
        if name not in self._splits:
            self._splits[name] = LabelledSplit(
                self.dataset, name, self.device, num_workers=self.num_workers, where=self.where
            )
        return self._splits[name]

    def train_split(self, name: str) -> LabelledSplit:
        """The training split ``name``, limited to a class-balanced subset when ``train_examples`` asks."""
        split = self.split(name)
        if self.train_examples is None or self.train_examples >= len(split):
            return split
        indices = balanced_subset(split.labels, self.train_examples / len(split), self.seed)
        return split.restricted(indices)

    def frozen_features(
        self, encoder: Encoder, train_split: str, test_split: str, stage: str
    ) -> FrozenFeatures:
        """Features of the (possibly subsetted) training split and of the test split under ``encoder``,
        which is moved to the device, used in eval mode without gradients, and verified unchanged
        afterwards (every parameter and buffer; ``stage`` names the stage in the error)."""
        encoder.to(self.device)
        frozen = FrozenEncoderCheck(encoder)
        train, test = self.train_split(train_split), self.split(test_split)
        options = {"batch_size": self.eval_batch_size, "precision": self.precision}
        train_features, train_labels = features.compute_features(
            encoder,
            train,
            self.preprocessing,
            **options,
            progress=self.progress(f"features of {train_split}", len(train)),
        )
        test_features, test_labels = features.compute_features(
            encoder,
            test,
            self.preprocessing,
            **options,
            progress=self.progress(f"features of {test_split}", len(test)),
        )
        frozen.verify(encoder, f"{self.where} {stage}")
        features.require_finite(train_features, train_split, self.precision, f"{self.where} {stage}")
        features.require_finite(test_features, test_split, self.precision, f"{self.where} {stage}")
        return FrozenFeatures(train_features, train_labels, test_features, test_labels, train.num_classes)

    def progress(self, what: str, total: int, unit: str = "images") -> EvaluationProgress:
        """Progress lines (on the main process) for a pass over ``total`` items of this stage."""
        return EvaluationProgress(self.say, f"{self.context.key}: {what}", total, unit)

    def artifact(self, variant: str, filename: str) -> tuple[str, Path]:
        """(artifact name, path in the stage directory) of a file of ``variant`` (MAIN or RANDOM_INIT)."""
        stem = filename.split(".")[0]
        return variant + stem, self.context.stage_dir / (variant + filename)


@dataclass
class FrozenFeatures:
    """Frozen-encoder features float32 (N, d) with labels int64 (N,) of a training and a test split."""

    train_features: torch.Tensor
    train_labels: torch.Tensor
    test_features: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int


class EvaluationStage(Stage):
    """Base of the evaluation stages: resolves the encoder, runs :meth:`evaluate` on it (and on the
    random-init baseline when asked), adds the LSI where it applies. Metrics are fractions in [0, 1]."""

    #: The part this stage plays in the linear separability index, if any (see :mod:`.lsi`).
    lsi_role: ClassVar[LsiRole | None] = None

    def run(self, context: StageContext) -> dict[str, Any]:
        params = self.params
        setup = self.setup(context)
        source = resolve_encoder(params.encoder, context)
        (setup.say if source.pretrained else setup.warn)(self.describe_source(source, context.key))
        try:
            metrics = self.evaluate(source.encoder, setup, MAIN)
        except features.NonFiniteFeaturesError as error:
            raise features.NonFiniteFeaturesError(f"{error} The encoder: {source.description}.") from None
        if getattr(params, "random_init_baseline", False):
            baseline = random_init_like(source.encoder.params, context.registry, setup.seed)
            setup.say(f"{context.key}: random-init baseline ({baseline.name}, seed {setup.seed})")
            metrics.update(
                {
                    RANDOM_INIT + name: value
                    for name, value in self.evaluate(baseline, setup, RANDOM_INIT).items()
                }
            )
        if self.lsi_role is not None:
            metrics.update(lsi_metrics(context, self.lsi_role, params, metrics["top1"], setup.warn))
        return metrics

    def describe_source(self, source: EncoderSource, key: str) -> str:
        """The console line saying which encoder is evaluated (highlighted when it is not pretrained)."""
        return f"{key}: encoder {source.description}"

    def setup(self, context: StageContext) -> EvaluationSetup:
        return evaluation_setup(self.params, context)

    @abstractmethod
    def evaluate(self, encoder: Encoder, setup: EvaluationSetup, variant: str) -> dict[str, Any]:
        """Evaluate ``encoder`` (on the CPU; move it to ``setup.device``); ``variant`` is MAIN or
        RANDOM_INIT and prefixes the files this evaluation writes. Returns metrics without the prefix."""


def evaluation_setup(params: EvaluationParams, context: StageContext) -> EvaluationSetup:
    """The device, dataset and preprocessing of an evaluation-like stage run with ``params``."""
    accelerator = get_accelerator(context.recipe.run)
    main = accelerator.is_main_process

    def say(text: str) -> None:
        if main:
            context.console.print(text, markup=False, highlight=False)

    def warn(text: str) -> None:
        if main:
            context.console.print(text, markup=False, highlight=False, style="bold yellow")

    return EvaluationSetup(
        context=context,
        device=accelerator.device,
        precision=context.recipe.run.precision,
        seed=context.recipe.run.seed,
        dataset=evaluation_dataset(params.data, context),
        normalization=recipe_normalization(context.recipe, context.registry),
        resize=params.resize,
        eval_batch_size=params.eval_batch_size,
        train_examples=params.train_examples,
        num_workers=params.num_workers,
        is_main=main,
        say=say,
        warn=warn,
        barrier=accelerator.wait_for_everyone,
    )
