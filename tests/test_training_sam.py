"""Sharpness-aware steps (`maeum train --sam RHO`): the gradient taken up the slope, and runs that use it."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import read_metrics, tiny_config
from maeum.cli import main
from maeum.errors import ConfigError

torch = pytest.importorskip("torch")
pytest.importorskip("pyarrow")  # the prepared manifests


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 3)
    ).train()


def test_the_gradient_is_taken_rho_up_the_slope_and_the_weights_come_back() -> None:
    from maeum.training.trainer import _sharpness_aware_gradient

    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    model, reference = _net(), _net()

    def loss_of(net: torch.nn.Module = model) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(net(x), y)

    loss_of().backward()
    start = copy.deepcopy(model.state_dict())  # the weights, and the statistics after the first pass
    _sharpness_aware_gradient(model, loss_of, rho=0.5)

    # By hand: the gradient at w + rho * g / |g|.
    loss_of(reference).backward()
    g = [p.grad.clone() for p in reference.parameters()]
    norm = torch.sqrt(sum((t**2).sum() for t in g))
    with torch.no_grad():
        for p, t in zip(reference.parameters(), g, strict=True):
            p.add_(0.5 * t / norm)
    reference.zero_grad()
    loss_of(reference).backward()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(p.grad, q.grad, atol=1e-6)
    assert not torch.allclose(model[0].weight.grad, g[0], atol=1e-3)  # not the plain gradient

    after = model.state_dict()
    for key, value in start.items():  # weights back, batch-norm statistics untouched by the second pass
        assert torch.allclose(after[key].float(), value.float(), atol=1e-6), key
    assert model[1].momentum == 0.1


def test_a_sam_run_trains_apart_and_resumes_only_with_its_own_rho(prepared_aihub_32: Path, tmp_path: Path) -> None:
    from maeum.training.trainer import train

    for name, sam in {"plain": 0.0, "sam": 0.05}.items():
        train(tiny_config(prepared_aihub_32, tmp_path / name, epochs=1, sam=sam))
    weights = {
        name: torch.load(tmp_path / name / "last.pt", map_location="cpu", weights_only=False)["model"]
        for name in ("plain", "sam")
    }
    assert not torch.equal(weights["plain"]["stem.0.weight"], weights["sam"]["stem.0.weight"])
    assert json.loads((tmp_path / "sam" / "config.json").read_text())["sam"] == 0.05

    run = tmp_path / "sam"
    with pytest.raises(ConfigError, match=r"was trained with sam 0\.05, not 0\.1; use another --out"):
        train(tiny_config(prepared_aihub_32, run, epochs=2, sam=0.1))
    train(tiny_config(prepared_aihub_32, run, epochs=2, sam=0.05))
    assert [r["epoch"] for r in read_metrics(run)] == ["0", "1"]


def test_sam_with_bfloat16_autocast_trains(prepared_aihub_32: Path, tmp_path: Path) -> None:
    from maeum.training.trainer import train

    losses = {}
    for run, bf16 in (("bf16", True), ("float32", False)):
        train(tiny_config(prepared_aihub_32, tmp_path / run, epochs=1, sam=0.05, bf16=bf16))
        (row,) = read_metrics(tmp_path / run)
        losses[run] = float(row["train_loss"])
    # One epoch of this tiny run ends near a loss of 10 either way (about 8 without SAM): bfloat16
    # autocast changes the rounding of both passes, not what they compute.
    assert math.isfinite(losses["bf16"]) and abs(losses["bf16"] - losses["float32"]) < 0.15 * losses["float32"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"sam": -0.05}, "sam must be at least 0"),
        ({"sam": "big"}, "sam must be a number"),
        ({"sam": 0.05, "model": "hog_svm"}, "hog_svm is one fit, with no gradient steps; set sam to 0"),
    ],
)
def test_bad_sam_settings_are_refused(settings: dict, message: str, prepared_aihub_32: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(prepared_aihub_32, tmp_path / "run", **settings)


def test_float16_steps_are_refused_before_training(prepared_aihub_32: Path, tmp_path: Path) -> None:
    from maeum.training.runtime import Runtime
    from maeum.training.trainer import train

    fp16 = Runtime(torch.device("cpu"), amp_dtype=torch.float16)
    with pytest.raises(ConfigError, match="sam needs float32 or bfloat16"):
        train(tiny_config(prepared_aihub_32, tmp_path / "fp16", epochs=1, sam=0.05), fp16)
    assert not (tmp_path / "fp16").exists()  # refused before the data is read or anything is written


def test_the_flag_sets_rho(prepared_aihub_32: Path, tmp_path: Path, capsys) -> None:
    code = main(["train", "--data", str(prepared_aihub_32), "--out", str(tmp_path / "run"), "--sam", "0.1",
                 "--print-config"])  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["sam"] == 0.1


def test_torchrun_two_cpu_processes_take_sam_steps(prepared_aihub_32: Path, tmp_path: Path) -> None:
    """Both passes of each step go through the distributed model, so both gradients are averaged."""
    run = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "maeum",
               "train", "--data", str(prepared_aihub_32), "--out", str(run), "--model", "mini_xception",
               "--batch-size", "8", "--size", "32", "--no-bf16", "--threads", "1", "--epochs", "1",
               "--sam", "0.05"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "summary.json").read_text())["processes"] == 2
    assert json.loads((run / "config.json").read_text())["sam"] == 0.05
