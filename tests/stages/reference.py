"""Plain, independent reimplementations the tests compare the stages with: loops and argsorts in numpy,
sharing no code with the stages."""

from __future__ import annotations

import math

import numpy as np
import torch

from contrastive_core.engine import load_encoder


def plain_features(registry, encoder_dir, images: torch.Tensor, mean=None, std=None) -> np.ndarray:
    """Features (N, d) of uint8 images (N, C, H, W): scale to [0, 1], optionally standardise, encode."""
    encoder = load_encoder(encoder_dir, registry=registry).eval()
    x = images.double() / 255.0
    if mean is not None:
        x = (x - torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1)) / torch.tensor(
            std, dtype=torch.float64
        ).view(1, -1, 1, 1)
    with torch.no_grad():
        return encoder(x.float()).double().numpy()


def plain_top_k(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose label is among the k largest scores (descending argsort)."""
    hits = 0
    for row, label in zip(scores, labels, strict=True):
        ranked = np.argsort(-row, kind="stable")[:k]
        hits += int(label in ranked)
    return hits / len(labels)


def plain_knn_votes(
    train: np.ndarray,
    train_labels: np.ndarray,
    test: np.ndarray,
    num_classes: int,
    k: int,
    temperature: float,
) -> np.ndarray:
    """Weighted kNN votes, one query at a time: cosine similarity, k largest, exp(s / T) per class."""
    votes = np.zeros((len(test), num_classes))
    for q, query in enumerate(test):
        sims = []
        for i, sample in enumerate(train):
            cosine = float(query @ sample) / (np.linalg.norm(query) * np.linalg.norm(sample))
            sims.append((cosine, i))
        sims.sort(reverse=True)
        for cosine, i in sims[:k]:
            votes[q, train_labels[i]] += math.exp(cosine / temperature)
    return votes
