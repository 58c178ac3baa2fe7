"""SimCLRv2's distillation loss (Chen, Kornblith, Swersky, Norouzi, Hinton 2020, arXiv:2006.10029, eq. 2).

With the teacher's logits t and the student's s over the K classes of an image, and a temperature tau,

    L = - sum_y P_T(y | x; tau) log P_S(y | x; tau),    P(y | x; tau) = softmax(logits / tau)_y,

averaged over the images; the teacher's probabilities are fixed targets (no gradient). The paper uses
tau = 1 and trains on unlabelled images only; with labels, its eq. 3 adds (1 - alpha) times the
labels' cross-entropy (``labelled_weight`` of the ``distill`` stage).
"""

from __future__ import annotations

import torch


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """student_logits, teacher_logits: (B, K) -> 0-d: the mean over rows of the cross-entropy between the
    teacher's and the student's temperature-scaled predictions (computed in at least float32)."""
    if student_logits.shape != teacher_logits.shape or student_logits.ndim != 2:
        raise ValueError(
            f"distillation needs (B, K) student and teacher logits of one shape, got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    dtype = torch.promote_types(student_logits.dtype, torch.float32)
    targets = torch.softmax(teacher_logits.detach().to(dtype) / temperature, dim=1)
    log_predictions = torch.log_softmax(student_logits.to(dtype) / temperature, dim=1)
    return -(targets * log_predictions).sum(dim=1).mean()
