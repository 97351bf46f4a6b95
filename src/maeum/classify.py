"""Emotion classifiers: ONNX models whose labels, input and alignment travel in their metadata.

A maeum model carries one metadata entry, ``maeum``, holding JSON::

    {"name": ..., "labels": [...], "input": {"size": 48, "color": "gray", "mean": [..], "std": [..]},
     "template": [[x, y] * 5], "output": "probabilities" | "logits", ...}

``template`` gives where the five landmarks sit in the model's input crop. Nothing is guessed:
a file without this entry is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from maeum.errors import ModelError, UnknownNameError
from maeum.onnx_session import create_session
from maeum.preprocess import InputSpec, resize_crops, to_model_input
from maeum.progress import Progress
from maeum.results import Emotion

METADATA_KEY = "maeum"

# Models shipped inside the package: name -> file in maeum/models.
# ferplus-resnet-s-fast is the same network without the mirror pass: half the compute, about
# 0.5 points less accurate (src/maeum/models/MODEL_CARD.md).
BUNDLED_MODELS: dict[str, str] = {
    "ferplus-resnet-s": "ferplus_resnet_s.onnx",
    "ferplus-resnet-s-fast": "ferplus_resnet_s_fast.onnx",
}
DEFAULT_MODEL = "ferplus-resnet-s"

# Images per onnxruntime run when the caller names no batch size (a mirrored model runs each face
# twice, so half as many faces). Sessions have no memory arena (onnx_session.py), and larger runs
# allocate their activations afresh every time: runs of 256 faces (512 images with the mirrors)
# cost the bundled model about 15 % of its speed on a 2-core AVX2 EPYC (docs/benchmarks.md, "Runs
# of 128 faces"); the fast model, 256 images a run either way, did not change.
RUN_IMAGES = 256


@dataclass(frozen=True)
class ModelInfo:
    """Everything needed to feed a classifier and read its output, from its metadata."""

    name: str
    labels: tuple[str, ...]
    input: InputSpec
    template: np.ndarray  # (5, 2) landmark positions in input-crop pixels
    output: str  # "probabilities" or "logits"
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def mirrored(self) -> bool:
        """Whether the graph averages each face with its mirror image (``maeum export --tta``)."""
        return self.extra.get("tta") == "flip"

    def to_metadata(self) -> str:
        data = dict(self.extra)
        data.update(
            name=self.name,
            labels=list(self.labels),
            input=self.input.to_dict(),
            template=np.round(self.template, 3).tolist(),
            output=self.output,
        )
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_metadata(cls, text: str, source: str = "model") -> ModelInfo:
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError(f"a JSON object is expected, not {type(data).__name__}")
            labels = tuple(str(x) for x in data.pop("labels"))
            spec = InputSpec.from_dict(data.pop("input"))
            template = np.asarray(data.pop("template"), dtype=np.float64).reshape(5, 2)
            output = data.pop("output")
            name = str(data.pop("name"))
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise ModelError(
                f"{source}: malformed '{METADATA_KEY}' metadata ({e!r}); re-export the model with maeum"
            ) from None
        if output not in ("probabilities", "logits"):
            raise ModelError(f"{source}: metadata output must be 'probabilities' or 'logits', got {output!r}")
        if len(set(labels)) != len(labels) or not labels:
            raise ModelError(f"{source}: metadata labels must be unique and non-empty, got {labels}")
        return cls(name, labels, spec, template, output, data)


def list_models() -> list[str]:
    return sorted(BUNDLED_MODELS)


def resolve_model(model: str | Path) -> Path:
    """A bundled model's name, or a path to an ONNX file, to a file path."""
    if isinstance(model, str) and model in BUNDLED_MODELS:
        ref = resources.files("maeum.models") / BUNDLED_MODELS[model]
        return Path(str(ref))
    path = Path(model)
    if path.suffix.lower() == ".onnx" or path.exists():
        if path.is_dir():
            raise ModelError(f"model {path} is a folder; pass an .onnx file or a bundled model's name")
        if not path.is_file():
            raise ModelError(f"model file {path} not found")
        return path
    raise UnknownNameError("model", str(model), [*list_models(), "<path to a .onnx file>"])


class EmotionClassifier:
    """Runs an emotion ONNX model on aligned face crops."""

    def __init__(self, model: str | Path = DEFAULT_MODEL, threads: int | None = None) -> None:
        path = resolve_model(model)
        self._session = create_session(path, threads)
        meta = self._session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ModelError(
                f"{path}: no '{METADATA_KEY}' metadata, so its labels and input format are unknown; "
                "export it with maeum (see docs/training.md)"
            )
        self.info = ModelInfo.from_metadata(meta[METADATA_KEY], str(path))
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        expected = [self.info.input.channels, self.info.input.size, self.info.input.size]
        if [d if isinstance(d, int) else -1 for d in inp.shape[1:]] != expected:
            raise ModelError(f"{path}: input shape {inp.shape} disagrees with its metadata {expected}")
        classes = self._session.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(self.info.labels):
            raise ModelError(
                f"{path}: it outputs {classes} classes but its metadata names {len(self.info.labels)} labels "
                f"{list(self.info.labels)}; re-export it with maeum"
            )
        self.path = path
        self.batch_size = RUN_IMAGES // 2 if self.info.mirrored else RUN_IMAGES

    @property
    def labels(self) -> tuple[str, ...]:
        return self.info.labels

    @property
    def sha256(self) -> str:
        """The SHA-256 of the model file (read when asked, not at load)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def predict(self, faces: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities (N, K) for square uint8 crops (N, S, S, 3) or (N, S, S).

        Crops of another size than the model's are resized to it bilinearly (``resize_crops``).
        ``batch_size`` faces go through each onnxruntime run (default: ``self.batch_size``).
        """
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        batch_size = batch_size or self.batch_size
        size = self.info.input.size
        return np.concatenate(
            [
                self.predict_inputs(to_model_input(resize_crops(faces[i : i + batch_size], size), self.info.input))
                for i in range(0, len(faces), batch_size)
            ]
        )

    def predict_inputs(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (N, K) for a batch already in the model's input format (``to_model_input``'s output)."""
        (y,) = self._session.run(None, {self._input_name: x})
        y = y.astype(np.float32)
        if self.info.output == "logits":
            y = np.exp(y - y.max(1, keepdims=True))
            y /= y.sum(1, keepdims=True)
        return y

    def predict_mirrored(self, faces: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """The mean of ``predict`` on the crops and on their mirror images (flip test-time augmentation)."""
        mirrored = np.ascontiguousarray(faces[:, :, ::-1])  # (N, S, S[, 3]): axis 2 is x
        return (self.predict(faces, batch_size) + self.predict(mirrored, batch_size)) / 2

    def predict_many(self, faces: np.ndarray, batch_size: int | None = None, mirrored: bool = False) -> np.ndarray:
        """``predict`` (``predict_mirrored`` when ``mirrored``) batch by batch, with a progress bar on a terminal.

        A model with the mirror pass in its graph (``info.mirrored``) already gives the mirrored
        answer, so ``mirrored`` runs no second pass for it."""
        predict = self.predict_mirrored if mirrored and not self.info.mirrored else self.predict
        batch_size = batch_size or self.batch_size
        progress = Progress(len(faces), "faces")
        out = [np.zeros((0, len(self.labels)), np.float32)]
        try:
            for i in range(0, len(faces), batch_size):
                out.append(predict(faces[i : i + batch_size], batch_size))
                progress.update(i + len(out[-1]), i + len(out[-1]))
        finally:
            progress.close()
        return np.concatenate(out)

    def classify(self, faces: np.ndarray) -> list[Emotion]:
        return [Emotion.from_probs(self.labels, p.tolist()) for p in self.predict(faces)]
