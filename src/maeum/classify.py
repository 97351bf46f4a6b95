"""Emotion classifiers: ONNX models whose labels, input and alignment travel in their metadata.

A maeum model carries one metadata entry, ``maeum``, holding JSON::

    {"name": ..., "labels": [...], "input": {"size": 48, "color": "gray", "mean": [..], "std": [..]},
     "template": [[x, y] * 5], "output": "probabilities" | "logits", ...}

``template`` gives where the five landmarks sit in the model's input crop. Nothing is guessed:
a file without this entry is refused. Two optional entries say how the mirror image is used
(flip test-time augmentation): ``"tta": "flip"``, the graph averages every face with its mirror;
``"tta": "flip-gated"`` with ``"flip_below": p``, the classifier runs the mirror pass for the faces
whose top probability is below ``p`` and averages those two answers (``maeum export --tta gated``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np

from maeum.errors import ModelError, UnknownNameError
from maeum.onnx_session import create_session
from maeum.preprocess import InputSpec, resize_crops, to_model_input
from maeum.progress import Progress
from maeum.results import Emotion

METADATA_KEY = "maeum"


@dataclass(frozen=True)
class BundledModel:
    """A model shipped inside the package: its file in maeum/models, and whether its mirror gate runs."""

    file: str
    gated: bool = True


# ferplus-resnet-s-fast is the same file with its mirror gate off: one pass per face, about 0.5
# points less accurate (src/maeum/models/MODEL_CARD.md).
BUNDLED_MODELS: dict[str, BundledModel] = {
    "ferplus-resnet-s": BundledModel("ferplus_resnet_s.onnx"),
    "ferplus-resnet-s-fast": BundledModel("ferplus_resnet_s.onnx", gated=False),
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

    @property
    def flip_below(self) -> float | None:
        """The top probability below which a face is averaged with its mirror (``maeum export --tta gated``)."""
        value = self.extra.get("flip_below") if self.extra.get("tta") == "flip-gated" else None
        return float(value) if isinstance(value, (int, float)) else None

    def without_gate(self, name: str) -> ModelInfo:
        """This model as one pass per face, named ``name``: its scores are those of its single pass."""
        single = self.extra.get("single_pass")
        drop = ("tta", "flip_below", "single_pass")
        extra = {k: v for k, v in self.extra.items() if k not in drop} | (single if isinstance(single, dict) else {})
        return replace(self, name=name, extra=extra)

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
        info = cls(name, labels, spec, template, output, data)
        gate = data.get("flip_below")
        if data.get("tta") == "flip-gated" and not (isinstance(gate, (int, float)) and 0 < gate <= 1):
            raise ModelError(f"{source}: metadata flip_below must be a probability in (0, 1], got {gate!r}")
        return info


def list_models() -> list[str]:
    return sorted(BUNDLED_MODELS)


def resolve_model(model: str | Path) -> Path:
    """A bundled model's name, or a path to an ONNX file, to a file path."""
    if not isinstance(model, (str, Path)):
        raise TypeError(
            f"model must be a bundled model's name ({', '.join(list_models())}) or a path to an .onnx file, "
            f"not {type(model).__name__}"
        )
    if isinstance(model, str) and model in BUNDLED_MODELS:
        ref = resources.files("maeum.models") / BUNDLED_MODELS[model].file
        return Path(str(ref))
    path = Path(model)
    if path.suffix.lower() == ".onnx" or path.exists():
        if path.is_dir():
            raise ModelError(f"model {path} is a folder; pass an .onnx file or a bundled model's name")
        if not path.is_file():
            raise ModelError(f"model file {path} not found")
        if path.suffix.lower() in (".pt", ".pth", ".ckpt"):
            raise ModelError(
                f"model {path} is a training checkpoint; export it first: maeum export {path} --out MODEL.onnx"
            )
        return path
    raise UnknownNameError("model", str(model), [*list_models(), "<path to a .onnx file>"])


class EmotionClassifier:
    """Runs an emotion ONNX model on aligned face crops.

    ``flip_below`` is the mirror gate: faces whose top probability is below it are averaged with
    their mirror image (the model's ``flip_below`` metadata; None for one pass per face). Set it to
    trade speed for accuracy: 0 mirrors no face, anything above 1 every face.
    """

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
        bundled = BUNDLED_MODELS.get(model) if isinstance(model, str) else None
        if bundled is not None and not bundled.gated:
            self.info = self.info.without_gate(str(model))
        self.flip_below: float | None = self.info.flip_below
        self.path = path
        self.batch_size = RUN_IMAGES // 2 if self.info.mirrored else RUN_IMAGES

    @property
    def labels(self) -> tuple[str, ...]:
        return self.info.labels

    @property
    def sha256(self) -> str:
        """The SHA-256 of the model file (read when asked, not at load)."""
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def predict(self, faces: np.ndarray, batch_size: int | None = None, mirror: bool | None = None) -> np.ndarray:
        """Class probabilities (N, K) for square uint8 crops (N, S, S, 3) or (N, S, S).

        Crops of another size than the model's are resized to it bilinearly (``resize_crops``).
        ``batch_size`` faces go through each onnxruntime run (default: ``self.batch_size``).
        ``mirror``: None answers as the model is served (``predict_inputs``), True averages every
        face with its mirror image, False gives one pass per face.
        """
        _check_faces(faces)
        if len(faces) == 0:
            return np.zeros((0, len(self.labels)), np.float32)
        batch_size = batch_size or self.batch_size
        size = self.info.input.size
        return np.concatenate(
            [
                self.predict_inputs(
                    to_model_input(resize_crops(faces[i : i + batch_size], size), self.info.input), mirror
                )
                for i in range(0, len(faces), batch_size)
            ]
        )

    def predict_inputs(self, x: np.ndarray, mirror: bool | None = None) -> np.ndarray:
        """Class probabilities (N, K) for a batch already in the model's input format (``to_model_input``'s output).

        ``mirror`` as in ``predict``. A model that averages with the mirror inside its graph has no
        single pass (False is refused) and needs no second one (True runs none).
        """
        if self.info.mirrored:
            if mirror is False:
                raise ModelError(f"{self.info.name} averages each face with its mirror inside its graph")
            return self._run(x)
        probs = self._run(x)
        if mirror is False:
            return probs
        gate = np.ones(len(x), bool) if mirror else mirror_gate(probs, self.flip_below)
        if gate.any():
            mirrored = np.ascontiguousarray(x[gate][:, :, :, ::-1])  # (n, C, S, S): axis 3 is x
            probs[gate] = (probs[gate] + self._run(mirrored)) / 2
        return probs

    def _run(self, x: np.ndarray) -> np.ndarray:
        """One pass of the graph: probabilities (N, K)."""
        (y,) = self._session.run(None, {self._input_name: x})
        y = y.astype(np.float32)
        if self.info.output == "logits":
            y = np.exp(y - y.max(1, keepdims=True))
            y /= y.sum(1, keepdims=True)
        return y

    def predict_many(self, faces: np.ndarray, batch_size: int | None = None, mirror: bool | None = None) -> np.ndarray:
        """``predict`` batch by batch, with a progress bar on a terminal."""
        batch_size = batch_size or self.batch_size
        progress = Progress(len(faces), "faces")
        out = [np.zeros((0, len(self.labels)), np.float32)]
        try:
            for i in range(0, len(faces), batch_size):
                out.append(self.predict(faces[i : i + batch_size], batch_size, mirror))
                progress.update(i + len(out[-1]), i + len(out[-1]))
        finally:
            progress.close()
        return np.concatenate(out)

    def classify(self, faces: np.ndarray) -> list[Emotion]:
        return [Emotion.from_probs(self.labels, p.tolist()) for p in self.predict(faces)]


def _check_faces(faces: object) -> None:
    """Refuse what ``predict`` cannot read with a message that says what to pass (before any resizing)."""
    if not isinstance(faces, np.ndarray):
        hint = "; for a list of equal-size crops pass np.stack(crops)" if isinstance(faces, (list, tuple)) else ""
        raise TypeError(f"faces must be a uint8 numpy array (N, S, S[, 3]), got {type(faces).__name__}{hint}")
    if faces.dtype != np.uint8:
        raise TypeError(f"faces must be uint8, got {faces.dtype}; scale to 0-255 and .astype(np.uint8)")
    if faces.ndim == 2 or (faces.ndim == 3 and faces.shape[2] in (3, 4) and faces.shape[1] != faces.shape[2]):
        raise ValueError(f"faces must be a batch (N, S, S[, 3]), got one crop of shape {faces.shape}; pass faces[None]")


def mirror_gate(probs: np.ndarray, flip_below: float | None) -> np.ndarray:
    """Which faces a mirror gate sends through the mirror pass: top probability below ``flip_below``."""
    if flip_below is None:
        return np.zeros(len(probs), bool)
    return probs.max(1) < flip_below
