"""`maeum card`: a card written from a real evaluation of the bundled model, a real run folder, and refusals."""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest

from maeum.classify import DEFAULT_MODEL
from maeum.cli import main
from maeum.labels import FERPLUS7, display_name
from maeum.training.card import EXPRESSIONS_NOT_FEELINGS, CardError, model_card, write_card
from maeum.training.config import TrainConfig

SECTIONS = ("# Model card: `ferplus-resnet-s`", "## Data", "## Recipe", "## Metrics", "## Limits")


@pytest.fixture(scope="module")
def evaluation(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `maeum evaluate` of the bundled model on FER+ test, calibrated on val (a few seconds)."""
    out = tmp_path_factory.mktemp("card") / "eval"
    argv = ["evaluate", DEFAULT_MODEL, "--data", str(shared / "data" / "ferplus"), "--split", "test",
            "--calibrate-on", "val", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    return out


@pytest.fixture
def report(evaluation: Path) -> dict:
    return json.loads((evaluation / "report.json").read_text(encoding="utf-8"))


@pytest.fixture
def run_dir(shared: Path, tmp_path: Path) -> Path:
    """A finished run folder as `maeum train` leaves it (config.json, summary.json), without the weights,
    with the settings the bundled model's metadata records of its run."""
    run = tmp_path / "run"
    run.mkdir()
    gray64 = {"size": 64, "color": "gray", "mean": [0.5], "std": [0.5]}
    config = TrainConfig(
        data=str(shared / "data" / "ferplus"), out=str(run), epochs=110, early_stopping=3, input=gray64
    ).to_dict()
    (run / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    summary = {"best_epoch": 7, "best_valid_acc": 0.8123, "last_epoch": 10, "epochs": 110, "stopped_early": True,
               "processes": 1, "device": "cpu"}  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return run


def test_cli_writes_the_card_of_the_bundled_model(
    evaluation: Path, report: dict, shared: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = evaluation.parent / "card" / "CARD.md"  # beside the report folder: the figure is linked relatively
    assert main(["card", DEFAULT_MODEL, "--report", str(evaluation), "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().err
    card = out.read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f"\n{section}\n" in f"\n{card}"
    # Header, from the ONNX metadata and the file.
    assert "1,601,527 parameters" in card and "MB ONNX" in card and "48x48 gray" in card
    assert "| licence | MIT (weights)" in card
    for label in FERPLUS7:
        assert display_name(label, "ko") in card
    # Metrics, from report.json.
    assert f"| accuracy | {report['accuracy']:.4f} |" in card
    assert f"| ECE after temperature | {report['ece_after']:.4f} |" in card
    (command,) = [line for line in card.splitlines() if line.startswith("maeum evaluate ")]
    argv = shlex.split(command)[1:]
    data = argv[argv.index("--data") + 1]  # from the card's folder, or absolute where they share only the root
    assert (out.parent / data).resolve() == Path(report["data_path"]) == (shared / "data" / "ferplus").resolve()
    assert argv == ["evaluate", DEFAULT_MODEL, "--data", data, "--split", "test", "--calibrate-on", "val",
                    "--out", "../eval"]  # fmt: skip
    assert "Run the evaluate commands below from this card's folder" in card
    names = [f"{label} {display_name(label, 'ko')}" for label in report["labels"]]
    for name, row in zip(names, report["confusion"], strict=True):
        assert f"| {name} | " + " | ".join(map(str, row)) + " |" in card
    assert "![confusion matrix, test](../eval/confusion.png)" in card
    assert (out.parent / "../eval/confusion.png").is_file()
    # Limits, from the data: every class under 0.5 recall is named with its recall.
    weak = [c for c in report["per_class"] if c["recall"] is not None and c["recall"] < 0.5]
    assert "disgust" in {c["label"] for c in weak}
    limits = card.split("## Limits", 1)[1]
    for c in weak:
        assert f"{c['label']} {c['name_ko']} {c['recall']:.3f}" in limits
    for label in report["dropped"]:
        assert label in limits
    assert "Not validated on Korean faces" in limits and EXPRESSIONS_NOT_FEELINGS in limits
    assert "The recipe of this file is unknown" in card and "--run RUN_DIR" in card


def test_a_run_extended_by_a_resume_is_still_the_model_s_run(evaluation: Path, run_dir: Path) -> None:
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    (run_dir / "config.json").write_text(json.dumps({**config, "epochs": 200}), encoding="utf-8")
    assert "best epoch 7 (valid accuracy 0.8123)" in model_card(DEFAULT_MODEL, [evaluation], run=run_dir)


def test_a_run_resumed_with_other_settings_says_so_before_its_commands(evaluation: Path, run_dir: Path) -> None:
    assert "resumed with other settings" not in model_card(DEFAULT_MODEL, [evaluation], run=run_dir)
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    resumes = [{"after_epoch": 4, "changed": {"lr": [0.2, 0.1]}}, {"after_epoch": 8, "changed": {"epochs": [9, 110]}}]
    (run_dir / "summary.json").write_text(json.dumps({**summary, "resumes": resumes}), encoding="utf-8")
    card = model_card(DEFAULT_MODEL, [evaluation], run=run_dir)
    said = card.index("The run was resumed with other settings than its first epochs")
    assert "- after epoch 4: lr 0.2 → 0.1\n- after epoch 8: epochs 9 → 110\n" in card
    assert said < card.index("maeum train --config")


def test_card_with_a_run_folder_has_its_settings_and_commands(evaluation: Path, run_dir: Path) -> None:
    yaml = pytest.importorskip("yaml")
    card = model_card(DEFAULT_MODEL, [evaluation / "report.json"], run=run_dir)
    block = card.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    assert yaml.safe_load(block) == config
    assert list(yaml.safe_load(block)) == list(config)  # the same keys in the same order
    assert f"maeum train --config {run_dir / 'config.json'}" in card
    assert f"maeum export {run_dir / 'best.pt'} --out " in card and "ferplus_resnet_s.onnx" in card
    assert "best epoch 7 (valid accuracy 0.8123) of 11 epochs run (110 planned); stopped early" in card
    assert f"label mode `{config['labels']}`" in card and str(config["data"]) in card
    # Without an output file the figure is linked by its absolute path.
    assert f"]({(evaluation / 'confusion.png').resolve().as_posix()})" in card


def test_the_evaluate_command_of_a_card_runs_from_the_card_s_folder(
    small_ferplus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Evaluated in one folder with relative paths, carded from another: the card's command, run from the
    card's folder, evaluates the same file on the same data again."""
    from maeum.classify import resolve_model

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    (work / "models").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copy(resolve_model(DEFAULT_MODEL), work / "models" / "mine.onnx")  # a file: named by its path
    monkeypatch.chdir(work)
    data = os.path.relpath(small_ferplus, work)
    assert main(["evaluate", "models/mine.onnx", "--data", data, "--split", "test", "--out", "eval"]) == 0
    first = json.loads((work / "eval" / "report.json").read_text(encoding="utf-8"))
    monkeypatch.chdir(elsewhere)
    assert main(["card", "../work/models/mine.onnx", "--report", "../work/eval", "--out", "cards/CARD.md"]) == 0
    folder = elsewhere / "cards"
    card = (folder / "CARD.md").read_text(encoding="utf-8")
    (command,) = [line for line in card.splitlines() if line.startswith("maeum evaluate ")]
    relative = Path(os.path.relpath(small_ferplus.resolve(), folder.resolve())).as_posix()
    assert command == f"maeum evaluate ../../work/models/mine.onnx --data {relative} --split test --out ../../work/eval"
    assert f"### `{relative}`, split `test`" in card and f"on `{relative}` split `test`" in card
    capsys.readouterr()
    monkeypatch.chdir(folder)
    assert main(shlex.split(command)[1:]) == 0
    again = json.loads((work / "eval" / "report.json").read_text(encoding="utf-8"))
    assert again["model_path"] == first["model_path"] and again["data_path"] == first["data_path"]
    assert again["n"] == first["n"] and again["confusion"] == first["confusion"]


@pytest.mark.parametrize("name", [DEFAULT_MODEL, "ferplus-resnet-s-fast"])
def test_a_bundled_model_keeps_its_name_in_the_card_s_command(
    name: str, evaluation: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both bundled variants share one file: the command names the variant, never the file, from any folder."""
    copy = _foreign_report(evaluation, tmp_path, model=name)
    monkeypatch.chdir(tmp_path)
    card = model_card(name, [Path(copy.name)])  # without an output file: the report folder's absolute path
    assert f"maeum evaluate {name} --data " in card and f"--out {copy.resolve().as_posix()}" in card
    assert "ferplus_resnet_s.onnx --data" not in card


def test_an_older_report_shows_its_paths_as_typed_and_says_so(
    evaluation: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A report from before evaluate recorded absolute paths: the folder its paths start from is unknown."""
    copy = _foreign_report(evaluation, tmp_path, data="../shared/data/ferplus")
    data = json.loads((copy / "report.json").read_text(encoding="utf-8"))
    del data["data_path"]
    (copy / "report.json").write_text(json.dumps(data), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="maeum"):
        card = write_card(DEFAULT_MODEL, [copy], out=tmp_path / "CARD.md").read_text(encoding="utf-8")
    assert f"maeum evaluate {DEFAULT_MODEL} --data ../shared/data/ferplus --split test" in card
    assert "an older report, with its paths as typed" in caplog.text


def _foreign_report(evaluation: Path, tmp_path: Path, **changes: str) -> Path:
    copy = tmp_path / "other"
    shutil.copytree(evaluation, copy)
    data = json.loads((copy / "report.json").read_text(encoding="utf-8"))
    data.update(changes)
    (copy / "report.json").write_text(json.dumps(data), encoding="utf-8")
    return copy


def _not_a_report(tmp_path: Path) -> Path:
    path = tmp_path / "summary.json"
    path.write_text(json.dumps({"best_epoch": 3, "accuracy": 0.5}), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing report", "no such report"),
        ("not a report", "not a `maeum evaluate` report (missing model, model_path"),
        ("other model", "report of model 'other-model', not of 'ferplus-resnet-s'"),
        ("other file", "report of another file named 'ferplus-resnet-s'"),
        ("run without config", "no config.json"),
        ("another run", "exported from: its input.size 48 (the model: 64), seed 1 (the model: 0)"),
    ],
)
def test_refusals_are_one_line_and_exit_2(
    case: str, message: str, evaluation: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports, run = [evaluation], None
    if case == "missing report":
        reports = [tmp_path / "nowhere"]
    elif case == "not a report":
        reports = [_not_a_report(tmp_path)]
    elif case == "other model":
        reports = [evaluation, _foreign_report(evaluation, tmp_path, model="other-model")]
    elif case == "other file":  # the same name, another export: its report does not describe this file
        reports = [_foreign_report(evaluation, tmp_path, model_sha256="0" * 64)]
    elif case == "another run":
        run = tmp_path / "another-run"
        run.mkdir()
        config = TrainConfig(data=str(evaluation), out=str(run), epochs=12, seed=1).to_dict()
        (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    else:
        run = tmp_path / "empty-run"
        run.mkdir()
    out = tmp_path / "CARD.md"
    with pytest.raises(CardError, match=re.escape(message)):
        write_card(DEFAULT_MODEL, reports, run, out=out)
    argv = ["card", DEFAULT_MODEL, *(a for r in reports for a in ("--report", str(r))), "--out", str(out)]
    assert main(argv + (["--run", str(run)] if run else [])) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("target", ["model", "report", "run config", "run summary"])
def test_an_out_that_is_one_of_the_card_s_sources_is_refused(
    target: str, evaluation: Path, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The card would take the place of the model file, the report or the run's files it is written from."""
    from maeum.classify import resolve_model

    model = tmp_path / "model.onnx"  # a copy of the bundled model: the same bytes, so its report fits
    shutil.copy(resolve_model(DEFAULT_MODEL), model)
    report = tmp_path / "eval"
    shutil.copytree(evaluation, report)
    out = {
        "model": model,
        "report": report / "report.json",
        "run config": run_dir / "config.json",
        "run summary": run_dir / "summary.json",
    }[target]
    before = out.read_bytes()
    argv = ["card", str(model), "--report", str(report), "--run", str(run_dir), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--out {out}: is the input" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == before
