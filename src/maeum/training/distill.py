"""Knowledge distillation: a trained model's answers become part of the training targets.

The teacher (a bundled model name, an exported ``.onnx`` such as an ensemble from ``maeum
ensemble``, a ``best.pt``, or several of these averaged) classifies every training crop once,
before the first epoch, averaged with its mirror image because training flips faces. Its
probabilities, softened by a temperature, are mixed into the targets:
``(1 - weight) * labels + weight * teacher``. The student then trains exactly as without a
teacher, at the same cost per epoch, and ships alone: the teacher's size and speed do not
follow it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from maeum.classify import EmotionClassifier
from maeum.errors import ConfigError
from maeum.preprocess import resize_crops
from maeum.training.config import teacher_names

__all__ = ["mix_targets", "teacher_probabilities"]

log = logging.getLogger(__name__)


def teacher_probabilities(
    teacher: str,
    images: np.ndarray,
    labels: tuple[str, ...],
    temperature: float = 1.0,
    threads: int | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """The teacher's probabilities (N, K) for uint8 crops, columns in the order of ``labels``.

    ``teacher`` is one model or several separated by commas, each a bundled model name, an
    exported ``.onnx`` (run by onnxruntime with ``threads``) or a ``best.pt`` of ``maeum train``
    (run by torch on ``device``); several teachers' probabilities are averaged. Each crop's answer
    is the mean over the crop and its mirror, then softened: ``p ** (1 / temperature)``
    renormalised, which is ``softmax(logits / temperature)``. Refused when a teacher does not
    know one of ``labels``.
    """
    probs = np.mean([_one_teacher(name, images, labels, threads, device) for name in teacher_names(teacher)], axis=0)
    if temperature != 1.0:
        probs = np.exp(np.log(np.maximum(probs, 1e-12)) / temperature)
    return (probs / probs.sum(1, keepdims=True)).astype(np.float32)


def _one_teacher(
    teacher: str, images: np.ndarray, labels: tuple[str, ...], threads: int | None, device: str | torch.device
) -> np.ndarray:
    if teacher.endswith(".pt"):
        from maeum.training.trainer import load_checkpoint, predict  # the trainer imports this module

        model, spec, state = load_checkpoint(Path(teacher))
        model.to(device)
        known, name = tuple(state["labels"]), f"{state['config']['model']} ({teacher})"

        def answer(crops: np.ndarray) -> np.ndarray:
            mirrored = np.ascontiguousarray(crops[:, :, ::-1])
            return (predict(model, crops, spec) + predict(model, mirrored, spec)) / 2
    else:
        clf = EmotionClassifier(teacher, threads=threads)
        spec, known, name = clf.info.input, clf.labels, clf.info.name

        def answer(crops: np.ndarray) -> np.ndarray:
            return clf.predict_many(crops, mirrored=True)

    missing = [label for label in labels if label not in known]
    if missing:
        raise ConfigError(
            f"teacher {teacher} does not know the class(es) {', '.join(missing)} of this data "
            f"(its labels: {', '.join(known)}); pick a teacher trained on the same classes"
        )
    images = resize_crops(images, spec.size)
    log.info("teacher %s: classifying %d training crops and their mirrors", name, len(images))
    probs = answer(images)[:, [known.index(label) for label in labels]]
    return probs / probs.sum(1, keepdims=True)


def mix_targets(targets: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * targets + weight * teacher``, both (N, K) probability rows."""
    if targets.shape != teacher.shape:
        raise ValueError(f"targets {targets.shape} and teacher probabilities {teacher.shape} differ in shape")
    return ((1.0 - weight) * targets + weight * teacher).astype(np.float32)
