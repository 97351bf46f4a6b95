from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import onnx
import pytest
from PIL import Image

import maeum
from conftest import EXAMPLES, YUNET, tiny_model, unprivileged
from maeum import cli
from maeum.cli import main
from maeum.filenames import printable
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
    assert "chelsea_no_face.jpg: 얼굴 없음" in out and "기쁨" in out


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
        (["--detector", "haar", "--detector-option", f"cascade={__file__}"], "is it an OpenCV cascade XML file?"),
        (["--detector", "haar", "--detector-option", f"cascade={EXAMPLES / 'astronaut.jpg'}"], "cascade XML file?"),
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


def test_closed_pipe_is_not_a_crash(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("maeum")
    for k in range(8):  # copies: the same file named twice is read once
        shutil.copytree(EXAMPLES, tmp_path / str(k))
    args = " ".join(str(tmp_path / str(k)) for k in range(8))
    done = subprocess.run(
        f"'{exe}' analyze {args} --format jsonl | head -n 1", shell=True, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.count("\n") == 1
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


# --------------------------------------------------------------------------------------------
# Inputs and outputs that must not break a run


def maeum_process(*args: str, stdout: int | None = subprocess.PIPE, cwd: Path | None = None, root: bool = True):
    """``maeum ARGS`` in a child process (where a crash cannot take the tests with it)."""
    argv = [sys.executable, "-m", "maeum.cli", *args]
    return subprocess.run(
        argv if root else unprivileged(argv), stdout=stdout, stderr=subprocess.PIPE, cwd=cwd, timeout=300
    )


def test_an_output_that_is_an_input_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = folder / "astronaut.jpg"
    shutil.copy(EXAMPLES / "astronaut.jpg", photo)
    (tmp_path / "link.jpg").symlink_to(photo)
    data = photo.read_bytes()
    for inputs, output in (
        ([photo], photo),  # the photo itself
        ([folder], photo),  # a photo inside the folder analysed
        ([tmp_path / "link.jpg"], photo),  # the same file under another name
        ([photo], folder / ".." / "photos" / "astronaut.jpg"),
    ):
        code, out, err = run(capsys, "analyze", *map(str, inputs), "-o", str(output))
        lines = err.splitlines()
        assert code == 2 and out == "" and len(lines) == 1, err
        assert f"-o {output}: is the input" in lines[0]
        assert photo.read_bytes() == data


def test_thin_images_give_no_face_and_the_others_their_results(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    strips = []
    for w, h in ((4000, 1), (1, 4000), (8000, 2)):
        strips.append(tmp_path / f"{w}x{h}.png")
        Image.new("RGB", (w, h), (120, 90, 60)).save(strips[-1])
    good = str(EXAMPLES / "astronaut.jpg")
    code, out, _ = run(capsys, "analyze", good, *map(str, strips), "-o", str(tmp_path / "out.json"))
    assert code == 0 and out == ""
    results = json.loads((tmp_path / "out.json").read_text())
    assert len(results[good]) == 1 and all(results[str(p)] == [] for p in strips)


def test_file_names_that_are_not_utf8_are_written_escaped(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # 얼굴.jpg as a Korean Windows zip stores it: EUC-KR bytes, not UTF-8.
    folder = tmp_path / "names"
    folder.mkdir()
    shutil.copy(EXAMPLES / "astronaut.jpg", os.fsdecode(bytes(folder) + b"/\xbe\xf3\xb1\xbc.jpg"))
    (folder / "nope.jpg").write_bytes(b"not an image")
    out_file = tmp_path / "out.json"
    code, _, err = run(capsys, "analyze", str(folder), "-o", str(out_file))
    assert code == 1 and "nope.jpg: not an image" in err
    results = json.loads(out_file.read_bytes().decode("utf-8"))  # strict UTF-8
    assert {k: len(v) for k, v in results.items()} == {f"{folder}/\\xbe\\xf3\\xb1\\xbc.jpg": 1}
    code, out, _ = run(capsys, "analyze", str(folder), "--format", "csv")
    assert code == 1 and "\\xbe\\xf3\\xb1\\xbc.jpg,0," in out
    bad = os.fsdecode(bytes(folder) + b"/\xbe\xf3.jpg")  # a missing one: the error names it the same way
    code, out, err = run(capsys, "analyze", bad, "--format", "jsonl")
    assert code == 1 and json.loads(out)["path"].endswith("/\\xbe\\xf3.jpg") and "\\xbe\\xf3.jpg: no such" in err
    assert printable("얼굴.jpg") == "얼굴.jpg"


def test_existing_paths_with_glob_characters_are_taken_as_they_are(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copy(EXAMPLES / "astronaut.jpg", tmp_path / "photo[1].jpg")
    (tmp_path / "album[2020]").mkdir()
    shutil.copy(EXAMPLES / "grace_hopper.jpg", tmp_path / "album[2020]" / "x.jpg")
    code, out, _ = run(capsys, "analyze", str(tmp_path / "photo[1].jpg"), str(tmp_path / "album[2020]"))
    assert code == 0
    assert {Path(k).name: len(v) for k, v in json.loads(out).items()} == {"photo[1].jpg": 1, "x.jpg": 1}
    shutil.copy(EXAMPLES / "astronaut.jpg", tmp_path / "photo2.jpg")
    code, out, _ = run(capsys, "analyze", str(tmp_path / "photo[0-9].jpg"))  # a pattern no file is named
    assert code == 0 and [Path(k).name for k in json.loads(out)] == ["photo2.jpg"]


def test_folder_walks_skip_hidden_files_and_each_file_is_read_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    (tree / "a" / ".Trashes").mkdir(parents=True)
    shutil.copy(EXAMPLES / "astronaut.jpg", tree / "a" / "photo.jpg")
    (tree / "a" / "._photo.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    (tree / "a" / ".Trashes" / "old.jpg").write_bytes(b"deleted, half written")
    (tree / "a" / "loop").symlink_to("..")  # a link loop that `**` follows
    code, out, err = run(capsys, "analyze", str(tree), "--format", "jsonl")
    assert code == 0 and err == ""
    assert [json.loads(line)["path"] for line in out.splitlines()] == [str(tree / "a" / "photo.jpg")]
    code, out, err = run(
        capsys, "analyze", str(tree / "**" / "*.jpg"), str(tree / "a" / "photo.jpg"), "--format", "jsonl"
    )
    assert code == 0 and [json.loads(line)["path"] for line in out.splitlines()] == [str(tree / "a" / "photo.jpg")]


def test_unreadable_files_and_folders_say_permission_denied(tmp_path: Path) -> None:
    ok = tmp_path / "ok.jpg"
    shutil.copy(EXAMPLES / "astronaut.jpg", ok)
    locked, noperm = tmp_path / "locked", tmp_path / "noperm.jpg"
    locked.mkdir()
    shutil.copy(EXAMPLES / "astronaut.jpg", locked / "x.jpg")
    shutil.copy(EXAMPLES / "astronaut.jpg", noperm)
    locked.chmod(0)
    noperm.chmod(0)
    try:
        done = maeum_process(
            "analyze", str(ok), str(locked / "x.jpg"), str(noperm), str(locked), "--format", "jsonl", root=False
        )
    finally:
        locked.chmod(0o755)
    err = done.stderr.decode()
    assert done.returncode == 1 and "Traceback" not in err, err
    lines = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert len(lines[0]["faces"]) == 1  # the readable file still got its result
    assert [x["path"] for x in lines[1:]] == [str(locked / "x.jpg"), str(noperm), str(locked)]
    assert all("permission denied" in x["error"] for x in lines[1:])
    assert "3 input(s) failed, 1 analysed" in err


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_a_one_line_error_with_its_own_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "analyze", str(EXAMPLES / "astronaut.jpg"), "-o", "/dev/full")
    assert code == 3 and err.splitlines() == ["maeum: cannot write /dev/full: No space left on device"]
    with open("/dev/full", "wb") as full:
        done = maeum_process("analyze", str(EXAMPLES / "astronaut.jpg"), stdout=full.fileno())
    assert done.returncode == 3, done.stderr
    assert done.stderr.decode().splitlines() == ["maeum: cannot write stdout: No space left on device"]


def test_model_metadata_that_is_not_an_object(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for text in ("null", "[1, 2]", '"labels"'):
        model = onnx.load(str(tiny_model(tmp_path / "tiny.onnx")))
        model.metadata_props[0].value = text
        onnx.save(model, str(tmp_path / "null.onnx"))
        code, _, err = run(capsys, "analyze", str(EXAMPLES / "astronaut.jpg"), "--model", str(tmp_path / "null.onnx"))
        assert code == 2 and "malformed 'maeum' metadata" in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_max_pixels_must_be_positive(capsys: pytest.CaptureFixture[str], value: str) -> None:
    with pytest.raises(SystemExit) as e:
        main(["analyze", str(EXAMPLES / "astronaut.jpg"), "--max-pixels", value])
    assert e.value.code == 2 and "--max-pixels: must be" in capsys.readouterr().err


def test_dash_output_is_stdout_and_korean_csv_files_have_a_bom(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "analyze", str(EXAMPLES / "astronaut.jpg"), "-o", "-")
    assert code == 0 and len(json.loads(out)) == 1 and not (tmp_path / "-").exists()
    code, _, _ = run(
        capsys, "analyze", str(EXAMPLES / "astronaut.jpg"), "--format", "csv", "--lang", "ko", "-o", "k.csv"
    )
    data = (tmp_path / "k.csv").read_bytes()
    assert code == 0 and data.startswith(b"\xef\xbb\xbfpath,") and "기쁨".encode() in data


# --------------------------------------------------------------------------------------------
# Options anywhere, refused combinations, Ctrl-C at startup


def _subcommands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """(path, parser) for every subcommand, nested ones (``data prepare``) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _subcommands(sub, (*path, name))


def test_verbose_works_after_the_subcommand_too(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cat = str(EXAMPLES / "chelsea_no_face.jpg")
    code, _, quiet = run(capsys, "analyze", cat, "--whole-image-if-no-face")
    assert code == 0 and "centred square" not in quiet  # analyze logs warnings only, unless -v
    code, _, before = run(capsys, "-v", "analyze", cat, "--whole-image-if-no-face")
    assert code == 0 and "maeum: no face found; classifying the image's centred square" in before
    code, _, after = run(capsys, "analyze", "-v", cat, "--whole-image-if-no-face")
    assert code == 0 and after == before
    assert logging.getLogger().level == logging.DEBUG
    # A nested subcommand takes it too: the run fails on its missing source, not on the option.
    code, _, _ = run(capsys, "data", "prepare", "-v", "folder", str(tmp_path / "missing"), "--out", str(tmp_path / "o"))
    assert code in (1, 2) and logging.getLogger().level == logging.DEBUG
    commands = dict(_subcommands(cli._parser()))
    assert {("analyze",), ("video",), ("data", "prepare"), ("app", "export-dataset"), ("train",)} <= set(commands)
    for path, parser in commands.items():
        assert "-v, --verbose" in parser.format_help(), path


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--detector", "nope"], "--detector does not apply"),
        (["--detector", "retinaface"], "--detector does not apply"),  # the default, named: still meaningless
        (["--detector-option", "score_threshold=0.9"], "--detector-option does not apply"),
        (["--aligner", "upright"], "--aligner does not apply"),
        (["--whole-image-if-no-face"], "--whole-image-if-no-face does not apply"),
        (["--detector", "haar", "--aligner", "upright"], "--detector and --aligner do not apply"),
    ],
)
def test_no_detect_refuses_the_options_it_ignores(
    capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    code, out, err = run(capsys, "analyze", str(EXAMPLES / "astronaut.jpg"), "--no-detect", *args)
    lines = [x for x in err.splitlines() if x]
    assert code == 2 and out == "" and len(lines) == 1, err
    assert lines[0].startswith("maeum: --no-detect classifies each image's centred square") and named in lines[0]


def test_import_maeum_loads_nothing_heavy_until_a_name_is_used() -> None:
    # What makes Ctrl-C at startup catchable: the entry point runs before numpy, OpenCV, ONNX Runtime load.
    code = (
        "import json, sys, maeum; before = sorted(m for m in ('numpy', 'cv2', 'onnxruntime') if m in sys.modules); "
        "from maeum import Analyzer, list_emotion_models; "
        "print(json.dumps([before, Analyzer.__module__, list_emotion_models.__name__, 'load_image' in dir(maeum)]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert json.loads(done.stdout) == [[], "maeum.analyzer", "list_models", True], done.stderr
    with pytest.raises(AttributeError, match="module 'maeum' has no attribute 'nope'"):
        maeum.nope  # noqa: B018


def _maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:  # the process has ended
        return ""


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="watches the child's /proc/PID/maps (Linux)")
@pytest.mark.parametrize("entry", ["console script", "python -m maeum"])
@pytest.mark.parametrize("library", ["_multiarray_umath", "onnxruntime_pybind11_state"])
def test_ctrl_c_while_the_command_loads_is_one_line_and_130(entry: str, library: str, tmp_path: Path) -> None:
    """Ctrl-C while ``maeum analyze`` still imports numpy or ONNX Runtime, before it runs.

    The signal goes out as soon as the library's shared object appears in the child's memory map:
    inside the import, after Python's own start-up (which no program can guard); 40 photos keep a
    slow signal from arriving after the run.
    """
    for k in range(40):
        shutil.copy(EXAMPLES / "astronaut.jpg", tmp_path / f"{k}.jpg")
    command = (
        [str(Path(sys.executable).with_name("maeum"))] if entry == "console script" else [sys.executable, "-m", "maeum"]
    )
    # SIGINT back to its default in the child: a shell that starts the tests in the background ignores it.
    proc = subprocess.Popen(
        [*command, "analyze", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while library not in _maps(proc.pid):
            assert proc.poll() is None, f"ended before loading {library}: {proc.communicate()}"
            assert time.monotonic() < deadline, f"{library} not loaded after 60 s"
            time.sleep(0.001)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "Traceback" not in err and err.splitlines() == ["maeum: interrupted"], err
    assert proc.returncode == 130 and out == ""


def test_an_output_file_s_suffix_picks_the_format_unless_one_is_given(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    photo = str(EXAMPLES / "astronaut.jpg")
    code, _, _ = run(capsys, "analyze", photo, "-o", str(tmp_path / "faces.CSV"), "--lang", "ko")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "faces.CSV").read_text(encoding="utf-8-sig"))))
    assert code == 0 and [(r["path"], r["label"]) for r in rows] == [(photo, "기쁨")]
    code, _, _ = run(capsys, "analyze", photo, "-o", str(tmp_path / "faces.jsonl"))
    lines = (tmp_path / "faces.jsonl").read_text().splitlines()
    assert code == 0 and len(lines) == 1 and json.loads(lines[0])["path"] == photo
    code, _, _ = run(capsys, "analyze", photo, "-o", str(tmp_path / "faces.csv"), "--format", "table")
    assert code == 0 and (tmp_path / "faces.csv").read_text().startswith(f"{photo} #0 rect=")
    code, _, _ = run(capsys, "analyze", photo, "-o", str(tmp_path / "faces.txt"))  # no format of its own: json
    assert code == 0 and list(json.loads((tmp_path / "faces.txt").read_text())) == [photo]


def test_jfif_files_are_read_and_photos_pillow_cannot_read_are_reported_not_skipped(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    shutil.copy(EXAMPLES / "astronaut.jpg", tmp_path / "saved from the web.jfif")
    # The start of an iPhone HEIC file: Pillow reads HEIC only with a plugin, and maeum registers none.
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))
    code, out, err = run(capsys, "analyze", str(tmp_path), "--format", "jsonl")
    lines = {Path(x["path"]).name: x for x in map(json.loads, out.splitlines())}
    assert code == 1 and len(lines["saved from the web.jfif"]["faces"]) == 1
    assert "cannot read HEIC images; convert it to JPEG or PNG" in lines["IMG_0001.HEIC"]["error"]
    assert "IMG_0001.HEIC: this installation cannot read HEIC images" in err


def test_a_dash_input_says_images_are_not_read_from_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "analyze", "-", str(EXAMPLES / "astronaut.jpg"))
    assert code == 1 and "-: no such file or folder; check the path (images are not read from stdin" in err


def test_a_photo_with_damaged_exif_is_analysed_with_one_warning_line(tmp_path: Path) -> None:
    import struct

    from maeum.imageio import load_image

    # EXIF naming a Make tag stored past the end of its block: Pillow warns (UserWarning) and reads the image.
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + struct.pack(">HHII", 0x010F, 2, 20, 1000) + b"\x00" * 4
    photo = tmp_path / "photo.jpg"
    Image.fromarray(load_image(EXAMPLES / "astronaut.jpg")).save(photo, exif=b"Exif\x00\x00" + tiff)
    done = maeum_process("analyze", str(photo), "--format", "jsonl")
    err = done.stderr.decode()
    assert done.returncode == 0 and len(json.loads(done.stdout)["faces"]) == 1
    assert err.splitlines() == [f"maeum: {photo}: read, with a warning from the decoder: Truncated File Read"], err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_message_logged_under_a_progress_bar_starts_its_own_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from maeum.progress import Progress

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    handler = cli._BelowTheBar(terminal)
    handler.setFormatter(logging.Formatter("maeum: %(message)s"))
    record = logging.LogRecord("maeum", logging.WARNING, __file__, 1, "broken.jpg: not an image", None, None)
    bar = Progress(10, "img")
    bar.update(4, 4, force=True)
    handler.emit(record)  # erases the bar's line first
    bar.update(5, 5, force=True)  # and the bar is drawn again below the message
    bar.close()
    handler.emit(record)  # after close: nothing to erase
    lines = terminal.getvalue().split("\n")
    assert lines[0].startswith("\r[############") and lines[0].endswith("\r\x1b[Kmaeum: broken.jpg: not an image")
    assert lines[1].startswith("\r[###############") and "\x1b[K" not in lines[1]  # drawn again, then closed
    assert lines[2:] == ["maeum: broken.jpg: not an image", ""]


def test_no_progress_bar_between_results_on_the_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(40):  # long enough for the bar to be drawn (it waits 0.2 s)
        shutil.copy(EXAMPLES / "astronaut.jpg", folder / f"{i:02d}.jpg")

    def run(stdout: io.StringIO) -> str:
        stderr = _Terminal()
        monkeypatch.setattr(sys, "stdout", stdout)
        monkeypatch.setattr(sys, "stderr", stderr)
        assert cli.main(["analyze", str(folder), "--format", "jsonl"]) == 0
        assert stdout.getvalue().count("\n") == 40
        return stderr.getvalue()

    assert "images/s" in run(io.StringIO())  # results piped: the bar on the terminal
    assert "images/s" not in run(_Terminal())  # results on the terminal too: none
