"""The ``distill`` stage: SimCLRv2's third step, distillation of a fine-tuned teacher on unlabelled images.

Chen, Kornblith, Swersky, Norouzi, Hinton 2020 ("Big Self-Supervised Models are Strong Semi-Supervised
Learners", arXiv:2006.10029, Sec. 2): pretrain big, fine-tune on few labels, then use the fine-tuned
network as a teacher whose predictions on unlabelled images train a student (the same size:
self-distillation, or smaller), with the loss of :mod:`.distillation_loss` (temperature 1 in the paper),
optionally mixed with the labels' cross-entropy on the labelled subset (eq. 3). The student is an encoder
plus a linear classifier, trained like ``finetune`` trains (:mod:`.classifier_training`: Nesterov SGD,
cosine schedule, random crops and flips, resumable from end-of-epoch checkpoints), and evaluated like any
classifier (top-1/top-5 on the test split), next to the teacher's own accuracy. The teacher sees the same
augmented view as the student, in eval mode, without gradient.

The teacher: the classifier a preceding ``finetune`` or ``semi_supervised`` stage exported
(:mod:`.classifier_export`), or a classifier directory. The student's architecture is ``student`` (an
encoder table; default the recipe's [model.encoder]); it starts at random initialisation (or from the
table's ``init`` weights file), or from an exported encoder named by ``encoder``. With ``labelled_weight = 0`` (the default, the paper's main
setting) no label of the training split is read. The trained student is exported like a fine-tuned
classifier, so a further ``distill`` can use it as its teacher.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from contrastive_core import ComponentTable, Encoder, Stage, StageContext
from contrastive_core.engine import initialise_encoder
from contrastive_core.errors import ContrastiveError
from contrastive_core.recipes import stage_keys
from contrastive_core.run_directory import CHECKPOINTS_DIR
from contrastive_plugins.datasets.label_fraction import balanced_subset

from .classifier_export import CLASSIFIER_DIR, classifier_files, export_classifier, load_classifier
from .classifier_training import ClassifierTrainingParams, classifier_test_accuracy, train_classifier
from .distillation_loss import distillation_loss
from .encoder_source import random_init_like, resolve_encoder
from .evaluation_stage import EvaluationParams, EvaluationSetup, evaluation_setup
from .mixed_precision import autocast


class DistillParams(EvaluationParams, ClassifierTrainingParams):
    type: Literal["distill"]
    teacher: str | None = None
    """The teacher: the key of a preceding finetune / semi_supervised stage (which exports its
    classifier), or the path of an exported classifier directory. Default: the nearest preceding stage
    that exported a classifier."""
    student: Annotated[dict[str, Any] | None, ComponentTable("encoder")] = None
    """The student's encoder table (e.g. a smaller network); default: the recipe's [model.encoder]
    (self-distillation, the paper's main setting)."""
    encoder: str | None = None
    """Where the student's encoder starts: the key of a preceding stage that exported an encoder, or an
    exported encoder directory; default: ``student`` at random initialisation (seeded with run.seed), or
    from its ``init`` file when it sets one."""
    temperature: float = Field(1.0, gt=0)
    """tau of both softmaxes of the distillation loss (SimCLRv2, Sec. 2: 1)."""
    labelled_weight: float = Field(0.0, ge=0, le=1)
    """1 - alpha of SimCLRv2's eq. 3: the weight of the labels' cross-entropy on the labelled subset
    (``label_fraction``) against the distillation loss on every image. 0 (default): distillation only,
    as in the paper's main results; no training label is read then."""
    label_fraction: float = Field(0.01, gt=0, le=1)
    """With ``labelled_weight`` > 0: the class-balanced fraction of the training labels used (drawn as
    ``semi_supervised`` draws it)."""
    subset_seed: int = Field(0, ge=0)
    """Seed of the labelled subset, as in ``semi_supervised``."""


class Distill(Stage):
    """Distil a fine-tuned classifier into a student on unlabelled images (SimCLRv2); top-1/top-5."""

    name = "distill"
    Params = DistillParams
    params: DistillParams

    def run(self, context: StageContext) -> dict[str, Any]:
        params = self.params
        setup = evaluation_setup(params, context)
        teacher_dir, teacher_description = self._teacher_directory(context)
        teacher = load_classifier(teacher_dir, context.registry).to(setup.device).eval()
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)
        setup.say(f"{context.key}: teacher {teacher_description}")
        student_encoder = self._student_encoder(context, setup)
        train = setup.train_split(params.train_split)
        if train.num_classes != teacher.classifier.out_features:
            raise ContrastiveError(
                f"{setup.where}: the teacher predicts {teacher.classifier.out_features} classes, the "
                f"dataset has {train.num_classes}"
            )
        labelled = None
        if params.labelled_weight > 0:
            try:
                subset = balanced_subset(train.labels, params.label_fraction, params.subset_seed)
            except ValueError as error:
                raise ContrastiveError(
                    f"{setup.where}: cannot draw label_fraction {params.label_fraction}: {error}"
                ) from None
            labelled = torch.zeros(len(train), dtype=torch.bool, device=setup.device)
            labelled[subset.to(setup.device)] = True
            setup.say(
                f"{context.key}: labels of {len(subset)} training images, weight {params.labelled_weight}"
            )

        def objective(
            logits: torch.Tensor, view: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor
        ) -> torch.Tensor:
            with torch.no_grad(), autocast(setup.device, setup.precision):
                teacher_logits = teacher(view)
            loss = distillation_loss(logits, teacher_logits.float(), params.temperature)
            if labelled is None:
                return loss  # the labels are not read
            mask = labelled[rows].float()
            cross_entropy = (
                F.cross_entropy(logits, labels, reduction="none") * mask
            ).sum() / mask.sum().clamp(min=1)
            return (1 - params.labelled_weight) * loss + params.labelled_weight * cross_entropy

        student = train_classifier(
            student_encoder,
            setup,
            params,
            checkpoint_dir=context.stage_dir / CHECKPOINTS_DIR / "student",
            label=f"{context.key} (student)",
            objective=objective,
        )
        metrics = classifier_test_accuracy(student, setup, params)
        teacher_metrics = classifier_test_accuracy(teacher, setup, params)
        directory = context.stage_dir / CLASSIFIER_DIR
        if setup.is_main:
            export_classifier(student, directory)
        setup.barrier()
        context.artifacts.setdefault(context.key, {}).update(classifier_files(directory))
        return {
            **metrics,
            **{f"teacher_{name}": value for name, value in teacher_metrics.items()},
            "student_parameters": sum(p.numel() for p in student.parameters()),
            "teacher_parameters": sum(p.numel() for p in teacher.parameters()),
        }

    def _teacher_directory(self, context: StageContext) -> tuple[Path, str]:
        where = f"stages[{context.index}].teacher"
        keys = stage_keys(context.recipe)
        exporters = {
            key: Path(artifacts["classifier_linear"]).parent
            for key, artifacts in context.artifacts.items()
            if key in keys[: context.index] and "classifier_linear" in artifacts
        }
        listed = f"Stages before this one that exported a classifier: {', '.join(exporters) or 'none'}."
        reference = self.params.teacher
        if reference is None:
            if not exporters:
                raise ContrastiveError(
                    f"{where}: no stage before this one exported a classifier; put a finetune or "
                    "semi_supervised stage before it, or set teacher to a classifier directory"
                )
            key = max(exporters, key=keys.index)
            return exporters[key], f"fine-tuned by stage {key!r} ({exporters[key]})"
        if reference in keys:
            if reference not in exporters:
                raise ContrastiveError(
                    f"{where} = {reference!r}: that stage exported no classifier before this one. {listed}"
                )
            return exporters[reference], f"fine-tuned by stage {reference!r} ({exporters[reference]})"
        path = Path(reference).expanduser()
        if not path.is_dir():
            raise ContrastiveError(
                f"{where} = {reference!r}: neither the key of a stage of this recipe nor a classifier "
                f"directory (looked for {path.resolve()}). {listed}"
            )
        return path, f"loaded from {path}"

    def _student_encoder(self, context: StageContext, setup: EvaluationSetup) -> Encoder:
        params = self.params
        if params.encoder is not None:
            source = resolve_encoder(params.encoder, context, random_fallback=False)
            setup.say(f"{context.key}: student starts from the encoder {source.description}")
            return source.encoder
        model = context.recipe.model
        table = (
            params.student if params.student is not None else (model.encoder if model is not None else None)
        )
        if table is None:
            raise ContrastiveError(
                f"stages[{context.index}].student: required when the recipe has no [model.encoder]"
            )
        encoder = random_init_like(table, context.registry, setup.seed)
        init = getattr(encoder.params, "init", None)
        if init is None:
            setup.say(f"{context.key}: student {encoder.name} at random initialisation (seed {setup.seed})")
            return encoder
        where = (
            f"stages[{context.index}].student.init" if params.student is not None else "model.encoder.init"
        )
        report = initialise_encoder(encoder, init, where=where)
        setup.say(f"{context.key}: student {encoder.name} initialised from its init file")
        for line in [report.summary(), *report.problems()]:
            setup.say(line)
        return encoder
