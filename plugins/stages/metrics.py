"""Top-k accuracy: the seed's Acc@1 and Acc@5, accumulated over batches on the device.

``Acc@k = (1/N) sum_i 1[y_i in top-k(p_i)]`` where ``p_i`` are the scores of example i over the
classes (logits, probabilities or kNN votes: only their order matters). Values are fractions in [0, 1].
"""

from __future__ import annotations

import torch

#: The k of the reported accuracies: metric names are ``top1`` and ``top5``.
TOP_K = (1, 5)


def correct_in_top_k(scores: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Whether each label is among the k highest scores: scores (B, C), labels (B,) -> bool (B,).

    With fewer than k classes every label is in the top k (k is clipped to C). Among tied scores
    ``torch.topk`` picks an arbitrary subset, as any argmax does.
    """
    k = min(k, scores.shape[1])
    top = scores.topk(k, dim=1).indices  # (B, k)
    return (top == labels.unsqueeze(1)).any(dim=1)


class TopKAccuracy:
    """Counts correct top-k predictions over batches; :meth:`compute` gives ``{"top1": .., "top5": ..}``.

    The counts stay on the scores' device, so updating does not wait for the device.
    """

    def __init__(self, ks: tuple[int, ...] = TOP_K) -> None:
        self.ks = ks
        self.correct: dict[int, torch.Tensor] = {}
        self.total = 0

    def update(self, scores: torch.Tensor, labels: torch.Tensor) -> None:
        """scores (B, C), labels (B,) int64 on the same device."""
        for k in self.ks:
            hits = correct_in_top_k(scores, labels, k).sum()
            self.correct[k] = self.correct[k] + hits if k in self.correct else hits
        self.total += labels.shape[0]

    def compute(self) -> dict[str, float]:
        if self.total == 0:
            raise ValueError("no examples were counted")
        return {f"top{k}": float(self.correct[k]) / self.total for k in self.ks}
