"""Distillation: `maeum train --teacher` mixes a trained model's answers into the targets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import tiny_config
from maeum.classify import EmotionClassifier
from maeum.cli import main
from maeum.errors import ConfigError
from maeum.labels import FERPLUS7
from maeum.preprocess import InputSpec

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("pyarrow")


@pytest.fixture(scope="module")
def teacher(prepared_aihub_32: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A teacher for the Korean classes: a seconds-long run on the same crops, exported."""
    from maeum.training.trainer import train

    root = tmp_path_factory.mktemp("teacher")
    train(tiny_config(prepared_aihub_32, root / "run", epochs=2))
    assert main(["export", str(root / "run" / "best.pt"), "--out", str(root / "teacher.onnx")]) == 0
    return root / "teacher.onnx"


def _ferplus_crops(small_ferplus: Path) -> np.ndarray:
    from maeum.training.datasets import load_training_data

    spec = InputSpec.from_dict({"size": 48, "color": "gray", "mean": [0.5], "std": [0.5]})
    return load_training_data(small_ferplus, spec).splits["train"].images


def test_teacher_answers_are_mirror_averaged_reordered_and_softened(small_ferplus: Path) -> None:
    from maeum.training.distill import teacher_probabilities

    crops = _ferplus_crops(small_ferplus)
    clf = EmotionClassifier("ferplus-resnet-s")
    expected = (clf.predict(crops, mirror=False) + clf.predict(crops[:, :, ::-1].copy(), mirror=False)) / 2
    got = teacher_probabilities("ferplus-resnet-s", crops, FERPLUS7)
    np.testing.assert_allclose(got, expected / expected.sum(1, keepdims=True), atol=1e-5)

    reordered = tuple(reversed(FERPLUS7))
    np.testing.assert_allclose(teacher_probabilities("ferplus-resnet-s", crops, reordered), got[:, ::-1], atol=1e-6)

    soft = teacher_probabilities("ferplus-resnet-s", crops, FERPLUS7, temperature=3.0)
    np.testing.assert_allclose(soft.sum(1), 1.0, atol=1e-5)
    assert np.array_equal(soft.argmax(1), got.argmax(1))
    assert (soft.max(1) < got.max(1) + 1e-6).all() and soft.max(1).mean() < got.max(1).mean() - 0.05


def test_crops_of_another_size_are_resized_for_the_teacher(small_ferplus: Path) -> None:
    from maeum.training.distill import teacher_probabilities

    crops = _ferplus_crops(small_ferplus)  # 48 px, the teacher's size
    smaller = np.stack([cv2.resize(c, (32, 32), interpolation=cv2.INTER_AREA) for c in crops])
    full = teacher_probabilities("ferplus-resnet-s", crops, FERPLUS7)
    small = teacher_probabilities("ferplus-resnet-s", smaller, FERPLUS7)
    assert small.shape == full.shape
    assert (small.argmax(1) == full.argmax(1)).mean() > 0.7  # the same faces, a little blurred


def test_a_teacher_without_the_data_classes_is_refused_before_training(
    prepared_aihub_32: Path, tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    args = ["train", "--data", str(prepared_aihub_32), "--out", str(run), "--model", "mini_xception",
            "--size", "32", "--no-bf16", "--teacher", "ferplus-resnet-s"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "does not know the class(es) embarrassment, anxiety, hurt" in err
    assert "pick a teacher trained on the same classes" in err
    assert not (run / "last.pt").exists()


def test_a_checkpoint_teaches_as_its_export_does_and_several_teachers_are_averaged(
    prepared_aihub_32: Path, teacher: Path
) -> None:
    from maeum.training.datasets import load_training_data
    from maeum.training.distill import teacher_probabilities

    spec = InputSpec.from_dict({"size": 32, "color": "gray", "mean": [0.5], "std": [0.5]})
    data = load_training_data(prepared_aihub_32, spec)
    crops, labels = data.splits["train"].images, data.labels
    checkpoint = teacher.parent / "run" / "best.pt"  # what `teacher` was exported from
    from_onnx = teacher_probabilities(str(teacher), crops, labels)
    from_torch = teacher_probabilities(str(checkpoint), crops, labels)
    np.testing.assert_allclose(from_torch, from_onnx, atol=1e-3)
    # Two teachers: the mean of their answers. The bundled model knows other classes: refused by name.
    both = teacher_probabilities(f"{checkpoint}, {teacher}", crops, labels, temperature=2.0)
    mean = np.sqrt((from_torch + from_onnx) / 2)
    np.testing.assert_allclose(both, mean / mean.sum(1, keepdims=True), atol=1e-6)
    with pytest.raises(ConfigError, match="teacher ferplus-resnet-s does not know"):
        teacher_probabilities(f"{checkpoint},ferplus-resnet-s", crops, labels)


def test_teacher_weight_zero_is_the_plain_run_and_a_teacher_changes_it(
    prepared_aihub_32: Path, teacher: Path, tmp_path: Path
) -> None:
    from maeum.training.trainer import train

    def weights(run: Path) -> dict:
        return torch.load(run / "last.pt", map_location="cpu", weights_only=False)["model"]

    train(tiny_config(prepared_aihub_32, tmp_path / "plain", epochs=1))
    train(tiny_config(prepared_aihub_32, tmp_path / "zero", epochs=1, teacher=str(teacher), teacher_weight=0.0))
    train(tiny_config(prepared_aihub_32, tmp_path / "half", epochs=1, teacher=str(teacher), teacher_weight=0.5))
    plain, zero, half = weights(tmp_path / "plain"), weights(tmp_path / "zero"), weights(tmp_path / "half")
    assert all(torch.equal(plain[k], zero[k]) for k in plain)
    assert not torch.equal(plain["stem.0.weight"], half["stem.0.weight"])
    saved = json.loads((tmp_path / "half" / "config.json").read_text())
    assert (saved["teacher"], saved["teacher_weight"], saved["teacher_temperature"]) == (str(teacher), 0.5, 1.0)


def _torchrun_distillation(manifest: Path, teacher: Path, out: Path, *flags: str) -> str:
    """One epoch of a distilled run in two CPU processes (gloo); its log, of both processes (-v)."""
    args = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "maeum", "train", "-v",
            "--data", str(manifest), "--out", str(out), "--model", "mini_xception", "--batch-size", "8",
            "--size", "32", "--no-bf16", "--threads", "1", "--epochs", "1",
            "--teacher", str(teacher), *flags]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["processes"] == 2
    return done.stderr


def test_under_torchrun_process_0_asks_the_teacher_and_shares_its_answers(
    prepared_aihub_32: Path, teacher: Path, tmp_path: Path
) -> None:
    log = _torchrun_distillation(prepared_aihub_32, teacher, tmp_path / "ddp")
    assert log.count("classifying") == 1  # one teacher pass, not one per process
    # Process 1 measures its agreement on what it received: the same answers give the same share.
    agreement = re.findall(r"teacher agrees with ([\d.]+) %", log)
    assert len(agreement) == 2 and agreement[0] == agreement[1], agreement


def test_resume_with_another_teacher_is_refused(prepared_aihub_32: Path, teacher: Path, tmp_path: Path) -> None:
    from maeum.training.trainer import train

    run = tmp_path / "run"
    train(tiny_config(prepared_aihub_32, run, epochs=1, teacher=str(teacher)))
    with pytest.raises(ConfigError, match=r"teacher_weight 0\.5, not 0\.8; use another --out"):
        train(tiny_config(prepared_aihub_32, run, epochs=2, teacher=str(teacher), teacher_weight=0.8))
    with pytest.raises(ConfigError, match="was trained with teacher"):
        train(tiny_config(prepared_aihub_32, run, epochs=2))


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"teacher_weight": 1.5}, ConfigError, "teacher_weight must be between 0 and 1"),
        ({"teacher_weight": -0.1}, ConfigError, "teacher_weight must be at least 0"),
        ({"teacher_temperature": 0.0}, ConfigError, "teacher_temperature must be at least 0.01"),
        ({"teacher": "missing.onnx"}, FileNotFoundError, "teacher missing.onnx: no such model"),
        (
            {"teacher": "ferplus-resnet-s,runs/missing/best.pt"},
            FileNotFoundError,
            "runs/missing/best.pt: no such model",
        ),
        ({"teacher": " , "}, ConfigError, "names no model"),
        ({"teacher_mode": "batch"}, ConfigError, "teacher_mode batch asks a teacher on each batch: set --teacher"),
        ({"teacher_mode": "always"}, ConfigError, "teacher_mode must be one of once, batch"),
    ],
)
def test_bad_teacher_settings_are_refused(
    prepared_aihub_32: Path, tmp_path: Path, settings: dict, error: type, message: str
) -> None:
    from maeum.training.trainer import train

    with pytest.raises(error, match=message):  # a missing file when the run starts, the rest as the settings are read
        train(tiny_config(prepared_aihub_32, tmp_path / "run", **settings))
    assert not (tmp_path / "run").exists()


def test_hog_svm_takes_no_teacher(prepared_aihub_32: Path, teacher: Path, tmp_path: Path) -> None:
    from maeum.training.trainer import train

    with pytest.raises(ConfigError, match="hog_svm fits hard labels"):
        train(tiny_config(prepared_aihub_32, tmp_path / "run", model="hog_svm", teacher=str(teacher)))


def test_an_unknown_teacher_name_is_refused_listing_the_models(prepared_aihub_32: Path, tmp_path: Path, capsys) -> None:
    args = ["train", "--data", str(prepared_aihub_32), "--out", str(tmp_path / "run"), "--size", "32",
            "--teacher", "ferplus-resnet"]  # fmt: skip
    assert main(args) == 2
    assert "unknown teacher 'ferplus-resnet'; choose one of: ferplus-resnet-s" in capsys.readouterr().err


def test_a_teacher_that_is_no_model_is_refused_before_the_data_is_read(
    prepared_aihub_32: Path, teacher: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maeum.errors import ModelError
    from maeum.training import trainer

    def unread(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data was read before the refusal")

    monkeypatch.setattr(trainer, "load_training_data", unread)
    (tmp_path / "notes.onnx").write_text("not a model\n")
    (tmp_path / "notes.pt").write_text("not weights\n")
    for bad, error, message in [
        ("notes.onnx", ModelError, "cannot load ONNX model"),
        ("notes.pt", ConfigError, r"notes\.pt: not a checkpoint `maeum train` wrote"),
        ("ferplus-resnet", ValueError, "unknown teacher 'ferplus-resnet'"),
    ]:
        name = bad if bad.startswith("ferplus") else str(tmp_path / bad)
        with pytest.raises(error, match=message):  # in a list with a good teacher too
            trainer.train(tiny_config(prepared_aihub_32, tmp_path / "run", teacher=f"{teacher},{name}"))
    assert not (tmp_path / "run").exists()


# teacher_mode batch: the teacher answers on each augmented batch, the inputs the student sees.


def test_a_batch_teacher_answers_for_the_inputs_it_is_given(prepared_aihub_32: Path, teacher: Path) -> None:
    from maeum.training.datasets import load_training_data
    from maeum.training.distill import BatchTeacher
    from maeum.training.loader import to_batch
    from maeum.training.trainer import load_checkpoint, predict

    spec = InputSpec.from_dict({"size": 32, "color": "gray", "mean": [0.5], "std": [0.5]})
    data = load_training_data(prepared_aihub_32, spec)
    crops, labels = data.splits["train"].images[:16], data.labels
    checkpoint = teacher.parent / "run" / "best.pt"
    model, _, _ = load_checkpoint(checkpoint)
    # On clean crops, no mirror: the checkpoint's and the export's plain answers.
    x = to_batch(crops, spec)
    from_torch, from_onnx = predict(model, crops, spec), EmotionClassifier(teacher).predict(crops)
    np.testing.assert_allclose(BatchTeacher(str(checkpoint), labels, spec)(x).numpy(), from_torch, atol=1e-5)
    np.testing.assert_allclose(BatchTeacher(str(teacher), labels, spec)(x).numpy(), from_onnx, atol=1e-4)
    # Softened and averaged as teacher_probabilities does, columns in the data's order.
    both = BatchTeacher(f"{checkpoint},{teacher}", tuple(reversed(labels)), spec, temperature=2.0)(x).numpy()
    mean = np.sqrt((from_torch + from_onnx) / 2)[:, ::-1]
    np.testing.assert_allclose(both, mean / mean.sum(1, keepdims=True), atol=1e-4)
    # A changed input changes the answer: it is asked about what it is given, not about the image's index.
    assert not np.allclose(BatchTeacher(str(checkpoint), labels, spec)(-x).numpy(), from_torch)
    with pytest.raises(ConfigError, match="teacher ferplus-resnet-s does not know"):
        BatchTeacher("ferplus-resnet-s", labels, spec)


def test_a_batch_is_converted_to_a_teacher_of_another_size_colour_and_normalisation(small_ferplus: Path) -> None:
    from maeum.training.distill import BatchTeacher, convert_inputs
    from maeum.training.loader import to_batch

    crops = _ferplus_crops(small_ferplus)  # 48 px gray
    student = InputSpec.from_dict({"size": 48, "color": "gray", "mean": [0.5], "std": [0.5]})
    rgb = InputSpec.from_dict({"size": 48, "color": "rgb", "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]})
    big = InputSpec.from_dict({"size": 64, "color": "gray", "mean": [0.3], "std": [0.2]})
    x = to_batch(crops, student)
    # Colour and normalisation are exact; a size change is the bilinear resize serving makes, within rounding.
    np.testing.assert_allclose(convert_inputs(x, student, rgb).numpy(), to_batch(crops, rgb).numpy(), atol=1e-5)
    np.testing.assert_allclose(convert_inputs(to_batch(crops, rgb), rgb, student).numpy(), x.numpy(), atol=1e-5)
    resized = to_batch(np.stack([cv2.resize(c, (64, 64), interpolation=cv2.INTER_LINEAR) for c in crops]), big)
    assert np.abs(convert_inputs(x, student, big).numpy() - resized.numpy()).mean() < 0.02
    assert convert_inputs(x, student, student) is x
    # The bundled model takes 64 px: a 48 px student's batch gets its answers for the same faces.
    clf = EmotionClassifier("ferplus-resnet-s")
    taught = BatchTeacher("ferplus-resnet-s", FERPLUS7, student)(x).numpy()
    assert (taught.argmax(1) == clf.predict(crops).argmax(1)).mean() > 0.9


def test_teacher_mode_batch_trains_on_the_answers_for_each_batch(
    prepared_aihub_32: Path, teacher: Path, tmp_path: Path
) -> None:
    from maeum.training.trainer import train

    def weights(run: Path) -> dict:
        return torch.load(run / "last.pt", map_location="cpu", weights_only=False)["model"]

    once = {"teacher": str(teacher), "mixup": 0.4}
    batch = {**once, "teacher_mode": "batch"}
    train(tiny_config(prepared_aihub_32, tmp_path / "plain", epochs=1, mixup=0.4))
    train(tiny_config(prepared_aihub_32, tmp_path / "zero", epochs=1, teacher_weight=0.0, **batch))
    train(tiny_config(prepared_aihub_32, tmp_path / "once", epochs=1, **once))
    train(tiny_config(prepared_aihub_32, tmp_path / "batch", epochs=1, **batch))
    plain, zero = weights(tmp_path / "plain"), weights(tmp_path / "zero")
    once_w, batch_w = weights(tmp_path / "once"), weights(tmp_path / "batch")
    assert all(torch.equal(plain[k], zero[k]) for k in plain)  # asking the teacher draws nothing from the run's seed
    assert not torch.equal(plain["stem.0.weight"], batch_w["stem.0.weight"])
    assert not torch.equal(once_w["stem.0.weight"], batch_w["stem.0.weight"])  # mixed crops get their own answers
    saved = json.loads((tmp_path / "batch" / "config.json").read_text())
    assert saved["teacher_mode"] == "batch"
    # The export says how it was taught; a run taught once keeps the metadata of before the setting.
    for run in ("batch", "once"):
        assert main(["export", str(tmp_path / run / "best.pt"), "--out", str(tmp_path / f"{run}.onnx")]) == 0
    assert EmotionClassifier(tmp_path / "batch.onnx").info.extra["training"]["teacher_mode"] == "batch"
    assert "teacher_mode" not in EmotionClassifier(tmp_path / "once.onnx").info.extra["training"]
    with pytest.raises(ConfigError, match="teacher_mode 'batch', not 'once'; use another --out"):
        train(tiny_config(prepared_aihub_32, tmp_path / "batch", epochs=2, **once))


def test_teacher_mode_batch_asks_the_teacher_in_every_process(
    prepared_aihub_32: Path, teacher: Path, tmp_path: Path
) -> None:
    log = _torchrun_distillation(prepared_aihub_32, teacher, tmp_path / "ddp", "--teacher-mode", "batch")
    assert log.count("classifying") == 0 and log.count("asked on every training batch") == 2
