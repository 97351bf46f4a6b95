"""``maeum analyze --workers N`` and ``--engine ray``: the images shared out, the answers as one process gives them."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from PIL import Image

import maeum.data.engine
from conftest import EXAMPLES
from maeum.batch import CHUNK_IMAGES, AnalyzerSpec, analyze_chunk, analyze_files
from maeum.cli import main
from maeum.errors import ImageError
from maeum.imageio import load_image


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, bad_files: dict[str, Path]) -> Path:
    """More photos than one chunk holds, with a face, without one, and broken ones among them."""
    d = tmp_path_factory.mktemp("photos")
    for k in range(CHUNK_IMAGES + 3):
        source = ("astronaut.jpg", "grace_hopper.jpg", "chelsea_no_face.jpg")[k % 3]
        shutil.copy(EXAMPLES / source, d / f"{k:02d}-{source}")
    shutil.copy(bad_files["text"], d / "07-notes.jpg")
    shutil.copy(bad_files["truncated"], d / "12-half.jpg")
    shutil.copy(bad_files["empty"], d / "15-empty.jpg")
    save_with_broken_exif(d / "04-exif.jpg")
    return d


def save_with_broken_exif(path: Path) -> None:
    """A photo whose EXIF block is cut short: read, with a warning from the decoder."""
    exif = Image.Exif()
    exif[0x010E] = "a description longer than what is left of the block"
    with Image.open(EXAMPLES / "astronaut.jpg") as im:
        im.save(path, exif=exif.tobytes()[:40])


def analyze(capsys: pytest.CaptureFixture[str], photos: Path, *options: str) -> tuple[int, list[dict], str]:
    code = main(["analyze", str(photos), str(photos / "missing.jpg"), "--format", "jsonl", "--lang", "ko", *options])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_workers_answer_as_one_process_does(capsys, photos) -> None:
    one = analyze(capsys, photos)
    shared = analyze(capsys, photos, "--workers", "2")
    assert shared[0] == one[0] == 1  # some inputs failed, the others have their answers
    assert shared[1] == one[1]
    assert len(one[1]) == CHUNK_IMAGES + 3 + 1 + 3 + 1
    errors = [row for row in one[1] if "error" in row]
    assert [Path(row["path"]).name for row in errors] == ["07-notes.jpg", "12-half.jpg", "15-empty.jpg", "missing.jpg"]
    faces = {Path(row["path"]).name: row["faces"] for row in one[1] if "faces" in row}
    assert faces["00-astronaut.jpg"][0]["label"] == "기쁨" and faces["02-chelsea_no_face.jpg"] == []
    err = shared[2]
    assert "4 input(s) failed" in err and "07-notes.jpg: not an image file" in err and "missing.jpg" in err
    # What a worker logs is written here, as one process writes it (not bare on the worker's stderr).
    warned = f"maeum: {photos / '04-exif.jpg'}: read, with a warning from the decoder"
    assert warned in one[2] and warned in err


def test_a_ray_cluster_answers_as_one_process_does(capsys, photos) -> None:
    pytest.importorskip("ray")
    one = analyze(capsys, photos, "--no-detect")
    on_ray = analyze(capsys, photos, "--no-detect", "--engine", "ray", "--workers", "2")
    assert on_ray[:2] == one[:2]
    assert all(face["detected"] is False for row in one[1] for face in row.get("faces", []))


def test_a_bad_model_is_refused_before_any_worker_starts(capsys, photos, tmp_path) -> None:
    code = main(["analyze", str(photos), "--workers", "2", "--model", str(tmp_path / "none.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "none.onnx" in err


def test_a_chunk_names_each_image_in_its_errors(bad_files) -> None:
    spec = AnalyzerSpec(detector="retinaface", model="ferplus-resnet-s", aligner="similarity", max_pixels=1_000_000)
    good = (EXAMPLES / "astronaut.jpg").read_bytes()
    jobs = [
        ("a.jpg", good, ""),
        ("b.jpg", bad_files["text"].read_bytes(), ""),
        ("c.jpg", b"", "c.jpg: no such file or folder; check the path"),
        ("bomb.png", bad_files["bomb"].read_bytes(), ""),
        ("d.jpg", good, ""),
    ]
    index, answers, logged = analyze_chunk((spec, 7, jobs))
    assert logged == []
    assert index == 7 and [name for name, _ in answers] == ["a.jpg", "b.jpg", "c.jpg", "bomb.png", "d.jpg"]
    assert answers[0][1][0].emotion.label == "happiness" and answers[4][1][0].emotion.label == "happiness"
    assert answers[1][1].startswith("b.jpg: not an image file")
    assert answers[2][1] == "c.jpg: no such file or folder; check the path"
    assert answers[3][1].startswith("bomb.png: image too large")


def test_image_bytes_are_named_in_errors_as_given() -> None:
    with pytest.raises(ImageError, match=r"^upload\.jpg: not an image file"):
        load_image(b"not an image", name="upload.jpg")
    with pytest.raises(ImageError, match=r"^photo\.heic: this installation cannot read HEIC"):
        load_image(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40, name="photo.heic")
    with pytest.raises(ImageError, match=r"^<bytes>: not an image file"):
        load_image(b"not an image")


def test_a_chunk_keeps_what_it_logs_for_the_process_that_asked(tmp_path) -> None:
    save_with_broken_exif(tmp_path / "exif.jpg")
    spec = AnalyzerSpec(detector=None, model="ferplus-resnet-s", aligner="similarity")
    _, answers, logged = analyze_chunk((spec, 0, [("exif.jpg", (tmp_path / "exif.jpg").read_bytes(), "")]))
    assert len(answers[0][1]) == 1
    assert [(name, level) for name, level, _ in logged] == [("maeum.imageio", logging.WARNING)]
    assert logged[0][2].startswith("exif.jpg: read, with a warning from the decoder")
    maeum_logger = logging.getLogger("maeum")
    assert maeum_logger.propagate and not any(type(h).__name__ == "_Keeper" for h in maeum_logger.handlers)


def test_no_worker_starts_without_a_chunk_to_analyse(capsys, monkeypatch, photos) -> None:
    asked: list[int] = []
    run_jobs = maeum.data.engine.run_jobs

    def counted(fn, payloads, engine="local", workers=1, ray_address=None):  # type: ignore[no-untyped-def]
        asked.append(workers)
        return run_jobs(fn, payloads, engine, workers, ray_address)

    monkeypatch.setattr(maeum.data.engine, "run_jobs", counted)
    spec = AnalyzerSpec(detector=None, model="ferplus-resnet-s", aligner="similarity")
    files = sorted(photos.glob("*-astronaut.jpg"))
    few = list(analyze_files(spec, [(str(f), f, "") for f in files[:3]], workers=3))
    assert [Path(name).name for name, _ in few] == [f.name for f in files[:3]] and asked == [1]  # in this process
    assert list(analyze_files(spec, [], workers=3)) == [] and asked[-1] == 0
    # `maeum analyze --workers 3` on three photos analyses them here, with the models it has loaded
    assert main(["analyze", *map(str, files[:3]), "--workers", "3", "--no-detect", "--format", "jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3 and len(asked) == 2
