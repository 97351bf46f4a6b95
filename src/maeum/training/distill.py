"""Knowledge distillation: a trained model's answers become part of the training targets.

The teacher is a bundled model name, an exported ``.onnx`` such as an ensemble from ``maeum
ensemble``, a ``best.pt``, or several of these averaged. Its probabilities, softened by a
temperature, are mixed into the targets: ``(1 - weight) * labels + weight * teacher``. The
student ships alone: the teacher's size and speed do not follow it. The teacher answers in
one of two ways (``teacher_mode``):

- ``once``: it classifies every training crop before the first epoch, each averaged with its
  mirror image because training flips faces (``teacher_probabilities``). The student then
  trains at the cost of a run without a teacher, but an augmented or mixed crop gets the
  answer for the clean one.
- ``batch``: it classifies every training batch, the very inputs the student sees after
  augmentation and mixing (``BatchTeacher``), so the targets always describe the input
  ("consistent teaching"). Each step also pays for the teacher's forward pass.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from maeum.classify import EmotionClassifier
from maeum.errors import ConfigError, UnknownNameError
from maeum.preprocess import LUMA, InputSpec, resize_crops
from maeum.training.config import teacher_names

__all__ = ["BatchTeacher", "check_teachers", "mix_targets", "teacher_probabilities"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Teacher:
    """One loaded teacher: its input, which of its outputs are the data's classes, and two ways to ask it."""

    name: str
    spec: InputSpec
    columns: list[int]  # its output column of each of the data's labels, in their order
    on_crops: Callable[[np.ndarray], np.ndarray]  # uint8 crops at spec.size -> (N, K) probabilities, with mirrors
    on_inputs: Callable[[torch.Tensor], np.ndarray]  # a normalised batch in spec -> (B, K) probabilities

    def select(self, probs: np.ndarray) -> np.ndarray:
        """The data's classes of its answers (B, K), renormalised."""
        probs = probs[:, self.columns]
        return probs / probs.sum(1, keepdims=True)


def check_teachers(teacher: str) -> None:
    """Open each teacher, so that a file that is no model or an unknown name is refused before the data is
    read; whether it knows the data's classes is checked when it is loaded to answer."""
    from maeum.training.checkpoint import read_checkpoint

    for name in teacher_names(teacher):
        if name.endswith(".pt"):
            read_checkpoint(name)
        else:
            _classifier(name, threads=1)


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
    answers = []
    for name in teacher_names(teacher):
        one = _load_teacher(name, labels, threads, device)
        log.info("teacher %s: classifying %d training crops and their mirrors", one.name, len(images))
        answers.append(one.select(one.on_crops(resize_crops(images, one.spec.size))))
    return _soften(np.mean(answers, axis=0), temperature)


class BatchTeacher:
    """The teachers asked on each training batch, on the inputs the student sees (``teacher_mode: batch``).

    Built before the first epoch, so a teacher that does not know the data's classes is refused
    then. Calling it with a batch in the student's input format ``spec`` returns the averaged,
    softened probabilities (B, K) in the order of ``labels``, on the batch's device. A teacher
    with another input size, colour or normalisation gets the batch converted in floating point
    (bilinear resizing, BT.601 luma for gray), with no rounding to 8 bits between.
    """

    def __init__(
        self,
        teacher: str,
        labels: tuple[str, ...],
        spec: InputSpec,
        temperature: float = 1.0,
        threads: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.teachers = [_load_teacher(name, labels, threads, device) for name in teacher_names(teacher)]
        self.spec, self.temperature = spec, temperature
        for one in self.teachers:
            log.info("teacher %s: asked on every training batch", one.name)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        answers = [one.select(one.on_inputs(convert_inputs(x, self.spec, one.spec))) for one in self.teachers]
        return torch.from_numpy(_soften(np.mean(answers, axis=0), self.temperature)).to(x.device)


def convert_inputs(x: torch.Tensor, source: InputSpec, target: InputSpec) -> torch.Tensor:
    """A normalised batch (B, C, S, S) in ``source``'s format, in ``target``'s: colour, size and normalisation."""
    if source == target:
        return x
    x = x.float() * _per_channel(source.std, x) + _per_channel(source.mean, x)  # pixel values, 0 to 1
    if source.color == "gray" and target.color == "rgb":
        x = x.expand(-1, 3, -1, -1)
    elif source.color == "rgb" and target.color == "gray":
        x = (x * _per_channel(LUMA.tolist(), x)).sum(1, keepdim=True)
    if target.size != source.size:
        x = F.interpolate(x, size=(target.size, target.size), mode="bilinear", align_corners=False, antialias=True)
    return (x - _per_channel(target.mean, x)) / _per_channel(target.std, x)


def _per_channel(values: list[float] | tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=like.device).view(1, -1, 1, 1)


def _soften(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``p ** (1 / temperature)`` renormalised per row: ``softmax(logits / temperature)``."""
    if temperature != 1.0:
        probs = np.exp(np.log(np.maximum(probs, 1e-12)) / temperature)
    return (probs / probs.sum(1, keepdims=True)).astype(np.float32)


def _load_teacher(teacher: str, labels: tuple[str, ...], threads: int | None, device: str | torch.device) -> _Teacher:
    if teacher.endswith(".pt"):
        from maeum.training.trainer import load_checkpoint, predict  # the trainer imports this module

        model, spec, state = load_checkpoint(Path(teacher))
        model.to(device)
        known, name = tuple(state["labels"]), f"{state['config']['model']} ({teacher})"

        def on_crops(crops: np.ndarray) -> np.ndarray:
            mirrored = np.ascontiguousarray(crops[:, :, ::-1])
            return (predict(model, crops, spec) + predict(model, mirrored, spec)) / 2

        def on_inputs(x: torch.Tensor) -> np.ndarray:
            return F.softmax(model(x.to(next(model.parameters()).device)).float(), 1).cpu().numpy()
    else:
        clf = _classifier(teacher, threads)
        spec, known, name = clf.info.input, clf.labels, clf.info.name

        def on_crops(crops: np.ndarray) -> np.ndarray:
            return clf.predict_many(crops, mirror=True)

        def on_inputs(x: torch.Tensor) -> np.ndarray:
            return clf.predict_inputs(np.ascontiguousarray(x.float().cpu().numpy()))

    missing = [label for label in labels if label not in known]
    if missing:
        raise ConfigError(
            f"teacher {teacher} does not know the class(es) {', '.join(missing)} of this data "
            f"(its labels: {', '.join(known)}); pick a teacher trained on the same classes"
        )
    return _Teacher(name, spec, [known.index(label) for label in labels], on_crops, on_inputs)


def _classifier(teacher: str, threads: int | None) -> EmotionClassifier:
    try:
        return EmotionClassifier(teacher, threads=threads)
    except UnknownNameError as e:
        raise UnknownNameError("teacher", teacher, [*e.known, "<a run's best.pt>"]) from None


def mix_targets(targets: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * targets + weight * teacher``, both (N, K) probability rows."""
    if targets.shape != teacher.shape:
        raise ValueError(f"targets {targets.shape} and teacher probabilities {teacher.shape} differ in shape")
    return ((1.0 - weight) * targets + weight * teacher).astype(np.float32)
