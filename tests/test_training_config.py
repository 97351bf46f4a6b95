"""`maeum train --config`: recipe files, flag and --set precedence, refusals, and the training options."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import read_metrics, tiny_config
from maeum.cli import main
from maeum.errors import ConfigError
from maeum.training.config import (
    CHOICES,
    KNOWN_KEYS,
    TrainConfig,
    is_tfjs_weights,
    load_config_file,
    parse_set,
    resolve_config,
)
from maeum.training.nets import check_model_name

pytest.importorskip("yaml")

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "ferplus-resnet-s.yaml"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"  # TrainConfig only checks that the data exists
    folder.mkdir()
    return folder


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _printed_config(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    assert main(["train", *args, "--print-config"]) == 0
    return json.loads(capsys.readouterr().out)


# -- Recipes, precedence, --set ------------------------------------------------------------


def test_the_bundled_recipe_is_the_default_config(data: Path, tmp_path: Path) -> None:
    loaded = load_config_file(RECIPE)
    assert set(loaded) == set(KNOWN_KEYS) - {"data", "out"}  # the recipe spells every setting out
    run = str(tmp_path / "run")
    assert resolve_config(loaded, {"data": str(data), "out": run}) == TrainConfig(str(data), run)


@pytest.mark.parametrize("recipe", sorted(RECIPE.parent.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_committed_recipe_resolves(recipe: Path, data: Path, tmp_path: Path) -> None:
    """A typo, an unknown key or a wrong type in a committed recipe fails here, not at a user's start."""
    loaded = load_config_file(recipe)
    where = {"data": str(data), "out": str(tmp_path / "run")}
    if loaded.get("init") and is_tfjs_weights(loaded["init"]):  # under third_party/: committed, or fetched
        committed = RECIPE.parents[1] / loaded["init"]
        assert committed.is_file() or loaded["init"] == "third_party/human/faceres.json"  # tools/fetch_faceres.sh
        if not committed.is_file():
            committed = tmp_path / "faceres.json"
            committed.touch()
        where["init"] = str(committed)
    elif loaded.get("init"):  # a second-stage recipe: the first stage's checkpoint is not in a clean checkout
        assert str(loaded["init"]).endswith("best.pt")
        where["init"] = str(tmp_path / "best.pt")
        (tmp_path / "best.pt").touch()
    if loaded.get("teacher"):  # likewise the teachers' checkpoints of a distillation recipe
        teachers = [tmp_path / f"teacher{i}.pt" for i, _ in enumerate(str(loaded["teacher"]).split(","))]
        for teacher in teachers:
            teacher.touch()
        where["teacher"] = ",".join(map(str, teachers))
    cfg = resolve_config(loaded, where)
    check_model_name(cfg.model)
    assert cfg.model in recipe.read_text(encoding="utf-8")  # named, not left to the default


def test_flags_override_the_file_and_set_overrides_both(data: Path, tmp_path: Path, capsys) -> None:
    recipe = _write(
        tmp_path / "r.yaml",
        f"data: {data}\nout: {tmp_path / 'run'}\nepochs: 7\nlr: 0.05\noptimizer: adamw\nweight_decay: 5e-2\n"
        "early_stopping: 3\ninput:\n  size: 64\n  color: rgb\n",
    )
    cfg = _printed_config(capsys, "--config", str(recipe), "--epochs", "3", "--lr", "0.2", "--set", "lr=0.01")
    assert cfg["epochs"] == 3  # flag over file
    assert cfg["lr"] == 0.01  # --set over flag
    assert cfg["optimizer"] == "adamw" and cfg["early_stopping"] == 3  # file over defaults
    assert cfg["weight_decay"] == 0.05  # YAML 1.1 would have read 5e-2 as a string
    assert cfg["batch_size"] == 128 and cfg["schedule"] == "cosine"  # defaults where nobody says otherwise
    # A colour without mean and std gets 0.5 per channel.
    assert cfg["input"] == {"size": 64, "color": "rgb", "mean": [0.5] * 3, "std": [0.5] * 3}

    cfg = _printed_config(capsys, "--config", str(recipe), "--color", "gray", "--set", "input.size=32", "--no-bf16")
    assert cfg["input"] == {"size": 32, "color": "gray", "mean": [0.5], "std": [0.5]} and cfg["bf16"] is False
    assert cfg["epochs"] == 7  # the file's, as no flag was given


def test_set_values_are_yaml_scalars() -> None:
    parsed = parse_set(["epochs=5", "lr=3e-4", "warmup_epochs=0.5", "bf16=false", "input.size=64", "init="])
    assert parsed == {"epochs": 5, "lr": 3e-4, "warmup_epochs": 0.5, "bf16": False, "input": {"size": 64}, "init": ""}
    assert type(parsed["epochs"]) is int and type(parsed["lr"]) is float and parsed["bf16"] is False
    assert parse_set(["input.mean=[0.4, 0.5, 0.6]", "input.color=rgb"]) == {
        "input": {"mean": [0.4, 0.5, 0.6], "color": "rgb"}
    }


@pytest.mark.parametrize("item", ["epochs", "=5", "lr.max=1"])
def test_malformed_set_is_refused(item: str) -> None:
    with pytest.raises(ConfigError, match="--set"):
        parse_set([item])


# -- Refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "text", "suggestion"),
    [
        ("file", "epoch: 3\n", "did you mean epochs?"),
        ("file", "input:\n  colour: rgb\n", "did you mean input.color?"),
        ("set", "batchsize=3", "did you mean batch_size?"),
        ("set", "input.sise=3", "did you mean input.size?"),
    ],
)
def test_an_unknown_key_is_refused_with_the_closest_one(
    where: str, text: str, suggestion: str, data: Path, tmp_path: Path, capsys
) -> None:
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run")]
    args += ["--config", str(_write(tmp_path / "r.yaml", text))] if where == "file" else ["--set", text]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert suggestion in err
    assert "known settings:" in err and ("epochs" in err or "input.size" in err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"epochs": "ten"}, "epochs must be an integer, got 'ten'"),
        ({"epochs": 2.5}, "epochs must be an integer"),
        ({"epochs": True}, "epochs must be an integer"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"lr": -0.1}, "lr must be at least 0"),
        ({"batch_size": 0}, "batch_size must be at least 1"),
        ({"early_stopping": -1}, "early_stopping must be at least 0"),
        ({"momentum": 1}, "momentum must be below 1"),
        ({"label_smoothing": 1.0}, "label_smoothing must be below 1"),
        ({"label_smoothing": -0.1}, "label_smoothing must be at least 0"),
        ({"label_smoothing": 0.1, "model": "hog_svm"}, "hog_svm fits hard labels; set label_smoothing to 0"),
        ({"bf16": "sometimes"}, "bf16 must be true or false"),
        ({"model": 3}, "model must be a string"),
        ({"input": {"color": "rgb", "mean": [0.5]}}, "mean/std need 3 values"),
        ({"input": 48}, "input must be a mapping"),
        ({"lr": float("nan")}, "lr must be a finite number, got nan"),
        ({"weight_decay": float("inf")}, "weight_decay must be a finite number, got inf"),
        ({"seed": -1}, "seed must be at least 0"),
        ({"input": {"size": 7}}, "input size must be at least 8 pixels, got 7"),
        ({"input": {"size": 32.5}}, "input size must be a whole number of pixels, got 32.5"),
        ({"input": {"std": [0]}}, r"std above 0, got mean \[0.5\], std \[0.0\]"),
    ],
)
def test_a_wrong_type_or_value_is_refused_naming_the_key(settings: dict, message: str, data: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_config({"data": str(data), "out": "run"}, settings)


@pytest.mark.parametrize("key", sorted(CHOICES))
def test_an_unknown_choice_is_refused_listing_the_known_ones(key: str, data: Path) -> None:
    with pytest.raises(ConfigError) as e:
        TrainConfig(str(data), "run", **{key: "nope"})
    assert key in str(e.value) and all(choice in str(e.value) for choice in CHOICES[key])


def test_a_bad_value_in_a_file_exits_2_naming_the_key(data: Path, tmp_path: Path, capsys) -> None:
    recipe = _write(tmp_path / "r.yaml", "epochs: ten\n")
    assert main(["train", "--config", str(recipe), "--data", str(data), "--out", str(tmp_path / "run")]) == 2
    assert "epochs must be an integer, got 'ten'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [("- a\n- b\n", "expected a mapping"), ("epochs: [1\n", "not valid YAML"), ("", "data and out")],
)
def test_a_config_file_that_is_not_a_mapping_is_refused(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_config(load_config_file(_write(tmp_path / "r.yaml", text)))


def test_an_out_that_is_a_file_is_refused(data: Path, tmp_path: Path) -> None:
    recipe = _write(tmp_path / "r.yaml", "epochs: 1\n")
    with pytest.raises(ConfigError, match=r"out .*r\.yaml is a file; pass a folder"):
        TrainConfig(str(data), str(recipe))


def test_the_data_folder_as_out_is_refused_before_the_run_writes_into_it(data: Path, capsys) -> None:
    (data / "summary.json").write_text("{}\n")  # as `maeum data prepare` leaves it; a run would replace it
    for given in (str(data), str(data / "manifest.parquet"), f"{data}/"):
        assert main(["train", "--data", given, "--out", f"{data}/../data", "--epochs", "1"]) == 2
        assert "is the data folder; pass a folder of its own for the run" in capsys.readouterr().err
    assert sorted(p.name for p in data.iterdir()) == ["summary.json"]
    assert TrainConfig(str(data), str(data / "run")).out == str(data / "run")  # a run inside it writes nothing there


def test_set_takes_a_path_or_name_that_yaml_reads_as_a_number_as_written(data: Path) -> None:
    parsed = parse_set(["data=2024", "init=0.5", "teacher=null", "model=true", "epochs=3"])
    assert parsed == {"data": "2024", "init": "0.5", "teacher": "null", "model": "true", "epochs": 3}
    with pytest.raises(ConfigError, match=r"labels must be a string, got \['soft'\]"):  # a list stays a list
        resolve_config({"data": str(data), "out": "run"}, parse_set(["labels=[soft]"]))


def test_missing_data_and_config_file_are_refused(tmp_path: Path, capsys) -> None:
    assert main(["train", "--out", str(tmp_path / "run")]) == 2
    assert "pass --data" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "nope.yaml"), "--data", ".", "--out", "run"]) == 2
    assert "cannot read it" in capsys.readouterr().err
    gone, run = tmp_path / "gone", tmp_path / "run"
    assert main(["train", "--data", str(gone), "--out", str(run)]) == 2
    assert f"data {gone} not found" in capsys.readouterr().err and not run.exists()
    # Printing the settings trains nothing, so it needs no data (a config.json from another machine)
    assert _printed_config(capsys, "--data", str(gone), "--out", str(run))["data"] == str(gone)


# -- Schedules and balancing, without a run ------------------------------------------------------


def test_schedules() -> None:
    pytest.importorskip("torch")
    from maeum.training import trainer

    assert set(trainer._SCHEDULES) == set(CHOICES["schedule"])
    assert set(trainer._OPTIMIZERS) == set(CHOICES["optimizer"])
    assert set(trainer._SAMPLERS) == set(CHOICES["sampler"])
    total, warmup, lr = 100, 10, 0.1
    lrs = {name: [fn(lr, s, total, warmup) for s in range(total)] for name, fn in trainer._SCHEDULES.items()}
    # cosine is the schedule from before recipes, to the bit.
    old = [
        lr * (s + 1) / warmup if s < warmup else lr * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))
        for s in range(total)
    ]
    assert lrs["cosine"] == old
    assert lrs["constant"][:warmup] == old[:warmup] and set(lrs["constant"][warmup:]) == {lr}
    assert lrs["step"][warmup] == lr and lrs["step"][55] == pytest.approx(lr / 10)
    assert lrs["step"][-1] == pytest.approx(lr / 100)
    assert lrs["onecycle"][0] == pytest.approx(lr / 25) and lrs["onecycle"][29] == pytest.approx(lr)
    assert lrs["onecycle"][-1] == pytest.approx(lr / 25e4)


@pytest.mark.parametrize("total", [1, 4, 10, 97])
def test_onecycle_follows_torch(total: int) -> None:
    torch = pytest.importorskip("torch")
    from maeum.training import trainer

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=total, cycle_momentum=False)
    expected = []
    for _ in range(total):
        expected.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert [trainer._onecycle(0.1, s, total, 0) for s in range(total)] == pytest.approx(expected)


def test_balanced_class_weights_and_sampler() -> None:
    torch = pytest.importorskip("torch")
    from maeum.training import trainer

    labels = np.array([0] * 90 + [1] * 10)
    targets = np.eye(3, dtype=np.float32)[labels]  # class 2 never occurs
    weights = trainer._class_weights(targets)
    assert weights[1] == pytest.approx(9 * weights[0]) and weights[2] == 0
    assert (targets * weights).sum(1).mean() == pytest.approx(1.0)  # the average image keeps weight 1

    gen = torch.Generator().manual_seed(0)
    drawn = np.concatenate([trainer._SAMPLERS["balanced"](labels, gen) for _ in range(20)])
    assert len(drawn) == 20 * len(labels)
    assert 0.4 < (labels[drawn] == 1).mean() < 0.6  # 10 % of the images, half of the draws
    order = trainer._SAMPLERS["random"](labels, gen)
    assert sorted(order) == list(range(len(labels)))  # a permutation, as before


# -- Real (tiny) runs ------------------------------------------------------------------------


@pytest.fixture
def manifest(prepared_aihub_32: Path) -> Path:
    pytest.importorskip("torch")
    return prepared_aihub_32


def test_adamw_onecycle_with_balanced_weights_and_sampler_trains(manifest: Path, tmp_path: Path, capsys) -> None:
    torch = pytest.importorskip("torch")
    run = tmp_path / "run"
    args = ["train", "--data", str(manifest), "--out", str(run), "--model", "mini_xception", "--epochs", "2",
            "--batch-size", "8", "--size", "32", "--no-bf16", "--threads", "1", "--optimizer", "adamw", "--lr",
            "1e-3", "--schedule", "onecycle", "--class-weights", "balanced", "--sampler", "balanced"]  # fmt: skip
    assert main(args) == 0
    assert "class weights:" in capsys.readouterr().err
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    assert state["config"]["optimizer"] == "adamw" and state["config"]["sampler"] == "balanced"
    last = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert "betas" in last["optimizer"]["param_groups"][0]  # an AdamW state, not SGD's
    rows = read_metrics(run)
    assert len(rows) == 2 and all(math.isfinite(float(r["train_loss"])) for r in rows)
    assert 0 < float(rows[-1]["lr"]) < 1e-7  # onecycle ends near lr/25e4, written to 4 digits rather than 0.00000
    assert json.loads((run / "summary.json").read_text())["stopped_early"] is False

    # A changed optimizer cannot resume this run's AdamW state.
    with pytest.raises(ValueError, match="adamw, not sgd"):
        from maeum.training.trainer import train

        train(tiny_config(manifest, run, epochs=3))


def test_balanced_class_weights_change_the_loss(manifest: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from maeum.training.trainer import train

    losses = {}
    for weights in CHOICES["class_weights"]:  # lr=0: the same model sees the same batches; only the loss differs
        train(tiny_config(manifest, tmp_path / weights, epochs=1, lr=0.0, class_weights=weights))
        losses[weights] = float(read_metrics(tmp_path / weights)[0]["train_loss"])
    assert losses["none"] != losses["balanced"]


def test_label_smoothing_mixes_a_uniform_share_into_the_targets(manifest: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from maeum.training.trainer import train

    losses = {}
    for eps in (0.0, 0.25, 0.5):  # lr=0: the same model sees the same batches; only the targets differ
        train(tiny_config(manifest, tmp_path / str(eps), epochs=1, lr=0.0, label_smoothing=eps))
        losses[eps] = float(read_metrics(tmp_path / str(eps))[0]["train_loss"])
    # Cross-entropy is linear in the target: halfway between no smoothing and 0.5 lies 0.25.
    assert losses[0.5] != pytest.approx(losses[0.0], abs=1e-3)
    assert losses[0.25] == pytest.approx((losses[0.0] + losses[0.5]) / 2, abs=2e-4)


def test_config_json_round_trips(manifest: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("torch")
    from maeum.training.trainer import train

    run = tmp_path / "run"
    cfg = tiny_config(manifest, run, epochs=1, weight_decay=1e-5, schedule="step", early_stopping=2, lr=0.05)
    train(cfg)
    saved = json.loads((run / "config.json").read_text())
    assert saved == cfg.to_dict()
    assert resolve_config(load_config_file(run / "config.json")) == cfg
    # JSON is YAML: the same text read as a YAML recipe gives the same config (1e-05 included).
    as_yaml = _write(tmp_path / "config.yaml", (run / "config.json").read_text())
    assert resolve_config(load_config_file(as_yaml)) == cfg
    assert _printed_config(capsys, "--config", str(run / "config.json")) == saved


def test_a_run_s_config_json_as_init_is_refused_naming_its_weights(data: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "earlier"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(TrainConfig(str(data), str(run)).to_dict()))
    args = ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--init", str(run / "config.json")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"holds a run's settings; pass its weights, {run / 'best.pt'}" in err and "TensorFlow.js" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("accuracies", "patience", "epochs", "trained", "stopped"),
    [
        ([0.5] * 5, 1, 5, 2, True),  # never improves after the first epoch: stops after epoch 2 of 5
        ([0.2, 0.4, 0.4, 0.3, 0.9, 0.9], 2, 6, 4, True),  # patience counts from the best epoch (1)
        ([0.5] * 3, 0, 3, 3, False),  # 0: off
        ([0.1, 0.2, 0.3], 1, 3, 3, False),  # improves every epoch
    ],
)
def test_early_stopping(
    accuracies: list[float],
    patience: int,
    epochs: int,
    trained: int,
    stopped: bool,
    manifest: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("torch")
    from maeum.training import trainer

    # lr=0 leaves the weights alone, but batch-norm statistics still move; the valid metric is
    # scripted so that whether it "improves" is fixed by the test, not by chance.
    scripted = iter(accuracies)
    monkeypatch.setattr(trainer, "_majority_accuracy", lambda probs, labels: next(scripted))
    run = tmp_path / "run"
    cfg = tiny_config(manifest, run, epochs=epochs, lr=0.0, early_stopping=patience)
    with caplog.at_level(logging.INFO, logger="maeum.training.trainer"):
        trainer.train(cfg)
    assert len(read_metrics(run)) == trained
    summary = json.loads((run / "summary.json").read_text())
    assert summary["stopped_early"] is stopped and summary["last_epoch"] == trained - 1
    assert ("early stopping after epoch" in caplog.text) is stopped
    assert summary["best_epoch"] == int(np.argmax(accuracies[:trained]))
    assert (run / "best.pt").is_file()

    if stopped:  # running the same command again does not train on
        trainer.train(cfg)
        assert len(read_metrics(run)) == trained
        assert json.loads((run / "summary.json").read_text())["stopped_early"] is True
