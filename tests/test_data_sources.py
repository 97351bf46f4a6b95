"""The other dataset kinds: FER2013's CSV, FER+ folders and plain class folders, into the same manifest."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maeum.data.manifest import read_manifest
from maeum.data.prepare import PrepareConfig, prepare
from maeum.data.records import DataError
from maeum.errors import UnknownNameError
from maeum.labels import FERPLUS7


def _face48(photo: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.asarray(Image.fromarray(photo[y0:y1, x0:x1]).convert("L").resize((48, 48)))


def test_fer2013_csv(tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    faces = [_face48(astronaut, (170, 50, 275, 180)), _face48(hopper, (165, 100, 365, 330))]
    rows = ["emotion,pixels,Usage"]
    for i in range(12):
        usage = ("Training", "Training", "PublicTest", "PrivateTest")[i % 4]
        rows.append(f"{i % 7},{' '.join(map(str, faces[i % 2].ravel()))},{usage}")
    rows.append(f"3,{' '.join(['1'] * 100)},Training")  # too few pixels
    rows.append(f"9,{' '.join(map(str, faces[0].ravel()))},Training")  # no such emotion id
    (tmp_path / "fer2013.csv").write_text("\n".join(rows) + "\n")
    s = prepare(PrepareConfig("fer2013", tmp_path / "fer2013.csv", tmp_path / "out", workers=1, report=False))
    assert s["prepared"] == 12 and s["errors"] == {"malformed_record": 2}
    table, meta = read_manifest(tmp_path / "out")
    rows_out = table.to_pylist()
    assert meta["labels"] == list(FERPLUS7)
    assert [r["split"] for r in rows_out].count("train") == 6  # FER2013's own splits are kept
    assert rows_out[3]["label"] == "happiness"  # Kaggle id 3
    crop = np.asarray(Image.open(tmp_path / "out" / rows_out[0]["path"]))
    assert crop.shape == (48, 48) and np.abs(crop.astype(int) - faces[0]).max() <= 1


def test_fer2013_rows_changed_in_the_csv_are_cropped_again_alone(
    tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    faces = [_face48(astronaut, (170, 50, 275, 180)), _face48(hopper, (165, 100, 365, 330))]
    csv = tmp_path / "fer2013.csv"

    def write(which: list[int]) -> None:
        rows = [f"{i % 7},{' '.join(map(str, faces[f].ravel()))},Training" for i, f in enumerate(which)]
        csv.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")

    write([0, 1] * 4)
    out = tmp_path / "out"
    prepare(PrepareConfig("fer2013", csv, out, workers=1, report=False))
    past = 1_000_000_000 * 10**9
    for row in read_manifest(out)[0].to_pylist():
        os.utime(out / row["path"], ns=(past, past))
    write([0, 1, 1, 1, 0, 1, 0, 1, 0])  # row 2 shows the other face; row 8 is new
    with caplog.at_level(logging.INFO, logger="maeum.data.prepare"):
        prepare(PrepareConfig("fer2013", csv, out, workers=1, report=False))
    assert "1 new, 1 changed, 0 removed, 7 kept" in caplog.text
    rows = {r["name"]: r for r in read_manifest(out)[0].to_pylist()}
    rewritten = {n for n, r in rows.items() if (out / r["path"]).stat().st_mtime_ns != past}
    assert rewritten == {"fer2013-00002.png", "fer2013-00008.png"}
    crop = np.asarray(Image.open(out / rows["fer2013-00002.png"]["path"]))
    assert np.abs(crop.astype(int) - faces[1]).max() <= 1  # the new pixels, not the PNG decoded last time


def test_class_folders_in_korean_and_english(tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    for cls, photo in (("기쁨", astronaut), ("sad", hopper), ("중립", hopper)):
        (tmp_path / "src" / cls).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(photo).rotate(i).save(tmp_path / "src" / cls / f"{i}.jpg")
    (tmp_path / "src" / "sad" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    s = prepare(PrepareConfig("folder", tmp_path / "src", tmp_path / "out", size=64, color="rgb", workers=1))
    assert s["prepared"] == 30 and s["errors"] == {"corrupt_image": 1}
    table, meta = read_manifest(tmp_path / "out")
    # Korean and English folder names map to label keys, in AI Hub's class order.
    assert meta["labels"] == ["happiness", "sadness", "neutral"]
    assert {r["label"] for r in table.to_pylist()} == {"happiness", "sadness", "neutral"}
    assert {r["split"] for r in table.to_pylist()} == {"train", "val", "test"}
    assert (tmp_path / "out" / "report.md").is_file()


def test_ferplus_folders(shared: Path, tmp_path: Path) -> None:
    s = prepare(PrepareConfig("ferplus", shared / "data" / "ferplus", tmp_path, cap=20, workers=1, report=False))
    assert s["prepared"] == 20 * len(FERPLUS7)
    assert s["errors"] == {"duplicate_record": 4}  # fer2013new.csv names four images twice
    table, _ = read_manifest(tmp_path)
    rows = table.to_pylist()
    assert all(len(r["votes"]) == 7 and r["votes"][FERPLUS7.index(r["label"])] == max(r["votes"]) for r in rows)
    assert {r["split"] for r in rows} == {"train", "val", "test"}


def test_unknown_kind_and_wrong_sources(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="aihub"):
        prepare(PrepareConfig("affectnet", tmp_path, tmp_path / "out"))
    with pytest.raises(DataError, match=r"fer2013new\.csv"):
        prepare(PrepareConfig("ferplus", tmp_path, tmp_path / "out2"))
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="missing columns"):
        prepare(PrepareConfig("fer2013", tmp_path / "x.csv", tmp_path / "out3"))


def _fer2013_rows(astronaut: np.ndarray, n: int) -> list[str]:
    face = _face48(astronaut, (170, 50, 275, 180))
    return [f"{i % 7},{' '.join(map(str, face.ravel()))},{('Training', 'PublicTest', 'PrivateTest')[i % 3]}"
            for i in range(n)]  # fmt: skip


def test_fer2013_truncated_csv_and_bad_rows_are_logged(tmp_path: Path, astronaut: np.ndarray) -> None:
    text = "\n".join(["emotion,pixels,Usage", *_fer2013_rows(astronaut, 6)]) + "\n"
    bad = ["9," + " ".join(["1"] * 2304) + ",Training", "3," + " ".join(["1"] * 2304) + ",Foo"]
    cut = text + "\n".join(bad) + "\n" + "4,12 34 56"  # a download cut off in the middle of a row
    (tmp_path / "fer2013.csv").write_text(cut)
    s = prepare(PrepareConfig("fer2013", tmp_path / "fer2013.csv", tmp_path / "out", workers=1, report=False))
    assert s["prepared"] == 6 and s["errors"] == {"malformed_record": 3}
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "out" / "errors.jsonl").open(encoding="utf-8")]
    assert "emotion '9' is not a FER2013 label id (0 to 6)" in reasons[0]
    assert "Usage 'Foo' is not Training, PublicTest or PrivateTest" in reasons[1]
    assert "a short row" in reasons[2] and "truncated" in reasons[2]


def test_fer2013_given_a_folder_says_so(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(DataError, match=r"not a file; pass the Kaggle fer2013\.csv"):
        prepare(PrepareConfig("fer2013", tmp_path / "src", tmp_path / "out"))
    assert not (tmp_path / "out").exists()  # a refused run writes nothing


def test_empty_class_folders_are_left_out_with_a_warning(
    tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    for cls, photo in (("기쁨", astronaut), ("sad", hopper)):
        (tmp_path / "src" / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(photo).rotate(i).save(tmp_path / "src" / cls / f"{i}.jpg")
    (tmp_path / "src" / "empty_class" / "nested").mkdir(parents=True)
    (tmp_path / "src" / ".git").mkdir()
    (tmp_path / "src" / "empty_class" / "notes.txt").write_text("no images here")
    with caplog.at_level(logging.WARNING):
        s = prepare(PrepareConfig("folder", tmp_path / "src", tmp_path / "out", size=48, workers=1, report=False))
    assert s["labels"] == ["happiness", "sadness"] and s["prepared"] == 8
    assert "left out 1 class folder(s) without any image: empty_class" in caplog.text


def test_ferplus_keeps_the_first_row_of_a_repeated_image(shared: Path, tmp_path: Path) -> None:
    from maeum.training import ferplus

    root = shared / "data" / "ferplus"
    test = ferplus.load_split(root, "test")
    # fer2013new.csv lists fer0033120.png twice in PrivateTest; FER2013Test has 3,573 images.
    assert len(test.names) == len(set(test.names)) == 3573
    assert test.votes[test.names.index("fer0033120.png")].tolist() == [5, 0, 0, 1, 1, 0, 0, 0, 3, 0]
    assert len(ferplus.load_split(root, "train").names) == len(set(ferplus.load_split(root, "train").names))
    s = prepare(PrepareConfig("ferplus", root, tmp_path, cap=5, workers=1, report=False))
    lines = [json.loads(line) for line in (tmp_path / "errors.jsonl").open(encoding="utf-8")]
    repeated = [e for e in lines if e["kind"] == "duplicate_record"]
    assert len(repeated) == s["errors"]["duplicate_record"] == 4
    assert any(e["file"].endswith("fer2013new.csv:34336") and "fer0033120.png" in e["reason"] for e in repeated)
