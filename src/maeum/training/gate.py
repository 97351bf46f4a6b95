"""The mirror gate of ``maeum export --tta gated``: which faces get a second pass on their mirror image.

A network's single pass is sure of most faces; averaging it with the mirror image's answer
(flip test-time augmentation) mostly changes the answers it is unsure of. The gate sends a face
through the mirror pass when its top probability is below ``flip_below``, chosen on the
validation split as the lowest threshold that scores as well as mirroring every face. Numpy
only: ``benchmarks/accuracy.py`` prints the same choice without torch.
"""

from __future__ import annotations

import logging

import numpy as np

from maeum.classify import mirror_gate

log = logging.getLogger(__name__)

# Thresholds tried, lowest first: 0.15, 0.20, ... 1.0.
FLIP_BELOW_CANDIDATES = tuple(round(0.15 + 0.05 * i, 2) for i in range(18))


def gated(single: np.ndarray, mirror: np.ndarray, flip_below: float) -> np.ndarray:
    """The probabilities a gate at ``flip_below`` serves, from the single pass over every face and the
    mirror images' probabilities (both (N, K))."""
    return np.where(mirror_gate(single, flip_below)[:, None], (single + mirror) / 2, single)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of ``probs`` (N, K) against class indices ``labels`` (N,), to 4 decimals."""
    return round(float((probs.argmax(1) == labels).mean()), 4)


def choose_flip_below(single: np.ndarray, mirror: np.ndarray, labels: np.ndarray) -> float:
    """The lowest of ``FLIP_BELOW_CANDIDATES`` at which the gate is as accurate on ``labels`` (the
    validation split) as averaging every face with its mirror; 1.0 when none is."""
    target = accuracy((single + mirror) / 2, labels)
    for flip_below in FLIP_BELOW_CANDIDATES:
        score = accuracy(gated(single, mirror, flip_below), labels)
        if score >= target:
            log.info(
                "mirror gate %.2f: validation accuracy %.4f (every face mirrored: %.4f)", flip_below, score, target
            )
            return flip_below
    return 1.0
