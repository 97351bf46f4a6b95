"""Weight averaging: `maeum train --ema DECAY` validates and ships an average of the weights over the steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import read_metrics, tiny_config
from maeum.cli import main
from maeum.errors import ConfigError

torch = pytest.importorskip("torch")
pytest.importorskip("pyarrow")


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_best_pt_ships_the_averaged_weights_and_the_average_resumes(prepared_aihub_32: Path, tmp_path: Path) -> None:
    from maeum.training.datasets import load_training_data
    from maeum.training.trainer import load_checkpoint, predict, train

    run = tmp_path / "ema"
    train(tiny_config(prepared_aihub_32, run, epochs=1, ema=0.9))
    last, best = _load(run / "last.pt"), _load(run / "best.pt")
    steps = int(last["ema"]["n_averaged"])
    assert steps > 1 and "ema" not in best and "optimizer" not in best
    averaged = {k.removeprefix("module."): v for k, v in last["ema"].items() if k.startswith("module.")}
    assert all(torch.equal(best["model"][k], averaged[k]) for k in best["model"])
    assert not torch.equal(best["model"]["stem.0.weight"], last["model"]["stem.0.weight"])  # raw weights resume
    # The valid accuracy logged is the shipped (averaged) model's.
    model, spec, _ = load_checkpoint(run / "best.pt")
    val = load_training_data(prepared_aihub_32, spec).splits["val"]
    keep = val.labels >= 0
    accuracy = float((predict(model, val.images, spec)[keep].argmax(1) == val.labels[keep]).mean())
    assert float(read_metrics(run)[0]["valid_acc"]) == pytest.approx(accuracy, abs=1e-4)

    train(tiny_config(prepared_aihub_32, run, epochs=2, ema=0.9))
    assert int(_load(run / "last.pt")["ema"]["n_averaged"]) == 2 * steps  # continued, not restarted
    with pytest.raises(ConfigError, match=r"was trained with ema 0\.9, not 0\.99; use another --out"):
        train(tiny_config(prepared_aihub_32, run, epochs=3, ema=0.99))


def test_the_metrics_log_both_the_average_and_the_trained_weights(small_ferplus: Path, tmp_path: Path) -> None:
    from maeum.training.datasets import load_training_data
    from maeum.training.trainer import load_checkpoint, predict, train

    run = tmp_path / "ema"
    gray48 = {"size": 48, "color": "gray", "mean": [0.5], "std": [0.5]}  # what the FER+ folder gives
    train(tiny_config(small_ferplus, run, epochs=1, ema=0.9, input=gray48))
    (row,) = read_metrics(run)
    val = load_training_data(small_ferplus, load_checkpoint(run / "best.pt")[1]).splits["val"]
    keep = val.labels >= 0

    def accuracy(checkpoint: Path) -> float:
        model, spec, _ = load_checkpoint(checkpoint)
        return float((predict(model, val.images, spec)[keep].argmax(1) == val.labels[keep]).mean())

    assert float(row["valid_acc"]) == pytest.approx(accuracy(run / "best.pt"), abs=1e-4)  # the average
    assert float(row["raw_valid_acc"]) == pytest.approx(accuracy(run / "last.pt"), abs=1e-4)  # the trained weights
    assert row["raw_valid_acc"] != row["valid_acc"]  # on these 60 real faces the two differ after one epoch


def test_an_averaged_run_exports_and_classifies(prepared_aihub_32: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["train", "--data", str(prepared_aihub_32), "--out", str(run), "--model", "mini_xception", "--epochs", "1",
            "--batch-size", "8", "--size", "32", "--no-bf16", "--threads", "1", "--ema", "0.95"]  # fmt: skip
    assert main(args) == 0
    assert json.loads((run / "config.json").read_text())["ema"] == 0.95
    assert main(["export", str(run / "best.pt"), "--out", str(tmp_path / "m.onnx")]) == 0
    from maeum.classify import EmotionClassifier

    probs = EmotionClassifier(tmp_path / "m.onnx").predict(np.zeros((2, 32, 32), np.uint8))
    assert probs.shape[0] == 2 and np.allclose(probs.sum(1), 1, atol=1e-5)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ema": 1.0}, "ema must be below 1"),
        ({"ema": -0.5}, "ema must be at least 0"),
        ({"ema": 0.99, "model": "hog_svm"}, "hog_svm is one fit"),
    ],
)
def test_bad_ema_settings_are_refused(prepared_aihub_32: Path, tmp_path: Path, settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(prepared_aihub_32, tmp_path / "run", **settings)


def test_the_decay_warms_up_so_the_random_start_fades_fast() -> None:
    from maeum.training.trainer import _ema_update

    update = _ema_update(0.999)
    averaged, current = [torch.zeros(3)], [torch.ones(3)]
    for n in range(1, 101):
        update(averaged, current, torch.tensor(n))
    # A fixed decay of 0.999 would still hold 0.999 ** 100 = 90 % of the start after 100 steps.
    assert averaged[0].min() > 0.9
    late = [torch.zeros(3)]
    update(late, current, torch.tensor(10**6))  # warmed up: the decay itself
    assert torch.allclose(late[0], torch.full((3,), 0.001))
    counters = [torch.tensor(5)]
    update(counters, [torch.tensor(9)], torch.tensor(3))
    assert int(counters[0]) == 9
