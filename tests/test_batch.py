"""``maeum analyze --workers N`` and ``--engine ray``: the images shared out, the answers as one process gives them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import EXAMPLES
from maeum.batch import CHUNK_IMAGES, AnalyzerSpec, analyze_chunk
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
    return d


def analyze(capsys: pytest.CaptureFixture[str], photos: Path, *options: str) -> tuple[int, list[dict], str]:
    code = main(["analyze", str(photos), str(photos / "missing.jpg"), "--format", "jsonl", "--lang", "ko", *options])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


def test_workers_answer_as_one_process_does(capsys, photos) -> None:
    one = analyze(capsys, photos)
    shared = analyze(capsys, photos, "--workers", "2")
    assert shared[0] == one[0] == 1  # some inputs failed, the others have their answers
    assert shared[1] == one[1]
    assert len(one[1]) == CHUNK_IMAGES + 3 + 3 + 1
    errors = [row for row in one[1] if "error" in row]
    assert [Path(row["path"]).name for row in errors] == ["07-notes.jpg", "12-half.jpg", "15-empty.jpg", "missing.jpg"]
    faces = {Path(row["path"]).name: row["faces"] for row in one[1] if "faces" in row}
    assert faces["00-astronaut.jpg"][0]["label"] == "기쁨" and faces["02-chelsea_no_face.jpg"] == []
    err = shared[2]
    assert "4 input(s) failed" in err and "07-notes.jpg: not an image file" in err and "missing.jpg" in err


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
    index, answers = analyze_chunk((spec, 7, jobs))
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
