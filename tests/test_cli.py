from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, YUNET
from maeum.cli import main
from maeum.labels import FERPLUS7, display_name


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_follows_the_rect_label_probs_convention(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze", str(EXAMPLES / "astronaut.jpg"))
    assert code == 0
    data = json.loads(out)
    faces = data[str(EXAMPLES / "astronaut.jpg")]
    assert isinstance(faces, list) and len(faces) == 1
    face = faces[0]
    assert set(face) >= {"rect", "label", "probs", "score", "landmarks", "box", "detected"}
    assert len(face["rect"]) == 4 and all(isinstance(v, int) for v in face["rect"])
    assert list(face["probs"]) == list(FERPLUS7) and face["label"] in FERPLUS7
    assert len(face["landmarks"]) == 5


def test_korean_labels(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze", str(EXAMPLES / "astronaut.jpg"), "--lang", "ko")
    assert code == 0
    face = next(iter(json.loads(out).values()))[0]
    assert face["label"] == "기쁨"
    assert list(face["probs"]) == [display_name(x, "ko") for x in FERPLUS7]


def test_folder_is_searched_recursively_and_no_face_is_empty(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    shutil.copy(EXAMPLES / "astronaut.jpg", tmp_path / "a" / "b" / "x.JPG")
    shutil.copy(EXAMPLES / "chelsea_no_face.jpg", tmp_path / "cat.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    code, out, err = run(capsys, "analyze", str(tmp_path), "--format", "jsonl")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert {Path(x["path"]).name: len(x["faces"]) for x in lines} == {"x.JPG": 1, "cat.jpg": 0}
    assert "no face found" in err and "cat.jpg" in err


def test_glob(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze", str(EXAMPLES / "*.jpg"), "--format", "jsonl")
    assert code == 0 and len(out.splitlines()) == 3


def test_csv_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze", str(EXAMPLES), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 2  # two faces; the cat adds no row
    assert set(FERPLUS7) <= set(rows[0]) and rows[0]["label"] in FERPLUS7
    code, out, _ = run(capsys, "analyze", str(EXAMPLES), "--format", "table", "--lang", "ko")
    assert "chelsea_no_face.jpg: no face" in out and "기쁨" in out


def test_whole_image_flag_and_no_detect(capsys: pytest.CaptureFixture[str]) -> None:
    cat = str(EXAMPLES / "chelsea_no_face.jpg")
    _, out, _ = run(capsys, "analyze", cat, "--whole-image-if-no-face")
    face = json.loads(out)[cat][0]
    assert face["detected"] is False
    _, out, _ = run(capsys, "analyze", str(EXAMPLES / "astronaut.jpg"), "--no-detect")
    assert next(iter(json.loads(out).values()))[0]["detected"] is False


@pytest.mark.parametrize("detector", ["haar", "yunet"])
def test_other_detectors(capsys: pytest.CaptureFixture[str], detector: str) -> None:
    opts = ["--detector-option", f"model_path={YUNET}"] if detector == "yunet" else []
    if detector == "yunet" and not YUNET.is_file():
        pytest.skip("YuNet model not available")
    code, out, _ = run(capsys, "analyze", str(EXAMPLES / "grace_hopper.jpg"), "--detector", detector, *opts)
    assert code == 0 and len(next(iter(json.loads(out).values()))) == 1


def test_bad_inputs_in_a_batch(capsys: pytest.CaptureFixture[str], bad_files: dict[str, Path], tmp_path: Path) -> None:
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    args = [str(bad_files[k]) for k in ("empty", "truncated", "text", "bomb")]
    code, out, err = run(
        capsys,
        "analyze",
        str(bad_files["good"]),
        *args,
        str(tmp_path / "missing.jpg"),
        str(empty_dir),
        "--format",
        "jsonl",
    )
    assert code == 1  # some failed
    lines = [json.loads(x) for x in out.splitlines()]
    names = ["good.jpg", "empty.jpg", "truncated.jpg", "text.jpg", "bomb.png", "missing.jpg", "empty"]
    assert [Path(x["path"]).name for x in lines] == names  # one line per input, in input order
    good = [x for x in lines if "faces" in x]
    assert len(good) == 1 and len(good[0]["faces"]) == 1  # the good file still got its result
    assert [Path(x["path"]).name for x in lines if "error" in x] == names[1:]
    assert "folder holds no images" in lines[-1]["error"]
    for needle in (
        "empty file",
        "truncated",
        "not an image",
        "too large",
        "missing.jpg: no such file",
        "folder holds no images",
        "6 input(s) failed, 1 analysed",
    ):
        assert needle in err, needle


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--model", "nope"], "unknown model 'nope'"),
        (["--detector", "nope"], "unknown detector 'nope'"),
        (["--aligner", "nope"], "unknown aligner 'nope'"),
        (["--model", "missing.onnx"], "missing.onnx not found"),
        (["--detector-option", "oops"], "KEY=VALUE"),
        (["--detector-option", "bogus=1"], "has no option bogus; its options: score_threshold"),
        (["--detector-option", "score_threshold=5"], "score_threshold=5: must be between 0 and 1"),
        (["--detector-option", "score_threshold=high"], "score_threshold='high': must be a number"),
        (["--detector-option", "max_side=0"], "max_side=0: must be at least 32"),
        (["--detector-option", "max_side=640.5"], "max_side=640.5: must be a whole number"),
        (["--detector", "haar", "--detector-option", "scale_factor=0.5"], "scale_factor=0.5: must be above 1"),
        (["--detector", "haar", "--detector-option", "cascade=none.xml"], "Haar cascade none.xml not found"),
        (["--detector", "yunet", "--detector-option", f"model_path={__file__}"], "could not be loaded"),
        (["-o", "/nonexistent/out.json"], "cannot write it"),
    ],
)
def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str], args: list[str], needle: str) -> None:
    code, _, err = run(capsys, "analyze", str(EXAMPLES / "astronaut.jpg"), *args)
    assert code == 2
    lines = [x for x in err.splitlines() if x]
    assert len(lines) == 1 and needle in lines[0]


@pytest.mark.parametrize(
    ("command", "wants"),
    [
        (["evaluate", "ferplus-resnet-s", "--data", "{shared}"], "folder"),
        (["data", "prepare", "ferplus", "{shared}", "--cap", "5"], "folder"),
        (["card", "ferplus-resnet-s", "--report", "{tmp}"], "file"),
        (["ensemble", "ferplus-resnet-s", "ferplus-resnet-s-fast"], "file"),
        (["export", "ferplus-resnet-s-fast", "--data", "{shared}", "--int8"], "file"),
    ],
)
def test_an_out_of_the_wrong_kind_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shared: Path, command: list[str], wants: str
) -> None:
    a_file, a_folder = tmp_path / "a_file", tmp_path / "a_folder"
    a_file.write_text("keep me")
    a_folder.mkdir()
    args = [a.format(shared=shared / "data" / "ferplus", tmp=tmp_path) for a in command]
    wrong = [str(a_file), str(a_file / "below")] if wants == "folder" else [str(a_folder), str(a_file / "x.onnx")]
    for out in wrong:
        code, _, err = run(capsys, *args, "--out", out)
        lines = [x for x in err.splitlines() if x]
        assert code == 2 and len(lines) == 1 and f"--out {out}: " in lines[0], err
    assert a_file.read_text() == "keep me" and not any(a_folder.iterdir())


def test_upright_aligner(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "analyze", str(EXAMPLES / "astronaut.jpg"), "--aligner", "upright")
    assert code == 0 and next(iter(json.loads(out).values()))[0]["label"] == "happiness"


def test_output_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    code, out, _ = run(capsys, "analyze", str(EXAMPLES / "astronaut.jpg"), "-o", str(target))
    assert code == 0 and out == "" and len(json.loads(target.read_text())) == 1


def test_console_script_and_models() -> None:
    exe = Path(sys.executable).with_name("maeum")
    done = subprocess.run([str(exe), "models"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "retinaface" in done.stdout and "중립" in done.stdout
    done = subprocess.run([str(exe), "analyze", str(EXAMPLES / "nope.jpg")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "nope.jpg: no such file" in done.stderr


def test_closed_pipe_is_not_a_crash() -> None:
    exe = Path(sys.executable).with_name("maeum")
    args = " ".join([str(EXAMPLES)] * 8)
    done = subprocess.run(
        f"'{exe}' analyze {args} --format jsonl | head -n 1", shell=True, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
