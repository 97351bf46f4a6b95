"""Mixup and CutMix (`--mixup`, `--cutmix`): what a mixed batch holds, and runs that use them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import read_metrics, tiny_config
from maeum.cli import main
from maeum.errors import ConfigError
from maeum.preprocess import InputSpec

torch = pytest.importorskip("torch")
pytest.importorskip("pyarrow")  # the prepared manifests

from maeum.training.loader import EpochBatches, mix  # noqa: E402  (needs torch)


def _batch(b: int = 16, size: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops that tell their origin apart (crop i is filled with i), and one class per crop."""
    x = torch.arange(b, dtype=torch.float32)[:, None, None, None].expand(b, 1, size, size).clone()
    return x, torch.eye(b)


def _partner(y: torch.Tensor, i: int) -> tuple[int, float]:
    """The crop that row i was mixed with, and the share of its own crop (1.0 when paired with itself)."""
    lam = float(y[i, i])
    if lam > 1 - 1e-6:
        return i, 1.0
    others = [j for j in range(y.shape[1]) if j != i and float(y[i, j]) > 1e-6]
    assert len(others) == 1, y[i]
    return others[0], lam


def test_mixup_blends_each_crop_and_its_target_in_the_same_share() -> None:
    x, y = _batch()
    mixed, targets = mix(x, y, torch.Generator().manual_seed(3), mixup=0.4)
    assert torch.allclose(targets.sum(1), torch.ones(len(y)))
    shares = set()
    for i in range(len(y)):
        j, lam = _partner(targets, i)
        # Every pixel of crop i is lam * i + (1 - lam) * j.
        assert torch.allclose(mixed[i], torch.full_like(mixed[i], lam * i + (1 - lam) * j), atol=1e-5)
        if j != i:
            shares.add(round(lam, 6))
    assert len(shares) == 1 and 0 < shares.pop() < 1  # one share for the whole batch
    assert torch.equal(x, _batch()[0])  # the input is left as it was


def test_cutmix_pastes_one_box_and_the_target_follows_its_area() -> None:
    x, y = _batch()
    mixed, targets = mix(x, y, torch.Generator().manual_seed(5), cutmix=1.0)
    boxes = set()
    for i in range(len(y)):
        j, lam = _partner(targets, i)
        pasted = mixed[i, 0] != i
        if j == i:
            continue
        # Only pixels of crop i and crop j, crop j's in one rectangle covering 1 - lam of the crop.
        assert set(mixed[i].unique().tolist()) <= {float(i), float(j)}
        assert float(pasted.float().mean()) == pytest.approx(1 - lam, abs=1e-6)
        rows, cols = pasted.any(1).nonzero().flatten(), pasted.any(0).nonzero().flatten()
        assert int(pasted.sum()) == len(rows) * len(cols)  # a full rectangle, nothing outside it
        boxes.add((int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])))
    assert len(boxes) == 1  # the same box across the batch


def test_with_both_on_each_batch_takes_one_of_them() -> None:
    kinds = set()
    for seed in range(20):
        x, y = _batch()
        mixed, targets = mix(x, y, torch.Generator().manual_seed(seed), mixup=0.4, cutmix=1.0)
        i, j = next((i, j) for i in range(len(y)) if (j := _partner(targets, i)[0]) != i)
        # CutMix leaves only the two crops' own values; mixup blends them into a third.
        kinds.add("cutmix" if set(mixed[i].unique().tolist()) <= {float(i), float(j)} else "mixup")
    assert kinds == {"mixup", "cutmix"}


def test_off_leaves_the_batch_and_its_random_draws_alone() -> None:
    images = np.random.default_rng(0).integers(0, 256, (32, 24, 24), dtype=np.uint8)
    targets = torch.eye(8)[torch.arange(32) % 8]
    order = np.arange(32)
    spec = InputSpec(size=24, color="gray", mean=(0.5,), std=(0.5,))
    plain = EpochBatches(images, targets, order, 16, spec, seed=0, epoch=0)
    off = EpochBatches(images, targets, order, 16, spec, seed=0, epoch=0, mixup=0.0, cutmix=0.0)
    mixed = EpochBatches(images, targets, order, 16, spec, seed=0, epoch=0, mixup=0.4, cutmix=1.0)
    for i in range(2):
        assert all(torch.equal(a, b) for a, b in zip(plain[i], off[i], strict=True))
        again = mixed[i]
        assert all(torch.equal(a, b) for a, b in zip(mixed[i], again, strict=True))  # reproducible per batch
        assert not torch.equal(mixed[i][1], plain[i][1])  # ... and mixed


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mixup": -0.1}, "mixup must be at least 0"),
        ({"cutmix": "lots"}, "cutmix must be a number"),
        ({"mixup": 0.2, "model": "hog_svm"}, "hog_svm fits its features once, on unmixed crops; set mixup to 0"),
        ({"cutmix": 1.0, "model": "hog_svm"}, "set cutmix to 0"),
    ],
)
def test_bad_mix_settings_are_refused(settings: dict, message: str, prepared_aihub_32: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        tiny_config(prepared_aihub_32, tmp_path / "run", **settings)


def test_a_mixed_run_trains_and_resumes_only_with_its_own_mixing(prepared_aihub_32: Path, tmp_path: Path) -> None:
    from maeum.training.trainer import train

    losses = {}
    for name, settings in {"none": {}, "mixup": {"mixup": 0.4}, "cutmix": {"cutmix": 1.0}}.items():
        # lr=0: the same model sees the same crops; only the mixing changes the loss.
        train(tiny_config(prepared_aihub_32, tmp_path / name, epochs=1, lr=0.0, **settings))
        losses[name] = float(read_metrics(tmp_path / name)[0]["train_loss"])
    assert losses["mixup"] != pytest.approx(losses["none"], abs=1e-4)
    assert losses["cutmix"] != pytest.approx(losses["none"], abs=1e-4)
    assert losses["mixup"] != pytest.approx(losses["cutmix"], abs=1e-4)

    run = tmp_path / "mixup"
    with pytest.raises(ConfigError, match=r"was trained with mixup 0\.4, not 0\.2; use another --out"):
        train(tiny_config(prepared_aihub_32, run, epochs=2, lr=0.0, mixup=0.2))
    train(tiny_config(prepared_aihub_32, run, epochs=2, mixup=0.4))
    assert [r["epoch"] for r in read_metrics(run)] == ["0", "1"]


def test_the_flags_set_the_mixing(prepared_aihub_32: Path, tmp_path: Path, capsys) -> None:
    code = main(["train", "--data", str(prepared_aihub_32), "--out", str(tmp_path / "run"),
                 "--mixup", "0.2", "--cutmix", "1", "--print-config"])  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["mixup"], printed["cutmix"]) == (0.2, 1.0)
