"""`--init` across label sets: a FER+ model fine-tuned on AI Hub's Korean classes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from conftest import prepare_aihub, tiny_config
from maeum.data.records import AIHUB7
from maeum.labels import FERPLUS7
from maeum.preprocess import InputSpec

torch = pytest.importorskip("torch")


def test_a_ferplus_model_fine_tunes_on_aihub_keeping_the_classes_both_have(
    small_ferplus: Path, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from maeum.training.trainer import _initial_weights, build_model, train

    gray48 = {"input": {"size": 48, "color": "gray", "mean": [0.5], "std": [0.5]}}  # what the FER+ folder gives
    train(tiny_config(small_ferplus, tmp_path / "ferplus", epochs=1, **gray48))
    checkpoint = tmp_path / "ferplus" / "best.pt"
    old = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert old["labels"] == list(FERPLUS7)

    aihub = prepare_aihub(tmp_path_factory, 48, "gray")
    cfg = tiny_config(aihub, tmp_path / "aihub", init=str(checkpoint), **gray48)
    model = build_model(cfg.model, AIHUB7, InputSpec.from_dict(cfg.input))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    weights = _initial_weights(str(checkpoint), cfg, model, AIHUB7, np.zeros((0, 48, 48), np.uint8))  # crops: ONNX only
    changed = [k for k in weights if not torch.equal(weights[k], old["model"][k])]
    assert changed, "the classifier must change: the class order differs"
    assert len(changed) < len(weights) / 4  # the backbone comes over as it is
    for key in changed:  # mini_xception's classifier: a convolution with one output channel per class
        new, was = weights[key], old["model"][key]
        assert new.shape[0] == 7
        for label in ("happiness", "anger", "sadness", "neutral"):
            assert torch.equal(new[AIHUB7.index(label)], was[FERPLUS7.index(label)])
        for label in ("embarrassment", "anxiety", "hurt"):
            assert torch.equal(new[AIHUB7.index(label)], fresh[key][AIHUB7.index(label)])

    with caplog.at_level(logging.INFO, logger="maeum.training.trainer"):
        train(cfg)
    assert "rows for happiness, anger, sadness, neutral carried over, embarrassment, anxiety, hurt start fresh" in (
        caplog.text
    )
    tuned = torch.load(tmp_path / "aihub" / "best.pt", map_location="cpu", weights_only=False)
    assert tuned["labels"] == list(AIHUB7)


def test_init_from_another_architecture_is_refused(prepared_aihub_32: Path, tmp_path: Path) -> None:
    from maeum.training.trainer import train

    train(tiny_config(prepared_aihub_32, tmp_path / "first", epochs=1))
    first = str(tmp_path / "first" / "best.pt")
    second = tiny_config(prepared_aihub_32, tmp_path / "second", model="emotionnet", init=first)
    with pytest.raises(ValueError, match="holds a mini_xception model, not emotionnet"):
        train(second)
