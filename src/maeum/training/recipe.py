"""From a FER+ training checkpoint to the ONNX model maeum ships: template, metadata, checks."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from maeum.classify import ModelInfo
from maeum.detect import create_detector
from maeum.labels import FERPLUS7
from maeum.preprocess import InputSpec
from maeum.training import ferplus
from maeum.training.export import export_onnx
from maeum.training.nets import create_model
from maeum.training.template import measure_template
from maeum.training.trainer import predict

log = logging.getLogger(__name__)


def export_checkpoint(checkpoint: Path, out: Path, name: str, template_samples: int = 1500) -> ModelInfo:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = state["config"]
    spec = InputSpec.from_dict(cfg["input"])
    model = create_model(cfg["model"], num_classes=len(FERPLUS7), in_chans=spec.channels)
    model.load_state_dict(state["model"])
    model.eval()
    root = Path(cfg["data"])
    cache = Path(cfg["out"]) / "cache"
    train = ferplus.load_split(root, "train", cache)
    rng = np.random.default_rng(0)
    sample = train.images[rng.choice(len(train.images), min(template_samples, len(train.images)), replace=False)]
    template, used = measure_template(sample, create_detector("retinaface"))

    scores = {}
    for split in ("valid", "test"):
        data = ferplus.load_split(root, split, cache)
        labels = data.majority()
        keep = labels >= 0
        probs = predict(model, data.images[keep], spec)
        scores[f"ferplus_{split}_majority_accuracy"] = round(float((probs.argmax(1) == labels[keep]).mean()), 4)
    info = ModelInfo(
        name=name,
        labels=FERPLUS7,
        input=spec,
        template=template,
        output="probabilities",
        extra={
            "architecture": cfg["model"],
            "parameters": sum(p.numel() for p in model.parameters()),
            "trained_on": "FER+ train (fer2013new.csv votes), selected on FER+ valid",
            "training": {k: cfg[k] for k in ("labels", "epochs", "batch_size", "lr", "seed")},
            "epoch": state["epoch"],
            "template_measured_on": used,
            "licence": "MIT (weights); trained on FER2013 images (research use) with FER+ labels (MIT)",
            **scores,
        },
    )
    log.info("metrics at export: %s", json.dumps(scores))
    export_onnx(model, info, out, check_faces=train.images[:256])
    return info
