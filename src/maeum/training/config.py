"""``TrainConfig``: every setting of a training run, and the recipe files that hold them.

A recipe is a YAML (or JSON) mapping of ``TrainConfig`` fields; the ``config.json`` that
``maeum train`` writes into its run folder is one too, so a run can be repeated from it.
Settings are layered: the dataclass defaults, then the file, then explicit command-line
flags, then ``--set key=value``. Nothing here imports torch.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from maeum.errors import ConfigError, MissingFileError
from maeum.preprocess import InputSpec

# The choices of each choice-valued setting; the first one is the default.
CHOICES: dict[str, tuple[str, ...]] = {
    # soft: annotator vote distribution; majority: one-hot majority; fer2013: the original FER2013 labels
    # of the FER+ folder's images (the FER2013 protocol: select on PublicTest, report PrivateTest)
    "labels": ("soft", "majority", "fer2013"),
    # sgd: Nesterov momentum; adam, adamw: betas (momentum, 0.999); adadelta: rho = momentum (lr 1.0 is usual)
    "optimizer": ("sgd", "adamw", "adam", "adadelta"),
    "schedule": ("cosine", "step", "onecycle", "constant"),
    "class_weights": ("none", "balanced"),  # balanced: loss weights inversely proportional to class frequency
    "sampler": ("random", "balanced"),  # balanced: draw every class equally often (with replacement)
    "device": ("auto", "cpu", "cuda"),  # auto: the GPU when one is visible, else the CPU
    # once: the teacher classifies the clean training crops before the first epoch; batch: every
    # augmented (and mixed) batch, the inputs the student sees (maeum.training.distill)
    "teacher_mode": ("once", "batch"),
}
_AT_LEAST: dict[str, float] = {
    "epochs": 1,
    "batch_size": 1,
    "threads": 1,
    "lr": 0,
    "momentum": 0,
    "weight_decay": 0,
    "warmup_epochs": 0,
    "early_stopping": 0,
    "gpu": 0,
    "workers": 0,
    "svm_c": 1e-9,
    "teacher_weight": 0,
    "teacher_temperature": 0.01,
    "ema": 0,
    "label_smoothing": 0,
    "mixup": 0,
    "cutmix": 0,
    "sam": 0,
    "seed": 0,
}
_INPUT_KEYS = ("size", "color", "mean", "std")
_TYPES: dict[str, tuple[type, str]] = {
    "int": (int, "an integer"),
    "float": (float, "a number"),
    "bool": (bool, "true or false"),
    "str": (str, "a string"),
}


@dataclass
class TrainConfig:
    data: str  # FER+ folder (with fer2013new.csv), or a manifest from `maeum data prepare` (file or folder)
    out: str  # run folder: config.json, metrics.csv, summary.json, best.pt, last.pt
    model: str = "resnet_s"
    labels: str = "soft"  # "soft": annotator vote distribution; "majority": one-hot majority
    epochs: int = 80
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9  # SGD momentum, AdamW beta1
    weight_decay: float = 5e-4  # not on biases and norms
    schedule: str = "cosine"
    warmup_epochs: float = 1.0  # linear warm-up before cosine, step and constant (onecycle has its own)
    early_stopping: int = 0  # stop after this many epochs without a better valid accuracy; 0: never
    class_weights: str = "none"
    sampler: str = "random"
    seed: int = 0
    threads: int = 2
    workers: int = 0  # processes preparing augmented batches beside the training loop; 0: in the loop
    device: str = "auto"
    gpu: int = 0  # which GPU with device cuda (under torchrun each process takes its LOCAL_RANK)
    # Mixed precision: bfloat16 autocast (on the CPU about 2x faster on AVX-512 BF16 machines; on
    # GPUs without bfloat16, float16 with loss scaling).
    bf16: bool = True
    tensorboard: bool = True  # also log the metrics as TensorBoard events in OUT/tensorboard
    input: dict[str, object] = field(default_factory=lambda: {"size": 48, "color": "gray", "mean": [0.5], "std": [0.5]})
    svm_c: float = 0.001  # hog_svm only: the SVM's C (smaller: wider margin); see maeum.training.svm
    init: str = ""  # fine-tune from this checkpoint (same architecture and input; of other labels, the shared classes)
    # or, for face_resnet and face_mobilenet, from weights learned on faces (TFJS_INITS, maeum.training.tfjs)
    # Distillation (maeum.training.distill): a model name or .onnx, e.g. an ensemble, whose answers on the
    # training crops are mixed into the targets with this weight, softened by this temperature.
    teacher: str = ""
    teacher_weight: float = 0.5
    teacher_temperature: float = 1.0
    teacher_mode: str = "once"
    # Weight averaging: after every step ema = decay * ema + (1 - decay) * weights (batch-norm statistics
    # too); the averaged weights are validated and shipped in best.pt. 0: off.
    ema: float = 0.0
    # Every target becomes (1 - label_smoothing) * target + label_smoothing / classes. 0: off.
    label_smoothing: float = 0.0
    # Mixing crops (maeum.training.loader.mix): the alpha of the Beta(alpha, alpha) each crop's own share
    # is drawn from; mixup blends two whole crops, cutmix pastes a box of one into the other; targets
    # are mixed in the same share. With both on, each batch takes one. 0: off.
    mixup: float = 0.0
    cutmix: float = 0.0
    # Sharpness-aware minimization (Foret et al. 2021): each step first moves the weights this far (L2 norm)
    # up their gradient and steps with the gradient found there, about twice the step's cost. 0: off.
    sam: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            # Paths become strings and integers floats (`lr: 1`), so config.json stays plain.
            if f.type == "str" and isinstance(value, os.PathLike):
                value = os.fspath(value)
                setattr(self, f.name, value)
            elif f.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                setattr(self, f.name, value)
            kind, described = _TYPES.get(str(f.type), (dict, "a mapping"))
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise ConfigError(f"{f.name} must be {described}, got {value!r}")
            if kind is float and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value!r}")
            if f.name in CHOICES and value not in CHOICES[f.name]:
                raise ConfigError(f"{f.name} must be one of {', '.join(CHOICES[f.name])}; got {value!r}")
            if f.name in _AT_LEAST and value < _AT_LEAST[f.name]:
                raise ConfigError(f"{f.name} must be at least {_AT_LEAST[f.name]:g}, got {value!r}")
        if self.momentum >= 1:
            raise ConfigError(f"momentum must be below 1, got {self.momentum!r}")
        _check_keys(self.input, _INPUT_KEYS, "input.")
        try:
            InputSpec.from_dict(self.input)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(
                f"input {self.input}: {e}; give size, color (gray or rgb) and per-channel mean and std"
            ) from None
        if not self.data or not self.out:
            raise ConfigError("data and out must be set: pass --data and --out, or write them in the config file")
        if Path(self.out).exists() and not Path(self.out).is_dir():
            raise ConfigError(f"out {self.out} is a file; pass a folder for the run (new, or a run to resume)")
        data_folder = Path(self.data).parent if Path(self.data).suffix == ".parquet" else Path(self.data)
        if Path(self.out).resolve() == data_folder.resolve():  # the run's summary.json would replace the data's
            raise ConfigError(
                f"out {self.out} is the data folder; pass a folder of its own for the run, e.g. runs/NAME"
            )
        if self.teacher and self.model == "hog_svm":
            raise ConfigError("hog_svm fits hard labels; a teacher needs a network model")
        if self.ema >= 1:
            raise ConfigError(f"ema must be below 1 (a decay such as 0.999), got {self.ema!r}")
        if self.ema and self.model == "hog_svm":
            raise ConfigError("hog_svm is one fit, with no steps to average; set ema to 0")
        if self.label_smoothing >= 1:
            raise ConfigError(f"label_smoothing must be below 1 (e.g. 0.1), got {self.label_smoothing!r}")
        if self.label_smoothing and self.model == "hog_svm":
            raise ConfigError("hog_svm fits hard labels; set label_smoothing to 0")
        for key in ("mixup", "cutmix"):
            if getattr(self, key) and self.model == "hog_svm":
                raise ConfigError(f"hog_svm fits its features once, on unmixed crops; set {key} to 0")
        if self.sam and self.model == "hog_svm":
            raise ConfigError("hog_svm is one fit, with no gradient steps; set sam to 0")
        if self.teacher_weight > 1:
            raise ConfigError(f"teacher_weight must be between 0 and 1, got {self.teacher_weight!r}")
        if self.teacher_mode != "once" and not self.teacher:
            raise ConfigError(f"teacher_mode {self.teacher_mode} asks a teacher on each batch: set --teacher too")
        if self.teacher and not teacher_names(self.teacher):
            raise ConfigError(f"teacher {self.teacher!r} names no model; pass a model name, .onnx or best.pt")
        if self.init and Path(self.init).name == "config.json":  # a run's settings, not its weights
            raise ConfigError(
                f"--init {self.init} holds a run's settings; pass its weights, {Path(self.init).with_name('best.pt')}"
            )
        if self.init and is_tfjs_weights(self.init) and self.model not in TFJS_INITS:
            raise ConfigError(
                f"--init {self.init}: TensorFlow.js weights start "
                + " or ".join(f"--model {m} ({what})" for m, what in TFJS_INITS.items())
            )
        if self.init and self.model == "hog_svm":
            raise ConfigError("hog_svm is one fit from its features, with nothing to fine-tune; drop --init")

    def check_files(self) -> None:
        """Refuse a data path, teacher or ``--init`` file that is not there. ``train`` checks this
        first; reading settings does not, so ``--print-config`` and tools that only read a recipe
        need none of its files."""
        if not Path(self.data).exists():
            raise MissingFileError(f"data {self.data} not found: pass a FER+ folder or a prepared manifest")
        for teacher in teacher_names(self.teacher):
            if teacher.endswith((".onnx", ".pt")) and not Path(teacher).is_file():
                raise MissingFileError(
                    f"teacher {teacher}: no such model; pass an exported .onnx, a best.pt or a model name"
                )
        from maeum.classify import BUNDLED_MODELS  # here: importing the config stays light

        if self.init and (Path(self.init) / "best.pt").is_file():
            raise MissingFileError(f"--init {self.init} is a run folder: pass its checkpoint, {self.init}/best.pt")
        if self.init and not (Path(self.init).is_file() or self.init in BUNDLED_MODELS):
            raise MissingFileError(
                f"--init {self.init}: no such checkpoint or model; pass a best.pt from `maeum train`, "
                f"an exported .onnx, a bundled model ({', '.join(BUNDLED_MODELS)}), "
                + ", or ".join(f"for {m} {what}" for m, what in TFJS_INITS.items())
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# The architectures ``--init`` can start from TensorFlow.js weights learned on faces, with the file each reads.
TFJS_INITS = {
    "face_resnet": "face-api's face_recognition_model-weights_manifest.json",
    "face_mobilenet": "Human's models/faceres.json, fetched by `make faceres`",
}


def is_tfjs_weights(path: str | Path) -> bool:
    """Whether ``--init`` names TensorFlow.js weights (``maeum.training.tfjs``), by the file's name."""
    return str(path).endswith(".json")


KNOWN_KEYS: tuple[str, ...] = tuple(f.name for f in fields(TrainConfig))
_STR_KEYS = frozenset(f.name for f in fields(TrainConfig) if f.type == "str")


def teacher_names(teacher: str) -> list[str]:
    """The models of a ``teacher`` setting: one, or several separated by commas."""
    return [name.strip() for name in teacher.split(",") if name.strip()]


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings in a YAML or JSON recipe file, checked for unknown keys (not yet for values)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"--config {path}: cannot read it ({e.strerror or e})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else _yaml_load(text)
    except ConfigError:
        raise
    except ValueError as e:  # json.JSONDecodeError and yaml.YAMLError are both ValueErrors here
        kind = "JSON" if path.suffix == ".json" else "YAML"
        raise ConfigError(f"--config {path}: not valid {kind}: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a mapping of settings (key: value), got {type(data).__name__}")
    _check_keys(data, KNOWN_KEYS)
    if isinstance(data.get("input"), dict):
        _check_keys(data["input"], _INPUT_KEYS, "input.")
    return data


def parse_set(items: Iterable[str]) -> dict[str, Any]:
    """``["epochs=5", "input.size=64"]`` -> ``{"epochs": 5, "input": {"size": 64}}``; values are YAML."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: write it as KEY=VALUE, e.g. --set epochs=10 or --set input.size=64")
        try:
            value = _yaml_load(raw) if raw.strip() else ""
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({e})") from None
        head, dot, sub = key.partition(".")
        _check_keys({head: None}, KNOWN_KEYS)
        if not dot and head in _STR_KEYS and (value is None or isinstance(value, (bool, int, float))):
            value = raw.strip()  # a path or name such as data=2024 or init=01.pt, which YAML would make a number
        if not dot:
            out[head] = value
        elif head == "input":
            _check_keys({sub: None}, _INPUT_KEYS, "input.")
            out.setdefault("input", {})[sub] = value
        else:
            raise ConfigError(f"--set {item!r}: only input takes dotted keys (input.size, input.color, ...)")
    return out


def resolve_config(*layers: Mapping[str, Any]) -> TrainConfig:
    """A ``TrainConfig`` from the defaults overridden by each layer in turn (file, flags, --set).

    ``input`` merges key by key. A layer that changes ``input.color`` without giving ``mean``
    and ``std`` resets them to 0.5 per channel, so ``--color rgb`` works on a gray recipe.
    """
    merged: dict[str, Any] = {"data": "", "out": ""}
    inputs: dict[str, Any] = dict(TrainConfig.__dataclass_fields__["input"].default_factory())  # type: ignore[misc]
    for layer in layers:
        _check_keys(layer, KNOWN_KEYS)
        for key, value in layer.items():
            if key != "input":
                merged[key] = value
            elif not isinstance(value, dict):
                raise ConfigError(f"input must be a mapping of {', '.join(_INPUT_KEYS)}, got {value!r}")
            else:
                _check_keys(value, _INPUT_KEYS, "input.")
                if "color" in value and value["color"] != inputs.get("color") and not {"mean", "std"} & set(value):
                    channels = 3 if value["color"] == "rgb" else 1
                    inputs["mean"], inputs["std"] = [0.5] * channels, [0.5] * channels
                inputs.update(value)
    return TrainConfig(**merged, input=inputs)


def _check_keys(data: Mapping[str, Any], known: Iterable[str], prefix: str = "") -> None:
    known = list(known)
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            raise ConfigError(
                f"unknown setting {prefix}{key}{hint}; known settings: {', '.join(prefix + k for k in known)}"
            )


# YAML 1.2 floats: PyYAML (YAML 1.1) reads `5e-4` and `1e-05` as strings, which would turn
# `weight_decay: 5e-4` into an error and break the config.json round trip.
_FLOAT = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


def _yaml_load(text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise ConfigError('reading YAML needs PyYAML: pip install "maeum[train]"') from None
    try:
        return yaml.load(text, Loader=_yaml_loader())  # a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ValueError(str(e).replace("\n", " ")) from None


@functools.cache
def _yaml_loader() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    return Loader


def describe_changes(changed: dict[str, list[Any]]) -> str:
    """``lr 0.1 → 0.01, epochs 30 → 40`` for the settings a resume changed (``{key: [before, after]}``)."""
    return ", ".join(f"{k} {old!r} → {new!r}" for k, (old, new) in changed.items())
