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
from maeum.training.export import INT8_WEIGHT_BITS, QUANTIZE_CROPS, export_onnx, export_single_pass
from maeum.training.gate import accuracy, choose_flip_below, gated
from maeum.training.nets import create_model
from maeum.training.onnx_weights import batch_norm_record, read_onnx_weights
from maeum.training.template import measure_template
from maeum.training.trainer import load_checkpoint

log = logging.getLogger(__name__)


# How ``maeum export --tta`` serves the mirror image: averaged with every face inside the graph, or
# by the classifier for the faces under a confidence threshold chosen on the validation split.
TTA_MODES = ("graph", "gated")

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
    tta: str | None = None,
    int8: bool = False,
    data_path: Path | None = None,
) -> ModelInfo:
    """Export ``checkpoint`` to ``out``; ``tta`` serves flip test-time augmentation (one of
    ``TTA_MODES``, see ``_export``), ``int8`` quantizes it on the run's training crops. The metrics
    recorded are the written file's.

    ``data_path`` is where the run's data is on this machine, when it is not where the run read
    it (a checkpoint trained elsewhere); by default the path in the checkpoint's config.
    """
    model, spec, state = load_checkpoint(checkpoint)
    cfg = state["config"]
    labels = tuple(state.get("labels", FERPLUS7))
    if data_path is not None and not Path(data_path).exists():
        raise DataError(f"--data {data_path}: no such file or folder; pass the run's data on this machine")
    data_path = Path(data_path or cfg["data"])
    if not data_path.exists() and not data_path.is_absolute():  # relative to where `maeum train` ran
        raise DataError(
            f"{checkpoint} was trained on {data_path}, a path relative to the folder `maeum train` ran in, and "
            f"{Path.cwd()} holds no {data_path}: export from that folder, or pass --data with the data's path"
        )
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
    source: str | Path,
    out: Path,
    data_path: Path,
    name: str | None = None,
    tta: str | None = None,
    int8: bool = False,
) -> ModelInfo:
    """Export again a network from a ``maeum export`` file or bundled model ``source``, read back as
    ``maeum train --init`` reads it: to quantize it anew, or to add or drop the mirror averaging.
    An int8 source exported again in int8 without the mirror in the graph keeps its int8 graph
    as it is, its mirror pass cut out (``export_single_pass``): quantizing its weights again
    would round them twice (the bundled model lost 0.3 points on FER+ Test that way).

    ``data_path`` is the data it was trained on (an ONNX file does not record where that was):
    its training crops check the read-back and calibrate int8, its held-out splits score the
    new file. The metadata is the source's, with ``tta``, ``int8`` and the scores of the new file,
    and ``exported_from`` naming the source.
    """
    path = resolve_model(source)
    if Path(out).resolve() == path.resolve():  # writing over the source would lose it
        raise ConfigError(f"--out {out} is the file being exported again; write the new file under another name")
    if not Path(data_path).exists():
        raise DataError(f"--data {data_path}: no such file or folder; pass the data {source} was trained on")
    source_clf = EmotionClassifier(source)  # as named: a bundled variant is its own model
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
    scores = f"{data.name}_"  # the source's scores: the new file gets its own
    served = ("tta", "flip_below", "single_pass", "quantization", "graph_kept")
    kept = {k: v for k, v in old.extra.items() if k not in served and not k.startswith(scores)}
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
    if int8 and old.extra.get("quantization") and tta != "graph":
        info.extra["quantization"] = old.extra["quantization"]  # its own weights and ranges, not new ones
        info.extra["graph_kept"] = True
        _export(source_clf, info, out, data, tta, int8)
        return info
    weights, _, _ = read_onnx_weights(path, data.splits["train"].images)
    net = create_model(arch, num_classes=len(old.labels), in_chans=old.input.channels, img_size=old.input.size)
    net.load_state_dict(weights)
    _export(net, info, out, data, tta, int8)
    return info


def _served(tta: str | None, int8: bool) -> dict[str, object]:
    """The metadata entries saying how the exported graph serves the network (a mirror gate's
    entries come with the file's scores: its threshold is chosen on them)."""
    if tta is not None and tta not in TTA_MODES:
        raise ConfigError(f"tta must be one of {', '.join(TTA_MODES)}, not {tta!r}")
    served: dict[str, object] = {}
    if tta == "graph":
        served["tta"] = "flip"
    if int8:
        served["quantization"] = (
            f"int8 (static, QDQ): weights per output channel in {INT8_WEIGHT_BITS} bits, "
            f"activations calibrated on {QUANTIZE_CROPS} training crops" + (" and their mirror images" if tta else "")
        )
    return served


def _export(
    model: torch.nn.Module | EmotionClassifier,
    info: ModelInfo,
    out: Path,
    data: TrainingData,
    tta: str | None,
    int8: bool,
) -> None:
    """``export_onnx`` with int8 calibrated on ``data``'s training crops and the file scored on its held-out
    splits; for an exported ``model`` (an ``EmotionClassifier``), ``export_single_pass`` of its graph as it is.

    ``tta`` "graph" averages every face with its mirror inside the graph (twice the compute);
    "gated" writes one pass and a mirror gate (``flip_below``, chosen on the validation split by
    ``gate.choose_flip_below``).
    """
    train = data.splits["train"].images
    # spread evenly over the training set, so the same data always calibrates the same way
    spread = np.linspace(0, len(train) - 1, min(len(train), QUANTIZE_CROPS)).astype(int)
    calibration = train[spread] if int8 else None
    if calibration is not None and tta == "gated":  # the mirror pass goes through the same int8 ranges
        calibration = np.concatenate([calibration, np.ascontiguousarray(calibration[:, :, ::-1])])
    held_out = {split: d for split, d in data.splits.items() if split != "train"}
    if tta == "gated" and not (held_out.get("val") is not None and (held_out["val"].labels >= 0).any()):
        raise DataError(f"--tta gated chooses its threshold on the validation split, and {data.name} has none here")

    def named(split: str) -> str:
        return f"{data.name}_{_SPLIT_NAMES.get(data.name, {}).get(split, split)}"

    def score(written: EmotionClassifier) -> dict[str, object]:
        """Majority accuracy of the file as written on each held-out split, and how many images it scored
        (with a mirror gate: its threshold, and the accuracy of the single pass)."""
        suffix = "_majority_accuracy" if data.name != "fer2013" else "_accuracy"
        scores: dict[str, object] = {}
        served: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for split, split_data in held_out.items():
            keep = split_data.labels >= 0
            served[split] = (written.predict(split_data.images[keep]), split_data.labels[keep])
        if tta == "gated":  # so far one pass: both passes over every face choose the gate, then serve through it
            mirrors = {
                s: written.predict(np.ascontiguousarray(d.images[d.labels >= 0][:, :, ::-1]))
                for s, d in held_out.items()
            }
            gate = choose_flip_below(served["val"][0], mirrors["val"], served["val"][1])
            single_pass = {f"{named(s)}{suffix}": accuracy(p, y) for s, (p, y) in served.items()}
            scores.update({"tta": "flip-gated", "flip_below": gate, "single_pass": single_pass})
            served = {s: (gated(p, mirrors[s], gate), y) for s, (p, y) in served.items()}
        for split, (probs, labels) in served.items():
            scores[f"{named(split)}{suffix}"] = accuracy(probs, labels)
            scores[f"{named(split)}_images"] = len(labels)  # a prepared subset scores fewer than the whole split
        log.info("metrics of %s: %s", out, json.dumps(scores))
        return scores

    if isinstance(model, EmotionClassifier):
        export_single_pass(model, info, out, check_faces=train[:256], score=score)
        return
    export_onnx(model, info, out, check_faces=train[:256], flip=tta == "graph", int8_faces=calibration, score=score)
