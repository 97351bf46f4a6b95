"""How `maeum train` runs: batch workers, TensorBoard events, optimizers, devices, torchrun with gloo,
and the original FER2013 labels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import read_metrics, tiny_config
from maeum.cli import main
from maeum.training.config import TrainConfig

torch = pytest.importorskip("torch")
pytest.importorskip("pyarrow")


@pytest.fixture
def manifest(prepared_aihub_32: Path) -> Path:
    pytest.importorskip("torch")
    return prepared_aihub_32


def _weights(run: Path, name: str = "last.pt") -> dict:
    return torch.load(run / name, map_location="cpu", weights_only=False)["model"]


def test_batch_workers_give_the_same_run_as_the_training_loop(manifest: Path, tmp_path: Path) -> None:
    from maeum.training.trainer import train

    train(tiny_config(manifest, tmp_path / "inline", epochs=1, workers=0))
    train(tiny_config(manifest, tmp_path / "workers", epochs=1, workers=2))
    inline, workers = _weights(tmp_path / "inline"), _weights(tmp_path / "workers")
    assert inline.keys() == workers.keys()
    for key in inline:
        assert torch.equal(inline[key], workers[key]), key
    # ... and a different seed gives a different run, so the comparison above can fail.
    train(tiny_config(manifest, tmp_path / "seed1", epochs=1, seed=1))
    assert not torch.equal(_weights(tmp_path / "seed1")["stem.0.weight"], inline["stem.0.weight"])


def test_a_run_interrupted_and_resumed_ends_with_the_weights_of_one_that_was_not(
    manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maeum.training import trainer

    settings = {"model": "resnet_s", "epochs": 3, "tensorboard": False}  # resnet_s: dropout draws random masks
    trainer.train(tiny_config(manifest, tmp_path / "whole", **settings))

    write_epoch = trainer._RunLog.epoch

    def stop_after_epoch_0(self, row, *args, **kwargs):  # as Ctrl-C once epoch 0 is checkpointed
        write_epoch(self, row, *args, **kwargs)
        if row["epoch"] == 0:
            raise KeyboardInterrupt

    run = tmp_path / "resumed"
    with monkeypatch.context() as m:
        m.setattr(trainer._RunLog, "epoch", stop_after_epoch_0)
        with pytest.raises(KeyboardInterrupt):
            trainer.train(tiny_config(manifest, run, **settings))
    assert [r["epoch"] for r in read_metrics(run)] == ["0"]
    trainer.train(tiny_config(manifest, run, **settings))
    whole, resumed = _weights(tmp_path / "whole"), _weights(run)
    assert [r["train_loss"] for r in read_metrics(run)] == [r["train_loss"] for r in read_metrics(tmp_path / "whole")]
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key


def test_ctrl_c_says_how_to_go_on_and_a_finished_run_is_left_as_it_is(
    manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from maeum.training import trainer

    run = tmp_path / "run"
    args = ["train", "--data", str(manifest), "--out", str(run), "--model", "mini_xception", "--epochs", "2",
            "--batch-size", "8", "--size", "32", "--no-bf16", "--threads", "1", "--no-tensorboard"]  # fmt: skip
    write_epoch = trainer._RunLog.epoch

    def stop_after_epoch_0(self, row, *a, **kw):  # as Ctrl-C once epoch 0 is checkpointed
        write_epoch(self, row, *a, **kw)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(trainer._RunLog, "epoch", stop_after_epoch_0)
        assert main(args) == 130
    assert f"interrupted; the finished epochs are kept in {run}: run the same command again" in capsys.readouterr().err
    assert main(args) == 0 and [r["epoch"] for r in read_metrics(run)] == ["0", "1"]

    # Run again when it is done, or with fewer epochs: nothing is trained or rewritten, and it says so.
    written = {name: (run / name).read_bytes() for name in ("metrics.csv", "summary.json", "config.json", "last.pt")}
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert f"{run} already holds 2 epochs" in err and "nothing to train" in err and "images" not in err  # no data read
    assert main([*args, "--epochs", "1"]) == 0
    assert "more than --epochs 1: nothing to train" in capsys.readouterr().err
    assert {name: (run / name).read_bytes() for name in written} == written


def test_metrics_go_to_csv_and_tensorboard(manifest: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from maeum.training.trainer import METRICS_HEADER, train

    run = tmp_path / "run"
    train(tiny_config(manifest, run))
    rows = read_metrics(run)
    assert tuple(rows[0]) == METRICS_HEADER and len(rows) == 2
    assert all(float(r["images_per_s"]) > 0 for r in rows)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"lr", "train_loss", "valid_acc", "images_per_s"} <= set(events.Tags()["scalars"])
    logged = [(e.step, round(e.value, 4)) for e in events.Scalars("valid_acc")]
    assert logged == [(int(r["epoch"]), float(r["valid_acc"])) for r in rows]

    # Resuming for a third epoch appends to both logs.
    train(tiny_config(manifest, run, epochs=3))
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    # Sorted: event files written within one second in one process sort by a counter's text ("10" < "9").
    assert sorted(e.step for e in events.Scalars("valid_acc")) == [0, 1, 2]
    assert [r["epoch"] for r in read_metrics(run)] == ["0", "1", "2"]


def test_a_resume_keeps_the_checkpointed_epochs_rows_under_the_current_header(manifest: Path, tmp_path: Path) -> None:
    from maeum.training.trainer import METRICS_HEADER, train

    run = tmp_path / "run"
    train(tiny_config(manifest, run, tensorboard=False))
    first = read_metrics(run)
    # As an older maeum wrote it (no raw_valid_acc), with a row for epoch 2 from a run killed
    # before that epoch's checkpoint: last.pt still holds epochs 0-1.
    old = ["epoch,lr,train_loss,valid_acc,seconds,images_per_s"]
    old += [",".join(r[k] for k in METRICS_HEADER[:6]) for r in first]
    old.append("2,0.00000,9.9999,0.0001,1.0,1.0")
    (run / "metrics.csv").write_text("\n".join(old) + "\n")

    train(tiny_config(manifest, run, epochs=3, tensorboard=False))
    rows = read_metrics(run)
    assert tuple(rows[0]) == METRICS_HEADER
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert [r["raw_valid_acc"] for r in rows[:2]] == [r["valid_acc"] for r in first]  # no averaging then
    assert rows[2]["train_loss"] != "9.9999" and rows[2]["raw_valid_acc"] == rows[2]["valid_acc"]

    quiet = tmp_path / "quiet"
    train(tiny_config(manifest, quiet, epochs=1, tensorboard=False))
    assert (quiet / "metrics.csv").is_file() and not (quiet / "tensorboard").exists()


@pytest.mark.parametrize(("optimizer", "lr", "state_key"), [("adam", 1e-3, "exp_avg"), ("adadelta", 1.0, "acc_delta")])
def test_adam_and_adadelta_train(manifest: Path, tmp_path: Path, optimizer: str, lr: float, state_key: str) -> None:
    from maeum.training.trainer import train

    run = tmp_path / optimizer
    train(tiny_config(manifest, run, epochs=1, optimizer=optimizer, lr=lr))
    last = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert last["config"]["optimizer"] == optimizer
    assert state_key in next(iter(last["optimizer"]["state"].values()))
    assert np.isfinite(float(read_metrics(run)[0]["train_loss"]))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_a_missing_gpu_is_refused_before_reading_data(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()  # empty: reading it would fail, so the refusal must come first
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--device", "cuda"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_resume_with_another_input_is_refused(manifest: Path, tmp_path: Path) -> None:
    from maeum.errors import ConfigError
    from maeum.training.trainer import train

    run = tmp_path / "run"
    train(tiny_config(manifest, run, epochs=1))
    other = {"size": 32, "color": "gray", "mean": [0.4], "std": [0.5]}
    with pytest.raises(ConfigError, match="takes input"):
        train(TrainConfig(str(manifest), str(run), model="mini_xception", epochs=2, batch_size=8, input=other))


@pytest.mark.parametrize(
    ("key", "value"), [("labels", "majority"), ("class_weights", "balanced"), ("sampler", "balanced")]
)
def test_resume_with_other_targets_or_sampling_is_refused(manifest: Path, tmp_path: Path, key: str, value: str) -> None:
    from maeum.errors import ConfigError
    from maeum.training.trainer import train

    run = tmp_path / "run"
    train(tiny_config(manifest, run, epochs=1))
    with pytest.raises(ConfigError, match=f"was trained with {key} '.+', not '{value}'; use another --out"):
        train(tiny_config(manifest, run, epochs=2, **{key: value}))


def test_torchrun_two_cpu_processes_with_gloo(manifest: Path, tmp_path: Path) -> None:
    """`torchrun --nproc-per-node 2 -m maeum train`: both processes train, process 0 writes, resume works."""
    run = tmp_path / "ddp"
    args = ["--data", str(manifest), "--out", str(run), "--model", "mini_xception", "--batch-size", "8",
            "--size", "32", "--no-bf16", "--threads", "1"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def torchrun(epochs: int) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                   "-m", "maeum", "train", *args, "--epochs", str(epochs)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    first = torchrun(2)
    assert "process 1 of 2 (gloo backend)" in first.stderr and "process 0 of 2 (gloo backend)" in first.stderr
    for said_once in ("training mini_xception on", "epoch 1: valid accuracy", "best checkpoint:"):  # by process 0
        assert first.stderr.count(said_once) == 1, said_once
    summary = json.loads((run / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["last_epoch"] == 1
    assert [r["epoch"] for r in read_metrics(run)] == ["0", "1"]
    before = _weights(run)

    second = torchrun(3)
    assert "resuming after epoch 1" in second.stderr
    assert [r["epoch"] for r in read_metrics(run)] == ["0", "1", "2"]
    assert not torch.equal(_weights(run)["stem.0.weight"], before["stem.0.weight"])


def test_under_torchrun_process_0_reads_the_data_before_the_others(
    manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process 0 writes the FER+ cache into the run folder as it reads; the others read it only once written."""
    from maeum.training import trainer
    from maeum.training.runtime import Runtime

    events: list[str] = []

    class Stop(Exception):
        pass

    def read(*args: object, **kwargs: object) -> None:
        events.append("read")
        raise Stop

    def barrier(self: Runtime) -> None:
        events.append("barrier")
        if events == ["read", "barrier"]:
            raise Stop

    monkeypatch.setattr(trainer, "load_training_data", read)
    monkeypatch.setattr(Runtime, "barrier", barrier)
    for rank, order in ((0, ["read"]), (1, ["barrier", "read"])):
        events.clear()
        with pytest.raises(Stop):
            trainer._train(tiny_config(manifest, tmp_path / "run"), Runtime(torch.device("cpu"), rank=rank, world=2))
        assert events == order, rank


def test_under_torchrun_a_data_error_of_process_0_ends_every_process_without_a_traceback(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
               "maeum", "train", "--data", str(empty), "--out", str(tmp_path / "run"), "--threads", "1"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    assert "neither a manifest" in done.stderr
    assert "[rank1]: Traceback" not in done.stderr and "[rank0]: Traceback" not in done.stderr, done.stderr[-3000:]


def test_original_fer2013_labels_replace_the_votes(small_ferplus: Path, tmp_path: Path) -> None:
    from maeum.preprocess import InputSpec
    from maeum.training import ferplus
    from maeum.training.datasets import load_training_data

    spec = InputSpec.from_dict({"size": 48, "color": "gray", "mean": [0.5], "std": [0.5]})
    votes = load_training_data(small_ferplus, spec)
    original = load_training_data(small_ferplus, spec, original_labels=True)
    assert (votes.name, original.name) == ("ferplus", "fer2013")
    names = ferplus.load_split(small_ferplus, "test").names
    expected = ferplus.fer2013_labels(small_ferplus, names)
    assert np.array_equal(original.splits["test"].labels, expected)
    assert not np.array_equal(original.splits["train"].labels, votes.splits["train"].labels)  # the labels differ
    assert np.array_equal(original.splits["train"].votes.sum(1), (original.splits["train"].labels >= 0))

    run = tmp_path / "run"
    cfg = {"data": str(small_ferplus), "out": str(run), "model": "mini_xception", "labels": "fer2013", "epochs": 1,
           "batch_size": 16, "bf16": False, "threads": 1}  # fmt: skip
    from maeum.training.trainer import train

    train(TrainConfig(**cfg))
    assert torch.load(run / "best.pt", map_location="cpu", weights_only=False)["dataset"] == "fer2013"


def test_original_labels_need_the_ferplus_folder(manifest: Path, tmp_path: Path, capsys) -> None:
    args = ["train", "--data", str(manifest), "--out", str(tmp_path / "run"), "--labels", "fer2013", "--size", "32"]
    assert main(args) == 2
    assert "labels fer2013 needs the FER+ folder" in capsys.readouterr().err


def test_hog_svm_fits_through_maeum_train_and_exports(prepared_aihub: Path, tmp_path: Path, capsys) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("onnx")
    run = tmp_path / "svm"
    args = ["train", "--data", str(prepared_aihub), "--out", str(run), "--model", "hog_svm", "--size", "64",
            "--color", "rgb", "--labels", "majority", "--svm-c", "0.01"]  # fmt: skip
    assert main(args) == 0
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    assert state["model_name"] == "hog_svm" and state["config"]["svm_c"] == 0.01
    rows = read_metrics(run)
    assert len(rows) == 1 and 0 <= float(rows[0]["valid_acc"]) <= 1
    assert json.loads((run / "summary.json").read_text())["best_epoch"] == 0

    model = tmp_path / "svm.onnx"
    assert main(["export", str(run / "best.pt"), "--out", str(model), "--template-samples", "200"]) == 0
    from maeum.classify import EmotionClassifier

    clf = EmotionClassifier(model)
    assert clf.info.extra["architecture"] == "hog_svm"
    faces = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3), dtype=np.uint8)
    assert np.allclose(clf.predict(faces).sum(1), 1, atol=1e-5)

    # torchrun cannot split one scikit-learn fit.
    from maeum.errors import ConfigError
    from maeum.training.runtime import Runtime
    from maeum.training.trainer import _train

    cfg = TrainConfig(str(prepared_aihub), str(tmp_path / "svm2"), model="hog_svm", input=state["config"]["input"])
    with pytest.raises(ConfigError, match="without torchrun"):
        _train(cfg, Runtime(torch.device("cpu"), rank=0, world=2))


@pytest.mark.parametrize("model", ["deit_tiny_patch16_224", "timm/mobilenetv3_small_100"])
def test_timm_models_train_at_the_recipe_input_size(manifest: Path, tmp_path: Path, model: str) -> None:
    pytest.importorskip("timm")
    from maeum.preprocess import InputSpec
    from maeum.training.trainer import build_model, train

    run = tmp_path / "run"
    train(tiny_config(manifest, run, model=model, epochs=1, optimizer="adamw", lr=1e-3))
    state = torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    rebuilt = build_model(model, tuple(state["labels"]), InputSpec.from_dict(state["config"]["input"]))
    rebuilt.load_state_dict(state["model"])  # the 32 px ViT's position table fits only a 32 px model
    assert rebuilt(torch.zeros(2, 1, 32, 32)).shape == (2, len(state["labels"]))


def test_an_unknown_model_is_refused_before_reading_data(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--model", "timm/resnet1"]) == 2
    assert "timm/resnet18" in capsys.readouterr().err  # a close match is suggested


def test_float16_with_loss_scaling_trains_and_resumes_its_scale(manifest: Path, tmp_path: Path) -> None:
    """The float16 path of GPUs without bfloat16 (autocast plus a loss scale), run on the CPU."""
    from maeum.training.runtime import Runtime
    from maeum.training.trainer import train

    fp16 = Runtime(torch.device("cpu"), amp_dtype=torch.float16)
    run = tmp_path / "fp16"
    train(tiny_config(manifest, run, epochs=1), fp16)
    first = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    # The first steps overflow at the initial scale 65536, so the scaler has halved it and skipped them.
    assert 0 < first["scaler"]["scale"] < 65536.0
    assert "scaler" not in torch.load(run / "best.pt", map_location="cpu", weights_only=False)
    assert np.isfinite(float(read_metrics(run)[0]["train_loss"]))
    # A scale no overflow lowers and too few steps raise comes back from last.pt on resume.
    first["scaler"]["scale"] = 256.0
    torch.save(first, run / "last.pt")
    train(tiny_config(manifest, run, epochs=2), fp16)
    second = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert second["epoch"] == 1 and second["scaler"]["scale"] == 256.0
    # The weights stay float32 and differ from a float32 run with the same seed.
    train(tiny_config(manifest, tmp_path / "fp32", epochs=1))
    fp32 = _weights(tmp_path / "fp32")
    assert first["model"]["stem.0.weight"].dtype == torch.float32
    assert not torch.equal(first["model"]["stem.0.weight"], fp32["stem.0.weight"])


def test_files_that_are_not_checkpoints_are_refused_naming_the_file(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from maeum.errors import ConfigError
    from maeum.training.trainer import train

    text = tmp_path / "notes.pt"
    text.write_text("not weights\n")
    with pytest.raises(ConfigError, match=r"notes\.pt: not a checkpoint `maeum train` wrote"):
        train(tiny_config(manifest, tmp_path / "init", init=str(text)))

    run = tmp_path / "run"
    train(tiny_config(manifest, run, epochs=1, tensorboard=False))
    whole = (run / "last.pt").read_bytes()
    (run / "last.pt").write_bytes(whole[: len(whole) // 2])  # as a disk that filled mid-write would leave it
    with pytest.raises(ConfigError, match=r"damaged one .* To resume, keep a whole last\.pt; to start over"):
        train(tiny_config(manifest, run, epochs=2, tensorboard=False))

    onnx = Path(__file__).parents[1] / "src" / "maeum" / "models" / "ferplus_resnet_s.onnx"
    assert main(["export", str(onnx), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "ferplus_resnet_s.onnx again needs --data: the data it was trained on" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", str(run / "best.pt"), "--out", str(tmp_path / "x.onnx"), "--template-samples", "0"])
    assert "--template-samples: must be 1 or more" in capsys.readouterr().err


def test_an_input_too_small_for_the_network_is_refused_before_the_first_step() -> None:
    from maeum.errors import ConfigError
    from maeum.labels import FERPLUS7
    from maeum.preprocess import InputSpec
    from maeum.training.trainer import build_model

    spec = {"color": "gray", "mean": [0.5], "std": [0.5]}
    with pytest.raises(ConfigError, match=r"face_resnet cannot take 9 px faces .*; choose a larger input size"):
        build_model("face_resnet", FERPLUS7, InputSpec.from_dict({"size": 9, **spec}))
    assert build_model("face_resnet", FERPLUS7, InputSpec.from_dict({"size": 11, **spec})).training  # left to train


def test_bf16_on_a_cpu_follows_its_kernels() -> None:
    """bfloat16 autocast only where oneDNN computes it: elsewhere it is over ten times slower than float32."""
    from maeum.training.runtime import cpu_computes_bfloat16, start_runtime

    runtime = start_runtime("cpu", 0, mixed_precision=True)
    if cpu_computes_bfloat16():
        assert runtime.amp_dtype == torch.bfloat16 and runtime.precision == "bfloat16 autocast"
    else:
        assert runtime.amp_dtype is None and runtime.precision.startswith("float32 (this CPU has no bfloat16 kernels")
    assert start_runtime("cpu", 0, mixed_precision=False).precision == "float32"
