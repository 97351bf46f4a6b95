"""`maeum evaluate`: metric functions on hand-computed cases, a run of the bundled model on real crops, the CLI."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import tiny_model
from maeum.classify import DEFAULT_MODEL, EmotionClassifier
from maeum.cli import main
from maeum.data.records import DataError
from maeum.errors import UnknownNameError
from maeum.labels import display_name
from maeum.training.evaluate import (
    TEMPERATURE_HIGH,
    EvalConfig,
    EvalReport,
    EvaluationError,
    apply_temperature,
    balanced_accuracy,
    confusion_matrix,
    evaluate,
    expected_calibration_error,
    fit_temperature,
    macro_f1,
    per_class_metrics,
    write_report,
)

pq = pytest.importorskip("pyarrow.parquet")

# -- metrics on hand-computed examples -----------------------------------------------------------


def test_confusion_matrix_rows_are_true_columns_predicted() -> None:
    cm = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 0]), 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        confusion_matrix(np.array([0, 3]), np.array([0, 0]), 3)


def test_per_class_metrics_with_a_class_without_support() -> None:
    # true 0 0 1 1, predicted 0 2 1 0: class 2 is predicted once but never true.
    cm = confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 2, 1, 0]), 3)
    m = per_class_metrics(cm)
    np.testing.assert_allclose(m.precision, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(m.recall[:2], [0.5, 0.5])
    assert math.isnan(m.recall[2])
    np.testing.assert_allclose(m.f1, [0.5, 2 / 3, 0.0])
    np.testing.assert_array_equal(m.support, [2, 2, 0])
    # Averages leave out the class nobody has: (0.5 + 0.5) / 2 and (0.5 + 2/3) / 2.
    assert balanced_accuracy(cm) == pytest.approx(0.5)
    assert macro_f1(cm) == pytest.approx(7 / 12)


def test_a_class_never_true_nor_predicted_is_undefined() -> None:
    cm = confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 3)
    m = per_class_metrics(cm)
    assert math.isnan(m.precision[2]) and math.isnan(m.recall[2]) and math.isnan(m.f1[2])
    assert m.precision[0] == pytest.approx(0.5) and m.recall[1] == pytest.approx(0.5)
    assert balanced_accuracy(cm) == pytest.approx(0.75)


def test_ece_is_zero_for_a_perfectly_calibrated_predictor() -> None:
    one_hot = np.eye(3)[[0, 1, 2, 1]]
    assert expected_calibration_error(one_hot, np.array([0, 1, 2, 1])) == 0.0
    # Confidence 0.75 and right three times in four.
    probs = np.tile([0.75, 0.25], (4, 1))
    assert expected_calibration_error(probs, np.array([0, 0, 0, 1])) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_an_overconfident_predictor() -> None:
    # Two bins: confidence 0.9 and right half the time (gap 0.4), confidence 0.6 and always right (gap 0.4).
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    assert expected_calibration_error(probs, np.array([0, 1, 0, 0])) == pytest.approx(0.4)
    assert expected_calibration_error(probs[:2], np.array([0, 1])) == pytest.approx(0.4)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(("sharpen", "low", "high"), [(3.0, 2.6, 3.4), (1.0, 0.9, 1.1), (0.5, 0.4, 0.6)])
def test_fit_temperature_recovers_the_distortion(sharpen: float, low: float, high: float) -> None:
    # Labels drawn from softmax(z); the predictor reports softmax(sharpen * z): T should be about `sharpen`.
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, (6000, 5))
    truth = _softmax(z)
    y = (rng.random((len(z), 1)) > truth.cumsum(axis=1)).sum(axis=1)
    probs = _softmax(sharpen * z)
    t = fit_temperature(probs, y)
    assert low < t < high
    if sharpen > 1:  # overconfident: softening helps calibration
        assert t > 1
        before = expected_calibration_error(probs, y)
        after = expected_calibration_error(apply_temperature(probs, t), y)
        assert after < before / 3
    np.testing.assert_allclose(apply_temperature(probs, 1.0), probs, atol=1e-6)


# -- a prepared manifest of real face crops ------------------------------------------------------


@pytest.fixture(scope="module")
def manifest(prepared_aihub: Path) -> Path:
    """AI Hub-style data (7 Korean classes, 4 shared with the FER+ model) cut from real photos."""
    return prepared_aihub


@pytest.fixture(scope="module")
def report(manifest: Path) -> EvalReport:
    return evaluate(EvalConfig(DEFAULT_MODEL, str(manifest), split="train", calibrate_split="val", group_by="gender"))


def test_evaluate_maps_labels_by_name_and_counts_dropped(manifest: Path, report: EvalReport) -> None:
    rows = pq.read_table(manifest / "manifest.parquet", columns=["path", "split", "label", "gender"]).to_pylist()
    rows = [r for r in rows if r["split"] == "train"]
    clf = EmotionClassifier(DEFAULT_MODEL)
    kept = [r for r in rows if r["label"] in clf.labels]
    assert 0 < len(kept) < len(rows)  # happiness, anger, sadness, neutral stay; embarrassment, anxiety, hurt go
    assert report.n == len(kept)
    expected_dropped: dict[str, int] = {}
    for r in rows:
        if r["label"] not in clf.labels:
            expected_dropped[r["label"]] = expected_dropped.get(r["label"], 0) + 1
    assert report.dropped == expected_dropped
    assert set(report.dropped) == {"embarrassment", "anxiety", "hurt"}

    # The same numbers, computed here from the crops by another route.
    size = clf.info.input.size
    crops = np.stack(
        [
            np.asarray(Image.open(manifest / r["path"]).convert("L").resize((size, size), Image.Resampling.BILINEAR))
            for r in kept
        ]
    )
    truth = np.array([clf.labels.index(r["label"]) for r in kept])
    probs = clf.predict(crops)
    pred = probs.argmax(axis=1)
    assert report.accuracy == pytest.approx((pred == truth).mean())
    cm = np.array(report.confusion)
    np.testing.assert_array_equal(cm, confusion_matrix(truth, pred, len(clf.labels)))
    assert cm.sum() == report.n
    assert report.ece == pytest.approx(expected_calibration_error(probs, truth), abs=1e-5)
    bins = [b for b in report.reliability if b.n]
    confidence = probs.max(axis=1)
    for b in bins:  # each bin holds the faces whose confidence falls in it, with their mean and accuracy
        inside = (confidence > b.upper - 1 / 15) & (confidence <= b.upper)
        assert b.n == int(inside.sum())
        assert b.confidence == pytest.approx(confidence[inside].mean(), abs=1e-5)
        assert b.accuracy == pytest.approx((pred[inside] == truth[inside]).mean())
    assert report.ece == pytest.approx(sum(b.n * abs(b.accuracy - b.confidence) for b in bins) / report.n)
    assert sum(b.n for b in report.reliability_after) == report.n
    assert report.labels == clf.labels
    assert [c.support for c in report.per_class] == np.bincount(truth, minlength=len(clf.labels)).tolist()
    surprise = report.per_class[clf.labels.index("surprise")]
    assert surprise.support == 0 and surprise.recall is None and surprise.name_ko == "놀람"

    assert report.temperature is not None and report.temperature > 0 and report.ece_after is not None
    assert {g.value for g in report.groups} == {r["gender"] for r in kept}
    assert sum(g.n for g in report.groups) == report.n
    for g in report.groups:
        mask = np.array([r["gender"] == g.value for r in kept])
        assert g.accuracy == pytest.approx((pred[mask] == truth[mask]).mean())


def test_report_files_exist_and_parse(report: EvalReport, tmp_path: Path) -> None:
    written = write_report(report, tmp_path / "out")
    plots = {"confusion.png", "calibration.png"}
    assert {p.name for p in written} == {"report.json", "report.md", "confusion.csv", *plots}
    data = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert data["n"] == report.n and data["accuracy"] == pytest.approx(report.accuracy)
    assert data["labels"] == list(report.labels) and data["dropped"] == report.dropped
    assert data["per_class"][report.labels.index("surprise")]["recall"] is None  # NaN is written as null
    # Korean names: a byte-order mark, so Excel on Korean Windows reads the file as UTF-8.
    assert (tmp_path / "out" / "confusion.csv").read_bytes().startswith("\ufefftrue".encode())
    with (tmp_path / "out" / "confusion.csv").open(encoding="utf-8-sig", newline="") as f:
        table = list(csv.reader(f))
    assert table[0] == ["true \\ predicted", "중립", "기쁨", "놀람", "슬픔", "분노", "혐오", "공포"]
    assert [[int(v) for v in row[1:]] for row in table[1:]] == [list(r) for r in report.confusion]
    md = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert f"| accuracy | {report.accuracy:.4f} |" in md
    assert "| 기쁨 (happiness) |" in md and "당황 (embarrassment)" in md
    with Image.open(tmp_path / "out" / "confusion.png") as im:
        assert im.size[0] > 200
    # The plots are shown in the report, beside the calibration bins they draw.
    assert "![confusion matrix](confusion.png)" in md and "![calibration](calibration.png)" in md
    with Image.open(tmp_path / "out" / "calibration.png") as im:
        assert im.size[0] > 200
    calibration = md.split("## Calibration")[1]
    rows = [line.split(" | ") for line in calibration.splitlines() if line.startswith(("| 0.", "| 1."))]
    assert sum(int(r[1]) for r in rows) == report.n  # every face in one bin
    assert sum(int(r[4]) for r in rows) == report.n  # and again after temperature scaling
    after = [b for b in report.reliability_after if b.n]  # the columns after it: images, confidence, accuracy
    shown = [float(v) for r in rows if r[4] != "0" for v in (r[5], r[6].rstrip(" |"))]
    assert shown == pytest.approx([v for b in after for v in (b.confidence, b.accuracy)], abs=6e-4)
    assert len(data["reliability"]) == 15 and sum(b["n"] for b in data["reliability"]) == report.n


def test_report_without_matplotlib_skips_the_png(
    report: EvalReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with caplog.at_level(logging.WARNING):
        written = write_report(report, tmp_path)
    assert {p.name for p in written} == {"report.json", "report.md", "confusion.csv"}
    assert not (tmp_path / "confusion.png").exists() and not (tmp_path / "calibration.png").exists()
    assert "](confusion.png)" not in (tmp_path / "report.md").read_text(encoding="utf-8")  # no link to a missing plot
    assert "matplotlib" in caplog.text


def test_no_overlapping_labels_is_refused(manifest: Path, tmp_path: Path) -> None:
    table = pq.read_table(manifest / "manifest.parquet")
    labels = table.column("label").to_pylist()
    keep = [label in ("embarrassment", "anxiety", "hurt") for label in labels]
    (tmp_path / "images").symlink_to(manifest / "images")
    pq.write_table(table.filter(keep), tmp_path / "manifest.parquet")
    with pytest.raises(EvaluationError, match="no label overlaps"):
        evaluate(EvalConfig(DEFAULT_MODEL, str(tmp_path), split="train"))


# -- config validation and the CLI ---------------------------------------------------------------


def test_config_errors_say_what_is_known(manifest: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        EvalConfig(DEFAULT_MODEL, str(tmp_path / "missing"))
    with pytest.raises(DataError, match="choose one of: test, train, val"):
        EvalConfig(DEFAULT_MODEL, str(manifest), split="holdout")
    with pytest.raises(DataError, match="calibration split 'valid'"):
        EvalConfig(DEFAULT_MODEL, str(manifest), calibrate_split="valid")
    with pytest.raises(DataError, match=r"unknown column 'sex'.*gender"):
        EvalConfig(DEFAULT_MODEL, str(manifest), group_by="sex")
    with pytest.raises(UnknownNameError, match="ferplus-resnet-s"):
        EvalConfig("no-such-model", str(manifest))
    with pytest.raises(DataError, match="neither a manifest"):
        EvalConfig(DEFAULT_MODEL, str(tmp_path))
    (tmp_path / "fer2013new.csv").write_text("Usage,Image name\n")
    with pytest.raises(DataError, match="no columns to group by"):
        EvalConfig(DEFAULT_MODEL, str(tmp_path), group_by="source")
    with pytest.raises(DataError, match="choose one of: train, val, test"):
        EvalConfig(DEFAULT_MODEL, str(tmp_path), split="valid")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ferplus-resnet-s", "--data", "{tmp}/missing"], "no such file"),
        (["nope", "--data", "{manifest}"], "unknown model 'nope'"),
        (["{tmp}/missing.onnx", "--data", "{manifest}"], "not found"),
        (["ferplus-resnet-s", "--data", "{manifest}", "--split", "dev"], "unknown split 'dev'"),
        (["ferplus-resnet-s", "--data", "{manifest}", "--group-by", "colour"], "unknown column 'colour'"),
        (["ferplus-resnet-s", "--data", "{manifest}", "--batch-size", "0"], "batch_size"),
        (["ferplus-resnet-s", "--data", "{manifest}", "--group-by", "gender", "--group-by", "age"], "one column"),
        (["{tmp}/run/best.pt", "--data", "{manifest}"], "is a training checkpoint; export it first (maeum export"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evaluate", *(a.format(tmp=tmp_path, manifest=manifest) for a in args), "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cli_writes_the_report_and_a_summary(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    argv = ["evaluate", DEFAULT_MODEL, "--data", str(manifest / "manifest.parquet"), "--split", "train", "--tta",
            "--calibrate-on", "val", "--group-by", "gender", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    data = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert data["tta"] is True and data["calibrate_split"] == "val" and data["group_by"] == "gender"
    assert f"accuracy {data['accuracy']:.4f}" in stdout
    assert f"ECE {data['ece']:.4f} -> {data['ece_after']:.4f}" in stdout
    assert "gender=" in stdout and str(out / "report.md") in stdout


def test_the_report_records_absolute_paths_and_the_data_as_typed(
    small_ferplus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`maeum card` rebuilds the evaluate command from the report, in another folder: the paths must not
    depend on the folder evaluate ran in. A bundled model stays known by its name."""
    (tmp_path / "models").mkdir()
    tiny_model(tmp_path / "models" / "tiny.onnx")
    monkeypatch.chdir(tmp_path)
    data = os.path.relpath(small_ferplus, tmp_path)
    assert main(["evaluate", "models/tiny.onnx", "--data", data, "--split", "test", "--out", "eval"]) == 0
    report = json.loads(Path("eval/report.json").read_text(encoding="utf-8"))
    assert report["model_path"] == str((tmp_path / "models" / "tiny.onnx").resolve())
    assert report["data_path"] == str(small_ferplus.resolve())
    assert report["data"] == data  # the summary and report.md show the data as typed
    assert f" on {data} [test]" in capsys.readouterr().out
    bundled = evaluate(EvalConfig(DEFAULT_MODEL, data, split="test"))
    assert bundled.model == DEFAULT_MODEL and Path(bundled.model_path).is_absolute()


def test_tta_averages_every_face_with_its_mirror_once(
    manifest: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    data = str(manifest / "manifest.parquet")
    asked: list[bool | None] = []
    predict = EmotionClassifier.predict

    def recorded(self: EmotionClassifier, faces: np.ndarray, batch_size: int | None = None, mirror=None):
        asked.append(mirror)
        return predict(self, faces, batch_size, mirror)

    monkeypatch.setattr(EmotionClassifier, "predict", recorded)
    evaluate(EvalConfig(DEFAULT_MODEL, data, split="train", tta=True))  # the bundled model: every face, not its gate
    assert asked and set(asked) == {True}
    # A model with the mirror inside its graph runs no second pass: the same answers as without --tta.
    in_graph = str(tiny_model(tmp_path / "flip.onnx", extra={"tta": "flip"}))
    plain = evaluate(EvalConfig(in_graph, data, split="train"))
    with caplog.at_level(logging.WARNING, logger="maeum"):
        tta = evaluate(EvalConfig(in_graph, data, split="train", tta=True))
    assert "no second mirror pass" in caplog.text
    assert tta.tta and tta.accuracy == plain.accuracy and tta.confusion == plain.confusion


def test_evaluate_needs_no_torch() -> None:
    code = "import sys; sys.modules['torch'] = None; import maeum.training.evaluate, maeum.cli"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- FER+ (shared data; skipped where it is missing) ---------------------------------------------


def test_ferplus_test_accuracy_matches_the_benchmark_method(shared: Path) -> None:
    from maeum.training import ferplus

    root = shared / "data" / "ferplus"
    result = evaluate(EvalConfig(DEFAULT_MODEL, str(root), split="test"))
    # benchmarks/accuracy.py: majority vote; contempt, unknown and not-a-face dropped.
    test = ferplus.load_split(root, "test")
    majority = test.majority()
    keep = majority >= 0
    pred = EmotionClassifier(DEFAULT_MODEL).predict(test.images).argmax(axis=1)
    assert result.n == int(keep.sum())
    assert sum(result.dropped.values()) == int((~keep).sum())
    assert set(result.dropped) <= {"contempt", "unknown", "NF"}
    assert result.accuracy == pytest.approx((pred[keep] == majority[keep]).mean())
    recorded = EmotionClassifier(DEFAULT_MODEL).info.extra["ferplus_test_majority_accuracy"]
    assert round(result.accuracy, 4) == recorded
    assert [display_name(c.label, "ko") for c in result.per_class] == [c.name_ko for c in result.per_class]

    # The FER2013 protocol: the same crops scored against their original FER2013 labels.
    original = evaluate(EvalConfig(DEFAULT_MODEL, str(root), split="test", fer2013_labels=True))
    labels = ferplus.fer2013_labels(root, test.names)
    known = labels >= 0
    assert original.fer2013_labels and original.n == int(known.sum())
    assert original.n == 3573  # every PrivateTest image once (fer2013new.csv lists one twice)
    assert original.accuracy == pytest.approx((pred[known] == labels[known]).mean())
    assert abs(original.accuracy - result.accuracy) > 0.1  # the two label sets disagree on many images


def test_confusion_csv_without_korean_names_has_no_byte_order_mark(report: EvalReport, tmp_path: Path) -> None:
    import dataclasses

    plain = dataclasses.replace(report, labels=tuple(f"class{i}" for i in range(len(report.labels))))
    write_report(plain, tmp_path)
    assert (tmp_path / "confusion.csv").read_bytes().startswith(b"true \\ predicted,class0,")


def test_an_empty_split_is_named_as_empty(manifest: Path, tmp_path: Path) -> None:
    table = pq.read_table(manifest / "manifest.parquet")
    (tmp_path / "images").symlink_to(manifest / "images")
    pq.write_table(
        table.filter([s != "test" for s in table.column("split").to_pylist()]), tmp_path / "manifest.parquet"
    )
    with pytest.raises(DataError, match=r"the test split of .* is empty \(it has train, val\)"):
        EvalConfig(DEFAULT_MODEL, str(tmp_path), split="test")


def test_calibrating_on_the_evaluated_split_warns(manifest: Path, tmp_path: Path, capsys) -> None:
    argv = ["evaluate", DEFAULT_MODEL, "--data", str(manifest), "--split", "val", "--calibrate-on", "val",
            "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    assert "calibrating on the evaluated split (val): ECE after is optimistic" in capsys.readouterr().err


def test_fer2013_labels_need_the_ferplus_folder(manifest: Path) -> None:
    with pytest.raises(DataError, match="needs the FER\\+ folder"):
        EvalConfig(DEFAULT_MODEL, str(manifest), fer2013_labels=True)


def test_a_report_on_the_original_fer2013_labels_says_so(small_ferplus: Path, tmp_path: Path, capsys) -> None:
    """Both protocols score the same crops; the summary and report.md must say which labels they used."""
    argv = ["evaluate", DEFAULT_MODEL, "--data", str(small_ferplus), "--split", "test"]
    assert main([*argv, "--out", str(tmp_path / "votes")]) == 0
    votes = capsys.readouterr().out.splitlines()[0]
    assert main([*argv, "--fer2013-labels", "--out", str(tmp_path / "fer2013")]) == 0
    original = capsys.readouterr().out.splitlines()[0]
    assert "FER2013" not in votes and original.endswith(", original FER2013 labels")
    assert "original FER2013 labels" not in (tmp_path / "votes" / "report.md").read_text(encoding="utf-8")
    md = (tmp_path / "fer2013" / "report.md").read_text(encoding="utf-8")
    assert "scored against the original FER2013 labels" in md


def test_a_temperature_at_the_end_of_its_range_is_called_a_bound(
    manifest: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A model whose confidence says nothing of its accuracy (fixed random weights, sure of every answer)
    gets the largest temperature searched, and the log says it is a bound."""
    model = str(tiny_model(tmp_path / "random.onnx"))
    with caplog.at_level(logging.WARNING, logger="maeum"):
        report = evaluate(EvalConfig(model, str(manifest), split="train", calibrate_split="val"))
    assert report.temperature == pytest.approx(TEMPERATURE_HIGH, rel=0.01)
    assert "the temperature reached the end of its search range (0.05 to 20)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="maeum"):  # the bundled model is calibrated by a real fit
        evaluate(EvalConfig(DEFAULT_MODEL, str(manifest), split="train", calibrate_split="val"))
    assert "search range" not in caplog.text


def test_groups_keep_the_column_s_order_and_name_missing_values(manifest: Path, tmp_path: Path) -> None:
    """Ages as numbers (5 before 10, not as text), and faces without a value as "(none)", listed last."""
    import pyarrow as pa

    table = pq.read_table(manifest / "manifest.parquet")
    ages = [(5.0, 10.0, None, math.nan)[i % 4] for i in range(table.num_rows)]  # NaN: missing, as pandas writes it
    (tmp_path / "images").symlink_to(manifest / "images")
    column = table.schema.get_field_index("age")
    pq.write_table(table.set_column(column, "age", pa.array(ages, pa.float64())), tmp_path / "manifest.parquet")
    report = evaluate(EvalConfig(DEFAULT_MODEL, str(tmp_path), split="train", group_by="age"))
    assert [g.value for g in report.groups] == ["5.0", "10.0", "(none)"]
    assert sum(g.n for g in report.groups) == report.n
    md = write_report(report, tmp_path / "out")[1].read_text(encoding="utf-8")
    assert "| (none) |" in md and "None" not in md


def test_a_list_column_groups_by_its_text(manifest: Path) -> None:
    report = evaluate(EvalConfig(DEFAULT_MODEL, str(manifest), split="val", group_by="votes"))
    assert report.groups and all(g.value.startswith("[") for g in report.groups)


def _partial_ferplus(small_ferplus: Path, tmp_path: Path, rows: str) -> Path:
    root = tmp_path / "ferplus"
    root.mkdir()
    lines = (small_ferplus / "fer2013new.csv").read_text(encoding="utf-8").splitlines()
    header, body = lines[0], [line for line in lines[1:] if line.startswith("PrivateTest,")]
    chosen = {"none": [], "test": body, "bad votes": [body[0].rsplit(",", 1)[0] + ",x"]}[rows]
    (root / "fer2013new.csv").write_text("\n".join([header, *chosen]) + "\n", encoding="utf-8")
    if rows == "bad votes":
        shutil.copytree(small_ferplus / "FER2013Test", root / "FER2013Test")
    return root  # "test": the vote file without the image folders, as a partial copy leaves it


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("test", "cannot read the FER+ test split ([Errno 2] No such file or directory"),
        ("none", "no image of the test split (PrivateTest)"),
        ("bad votes", "not in the FER+ format (ValueError"),
    ],
)
def test_a_partial_or_damaged_ferplus_folder_is_one_line_and_exit_2(
    rows: str, message: str, small_ferplus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _partial_ferplus(small_ferplus, tmp_path, rows)
    assert main(["evaluate", DEFAULT_MODEL, "--data", str(data), "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("data", ["folder", "manifest"])
def test_the_report_is_not_written_into_the_data_folder(
    data: str, manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The data's own report.md (`maeum data prepare`) would be replaced by the evaluation's."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "images").symlink_to(manifest / "images")
    shutil.copy(manifest / "manifest.parquet", folder)
    (folder / "report.md").write_text("# the data's report\n", encoding="utf-8")
    given = folder if data == "folder" else folder / "manifest.parquet"
    assert main(["evaluate", DEFAULT_MODEL, "--data", str(given), "--split", "val", "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"--out {folder}: is the data folder" in err and len(err.strip().splitlines()) == 1
    assert (folder / "report.md").read_text(encoding="utf-8") == "# the data's report\n"
    assert not (folder / "report.json").exists()
