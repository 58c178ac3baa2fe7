"""SimCLRv2's last two steps: fine-tuned classifiers exported, and the ``distill`` stage.

The distillation loss against a plain float64 implementation of eq. 2; the exported classifier loads
back exactly; a student distilled without labels never reads them (the same student from a copy of the
data whose training labels are scrambled); with ``labelled_weight`` the labels count; clear errors.
"""

from __future__ import annotations

import gzip
import math
import shutil

import pytest
import torch

from contrastive_core.errors import ContrastiveError
from contrastive_plugins.stages.classifier_export import load_classifier
from contrastive_plugins.stages.distillation_loss import distillation_loss
from tests.stages.conftest import FASHION, recipe, run


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
@pytest.mark.parametrize(("batch", "classes"), [(1, 2), (5, 3), (7, 10)])
def test_the_distillation_loss_matches_eq_2(batch, classes, temperature):
    generator = torch.Generator().manual_seed(batch * classes)
    student = torch.randn(batch, classes, generator=generator, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(batch, classes, generator=generator, dtype=torch.float64)
    expected = 0.0
    for row in range(batch):
        t = [math.exp(float(v) / temperature) for v in teacher[row]]
        s = [math.exp(float(v) / temperature) for v in student[row]]
        expected -= sum(ti / sum(t) * math.log(si / sum(s)) for ti, si in zip(t, s, strict=True))
    loss = distillation_loss(student, teacher, temperature)
    assert loss.item() == pytest.approx(expected / batch, rel=1e-12)
    loss.backward()
    # d/ds of the soft cross-entropy: (softmax(s / tau) - softmax(t / tau)) / (tau B).
    gradient = (torch.softmax(student / temperature, 1) - torch.softmax(teacher / temperature, 1)) / (
        temperature * batch
    )
    torch.testing.assert_close(student.grad, gradient.detach(), rtol=1e-10, atol=1e-14)


FINETUNE = {"type": "finetune", "epochs": 2, "batch_size": 16, "lr": 0.05}
DISTILL = {"type": "distill", "epochs": 2, "batch_size": 16, "lr": 0.05}


def test_finetune_exports_its_classifier_and_distill_trains_a_student_from_it(registry, exported, tmp_path):
    stages = [{**FINETUNE, "encoder": str(exported)}, DISTILL]
    results, output = run(registry, recipe(*stages, with_model=True), tmp_path / "run")
    classifier = load_classifier(tmp_path / "run" / "finetune" / "classifier", registry)
    assert classifier.classifier.out_features == 10
    # The exported teacher reproduces the fine-tune stage's own test accuracy.
    assert results["distill"]["teacher_top1"] == results["finetune"]["top1"]
    assert 0 <= results["distill"]["top1"] <= 1 and results["distill"]["student_parameters"] > 0
    assert "teacher fine-tuned by stage 'finetune'" in output and "at random initialisation" in output
    assert (tmp_path / "run" / "distill" / "classifier" / "linear.safetensors").is_file()


def _scrambled_copy(destination):
    """The fixture with its training labels replaced by other classes (test labels intact)."""
    shutil.copytree(FASHION, destination)
    labels = next(destination.glob("train-labels*"))
    opener = gzip.open if labels.suffix == ".gz" else open
    with opener(labels, "rb") as file:
        data = bytearray(file.read())
    for index in range(8, len(data)):  # after the IDX header
        data[index] = (data[index] + 1 + index % 7) % 10
    with opener(labels, "wb") as file:
        file.write(bytes(data))
    return destination


def test_without_labelled_weight_the_training_labels_are_never_read(registry, exported, tmp_path):
    finetuned = run(
        registry, recipe({**FINETUNE, "encoder": str(exported)}, with_model=True), tmp_path / "teacher"
    )
    teacher = str(tmp_path / "teacher" / "finetune" / "classifier")
    scrambled = {"type": "fashion_mnist", "root": str(_scrambled_copy(tmp_path / "scrambled_data"))}
    tops = {}
    for name, data in (("intact", None), ("scrambled", scrambled)):
        stage = {**DISTILL, "teacher": teacher} | ({"data": data} if data else {})
        results, _ = run(registry, recipe(stage, with_model=True), tmp_path / name)
        tops[name] = results["distill"]
        student = load_classifier(tmp_path / name / "distill" / "classifier", registry)
        tops[name]["weights"] = [p.detach().clone() for p in student.parameters()]
    assert tops["intact"]["top1"] == tops["scrambled"]["top1"]
    assert all(
        torch.equal(a, b)
        for a, b in zip(tops["intact"]["weights"], tops["scrambled"]["weights"], strict=True)
    )
    # ...while with labelled_weight the scrambled labels do change the student.
    mixed = []
    for name, data in (("intact_mixed", None), ("scrambled_mixed", scrambled)):
        stage = {**DISTILL, "teacher": teacher, "labelled_weight": 0.5, "label_fraction": 0.2}
        run(registry, recipe(stage | ({"data": data} if data else {}), with_model=True), tmp_path / name)
        mixed.append(next(load_classifier(tmp_path / name / "distill" / "classifier", registry).parameters()))
    assert not torch.equal(mixed[0], mixed[1])
    assert finetuned[0]["finetune"]["top1"] >= 0


def test_distill_without_a_teacher_is_a_clear_error(registry, tmp_path):
    with pytest.raises(
        ContrastiveError, match=r"stages\[0\].teacher: no stage before this one exported a classifier"
    ):
        run(registry, recipe(DISTILL, with_model=True), tmp_path / "run")
    with pytest.raises(ContrastiveError, match="neither the key of a stage of this recipe nor a classifier"):
        run(registry, recipe({**DISTILL, "teacher": "nowhere"}, with_model=True), tmp_path / "run2")
