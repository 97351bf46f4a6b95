"""Knowledge distillation: a trained model's answers become part of the training targets.

The teacher (a bundled model name or an exported ``.onnx``, typically an ensemble from
``maeum ensemble``) classifies every training crop once, before the first epoch, averaged
with its mirror image because training flips faces. Its probabilities, softened by a
temperature, are mixed into the targets: ``(1 - weight) * labels + weight * teacher``. The
student then trains exactly as without a teacher, at the same cost per epoch, and ships
alone: the teacher's size and speed do not follow it.
"""

from __future__ import annotations

import logging

import numpy as np

from maeum.align import square_crop
from maeum.classify import EmotionClassifier
from maeum.errors import ConfigError

__all__ = ["mix_targets", "teacher_probabilities"]

log = logging.getLogger(__name__)


def teacher_probabilities(
    teacher: str, images: np.ndarray, labels: tuple[str, ...], temperature: float = 1.0, threads: int | None = None
) -> np.ndarray:
    """The teacher's probabilities (N, K) for uint8 crops, columns in the order of ``labels``.

    Each crop's answer is the mean over the crop and its mirror, then softened:
    ``p ** (1 / temperature)`` renormalised, which is ``softmax(logits / temperature)``.
    Refused when the teacher does not know one of ``labels``.
    """
    clf = EmotionClassifier(teacher, threads=threads)
    missing = [name for name in labels if name not in clf.labels]
    if missing:
        raise ConfigError(
            f"teacher {teacher} does not know the class(es) {', '.join(missing)} of this data "
            f"(its labels: {', '.join(clf.labels)}); pick a teacher trained on the same classes"
        )
    size = clf.info.input.size
    if images.shape[1] != size:
        images = np.stack([square_crop(c, size) for c in images])
    log.info("teacher %s: classifying %d training crops and their mirrors", clf.info.name, len(images))
    probs = clf.predict_many(images, mirrored=True)
    probs = probs[:, [clf.labels.index(name) for name in labels]]
    if temperature != 1.0:
        probs = np.exp(np.log(np.maximum(probs, 1e-12)) / temperature)
    return (probs / probs.sum(1, keepdims=True)).astype(np.float32)


def mix_targets(targets: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * targets + weight * teacher``, both (N, K) probability rows."""
    if targets.shape != teacher.shape:
        raise ValueError(f"targets {targets.shape} and teacher probabilities {teacher.shape} differ in shape")
    return ((1.0 - weight) * targets + weight * teacher).astype(np.float32)
