"""From a training checkpoint (or an exported file read back) to an ONNX model for ``maeum analyze``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from maeum.classify import BUNDLED_MODELS, EmotionClassifier, ModelInfo, resolve_model
from maeum.data.records import DataError
from maeum.detect import create_detector
from maeum.errors import ConfigError
from maeum.labels import FERPLUS7
from maeum.training.config import teacher_names
from maeum.training.datasets import TrainingData, load_training_data
from maeum.training.export import INT8_WEIGHT_BITS, QUANTIZE_CROPS, export_onnx
from maeum.training.nets import create_model
from maeum.training.onnx_weights import batch_norm_record, read_onnx_weights
from maeum.training.template import measure_template
from maeum.training.trainer import load_checkpoint

log = logging.getLogger(__name__)


# How the FER+ folder's splits are called under each protocol.
_SPLIT_NAMES = {"ferplus": {"val": "valid"}, "fer2013": {"val": "publictest", "test": "privatetest"}}
_LICENCES = {
    "ferplus": "MIT (weights); trained on FER2013 images (research use) with FER+ labels (MIT)",
    "fer2013": "MIT (weights); trained on FER2013 images and labels (research use)",
}


def _teachers(cfg: dict[str, object]) -> dict[str, object]:
    """A distilled run's teachers, each by its run folder (``best.pt``) or name, and their share of the targets."""
    names = teacher_names(str(cfg.get("teacher") or ""))
    if not names:
        return {}
    named = [Path(t).parent.name if t.endswith(".pt") else Path(t).stem if t.endswith(".onnx") else t for t in names]
    how = {"teacher": ", ".join(named), "teacher_weight": cfg["teacher_weight"]}
    if cfg.get("teacher_mode", "once") != "once":  # exports from before the setting were taught once
        how["teacher_mode"] = cfg["teacher_mode"]
    return how


def _check_data(source: object, trained_on: str, labels: tuple[str, ...], data: TrainingData, path: Path) -> None:
    """Refuse data other than the model's own: it calibrates int8 and scores the file written."""
    if trained_on and trained_on != data.name:
        raise DataError(f"{source} was trained on {trained_on} data, and {path} holds {data.name}: pass its data")
    if data.labels != labels:
        raise DataError(f"{source} answers {', '.join(labels)}; {path} is labelled {', '.join(data.labels)}")


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    name: str,
    template_samples: int = 1500,
    tta: bool = False,
    int8: bool = False,
    data_path: Path | None = None,
) -> ModelInfo:
    """Export ``checkpoint`` to ``out``; ``tta`` builds flip test-time augmentation into the graph,
    ``int8`` quantizes it on the run's training crops. The metrics recorded are the written file's.

    ``data_path`` is where the run's data is on this machine, when it is not where the run read
    it (a checkpoint trained elsewhere); by default the path in the checkpoint's config.
    """
    model, spec, state = load_checkpoint(checkpoint)
    cfg = state["config"]
    labels = tuple(state.get("labels", FERPLUS7))
    data_path = Path(data_path or cfg["data"])
    if not data_path.exists():
        raise DataError(
            f"{checkpoint} was trained on {data_path}, which is not on this machine; pass --data with its copy here"
        )
    # The run's cache holds the data it trained on: used only when that is the data read here.
    own = data_path == Path(cfg["data"]) and Path(cfg["out"]).is_dir()
    cache = Path(cfg["out"]) / "cache" if own else None
    data = load_training_data(data_path, spec, cache, original_labels=cfg.get("labels") == "fer2013")
    _check_data(checkpoint, "", labels, data, data_path)
    train = data.splits["train"].images
    rng = np.random.default_rng(0)
    sample = train[rng.choice(len(train), min(template_samples, len(train)), replace=False)]
    template, used = measure_template(sample, create_detector("retinaface"))
    info = ModelInfo(
        name=name,
        labels=labels,
        input=spec,
        template=template,
        output="probabilities",
        extra={
            "architecture": cfg["model"],
            "parameters": sum(p.numel() for p in model.parameters()),
            "trained_on": f"{data.name} train, selected on {data.name} val",
            "training": {k: cfg[k] for k in ("labels", "epochs", "batch_size", "lr", "seed")} | _teachers(cfg),
            "epoch": state["epoch"],
            "template_measured_on": used,
            "licence": _LICENCES.get(
                data.name, f"weights follow the terms of the {data.name} data they were trained on"
            ),
            **_served(tta, int8),
            # what folding the batch norms into the convolutions loses: `maeum train --init` restores it
            "batch_norms": batch_norm_record(model, spec),
        },
    )
    _export(model, info, out, data, tta, int8)
    return info


def reexport_onnx(
    source: str | Path, out: Path, data_path: Path, name: str | None = None, tta: bool = False, int8: bool = False
) -> ModelInfo:
    """Export again a network from a ``maeum export`` file or bundled model ``source``, read back as
    ``maeum train --init`` reads it: to quantize it anew, or to add or drop the mirror averaging.

    ``data_path`` is the data it was trained on (an ONNX file does not record where that was):
    its training crops check the read-back and calibrate int8, its held-out splits score the
    new file. The metadata is the source's, with ``tta``, ``int8`` and the scores of the new file,
    and ``exported_from`` naming the source.
    """
    path = resolve_model(source)
    source_clf = EmotionClassifier(path)
    old = source_clf.info
    arch = old.extra.get("architecture")
    if arch == "ensemble":
        raise ConfigError(f"{source} is an ensemble: export its members again, then join them with `maeum ensemble`")
    if arch == "hog_svm":
        raise ConfigError(f"{source} is a HOG + SVM model, which has no network to export again; fit it anew")
    if not isinstance(arch, str):
        raise ConfigError(f"{source}: its metadata names no architecture (not a `maeum export` file)")
    training = old.extra.get("training")
    original_labels = isinstance(training, dict) and training.get("labels") == "fer2013"
    data = load_training_data(data_path, old.input, original_labels=original_labels)
    _check_data(source, str(old.extra.get("trained_on", "")).split(" ", 1)[0], old.labels, data, data_path)
    weights, _, _ = read_onnx_weights(path, data.splits["train"].images)
    net = create_model(arch, num_classes=len(old.labels), in_chans=old.input.channels, img_size=old.input.size)
    net.load_state_dict(weights)
    scores = f"{data.name}_"  # the source's scores: the new file gets its own
    kept = {k: v for k, v in old.extra.items() if k not in ("tta", "quantization") and not k.startswith(scores)}
    digest = source_clf.sha256[:12]
    origin = f"{source if isinstance(source, str) and source in BUNDLED_MODELS else path.name} (sha256 {digest}…)"
    info = ModelInfo(
        name=name or old.name,
        labels=old.labels,
        input=old.input,
        template=old.template,
        output="probabilities",
        extra=kept | _served(tta, int8) | {"exported_from": origin},
    )
    _export(net, info, out, data, tta, int8)
    return info


def _served(tta: bool, int8: bool) -> dict[str, object]:
    """The metadata entries saying how the exported graph serves the network."""
    served: dict[str, object] = {}
    if tta:
        served["tta"] = "flip"
    if int8:
        served["quantization"] = (
            f"int8 (static, QDQ): weights per output channel in {INT8_WEIGHT_BITS} bits, "
            f"activations calibrated on {QUANTIZE_CROPS} training crops"
        )
    return served


def _export(model: torch.nn.Module, info: ModelInfo, out: Path, data: TrainingData, tta: bool, int8: bool) -> None:
    """``export_onnx`` with int8 calibrated on ``data``'s training crops and the file scored on its held-out splits."""
    train = data.splits["train"].images
    # spread evenly over the training set, so the same data always calibrates the same way
    spread = np.linspace(0, len(train) - 1, min(len(train), QUANTIZE_CROPS)).astype(int)
    calibration = train[spread] if int8 else None

    def score(written: EmotionClassifier) -> dict[str, float]:
        """Majority accuracy of the file as written on each held-out split, and how many images it scored."""
        scores: dict[str, float] = {}
        for split, split_data in data.splits.items():
            if split == "train":
                continue
            keep = split_data.labels >= 0
            probs = written.predict(split_data.images[keep])
            accuracy = float((probs.argmax(1) == split_data.labels[keep]).mean())
            named = f"{data.name}_{_SPLIT_NAMES.get(data.name, {}).get(split, split)}"
            scores[f"{named}_{'majority_' if data.name != 'fer2013' else ''}accuracy"] = round(accuracy, 4)
            scores[f"{named}_images"] = int(keep.sum())  # a prepared subset scores fewer than the whole split
        log.info("metrics of %s: %s", out, json.dumps(scores))
        return scores

    export_onnx(model, info, out, check_faces=train[:256], flip=tta, int8_faces=calibration, score=score)
