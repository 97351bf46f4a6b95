"""`maeum data prepare` on generated AI Hub downloads built from real face photos.

The expected counts below are worked out by hand from ``aihub_fixture.default_records()``
(its docstring table): 40 records + 1 in the truncated 기타 file.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from aihub_fixture import (
    FixtureRecord,
    build_layout_a,
    build_scaled,
    default_records,
    fixture_filename,
    rewrite_zip,
)
from maeum.data.archive import read_location
from maeum.data.crop import square_region
from maeum.data.manifest import read_manifest
from maeum.data.prepare import PrepareConfig, prepare
from maeum.data.records import DataError
from maeum.detect import create_detector


@pytest.fixture(scope="module")
def aihub_zips(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("aihub_zips")
    return build_layout_a(root, default_records(), zipped=True)


@pytest.fixture(scope="module")
def prepared(aihub_zips, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("prepared")
    summary = prepare(PrepareConfig("aihub", aihub_zips.root, out, workers=1, report=False))
    return out, summary


def _rows(out: Path) -> list[dict]:
    table, _ = read_manifest(out)
    return table.to_pylist()


def _digest(out: Path) -> dict[str, str]:
    """Every output file's hash, the work folder aside."""
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and ".work" not in p.parts
    }


def test_counts_match_the_hand_count(prepared) -> None:
    _, s = prepared
    # Policies over the 41 records read: 23 unanimous, 11 two-of-three, 6 all different,
    # plus the truncated file's record (no annotators, uploader label '기타' unknown).
    assert s["policies"] == {
        "majority": {"kept": 34, "dropped": 7},
        "unanimous": {"kept": 23, "dropped": 18},
        "uploader": {"kept": 40, "dropped": 1},
        "tiebreak": {"kept": 40, "dropped": 1},
    }
    assert s["records"] == 41 and s["images"] == 40  # 39 record images + 1 without a record
    # 34 with a majority label - #33 (missing image) - #34 (corrupt) - #39 (no usable box).
    assert s["prepared"] == 31
    # The truncated file's record has neither label nor image: counted once, as no_image; the
    # crop stage leaves out #34 (corrupt) and #39 (no usable box). Every record is accounted for.
    assert s["left_out"] == {"no_label": 6, "no_image": 1 + 1, "capped": 0, "corrupt_image": 1, "no_box": 1}
    assert s["records"] == s["prepared"] + sum(s["left_out"].values())
    assert s["errors"] == {
        "unknown_emotion": 3,  # '놀람?' twice (#31, #32), uploader '기타'
        "malformed_record": 3,  # the truncated file's record lacks annotators A, B, C
        "malformed_json": 1,
        "invalid_box": 2,  # #35 A inverted, #39 C empty
        "missing_image": 2,  # #33 and the truncated file's record
        "no_record": 1,  # the orphan image
        "box_outside_image": 1,  # #36 B
        "corrupt_image": 1,  # #34
        "no_box": 1,  # #39
    }
    per_class = s["agreement"]["per_class"]
    assert per_class["happiness"]["images"] == 6  # uploader 기쁨: #0 7 14 28 31 33
    # Uploader 슬픔: #5 12 19 25 32 34; unanimous #5 12 34; all different #32.
    assert per_class["sadness"] == {"images": 6, "unanimous": 0.5, "majority": 0.8333, "all_different": 0.1667}
    assert 0 < s["agreement"]["fleiss_kappa"] < 1


def test_errors_file_names_file_and_reason(prepared) -> None:
    out, s = prepared
    lines = [json.loads(line) for line in (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == sum(s["errors"].values())
    corrupt = next(e for e in lines if e["kind"] == "corrupt_image")
    assert "::EMOIMG_슬픔_TRAIN_01/" in corrupt["file"] and "truncated" in corrupt["reason"]
    json_error = next(e for e in lines if e["kind"] == "malformed_json")
    assert json_error["file"].endswith("img_emotion_training_data(기타).json")


def test_manifest_rows(prepared, aihub_zips) -> None:
    out, _ = prepared
    rows = _rows(out)
    assert len(rows) == 31
    persons: dict[str, set[str]] = {}
    for row in rows:
        persons.setdefault(row["person"], set()).add(row["split"])
        assert Path(out / row["path"]).is_file()
        assert row["label"] in ("happiness", "embarrassment", "anger", "anxiety", "hurt", "sadness", "neutral")
        assert sum(row["votes"]) <= 3 and row["votes"][0] + row["votes"][6] <= 3
    assert all(len(splits) == 1 for splits in persons.values()), "a person is in two splits"
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    fixture = aihub_zips.by_name()
    for row in rows:  # the crop is the square around the true face, whatever the annotators' jitter
        truth = square_region(fixture[row["name"]].face_box, 0.2)
        assert _iou(row["crop_box"], truth) > 0.8, row["name"]
    masks = [r for r in rows if r["mask_path"]]
    assert len(masks) == 3  # records 0, 4 and 37
    m = np.asarray(Image.open(out / masks[0]["mask_path"]))
    assert m.shape == (224, 224) and set(np.unique(m)) <= {0, 1, 2, 3, 4, 5} and (m == 3).mean() > 0.3


def test_rotated_photos_come_out_upright(prepared, aihub_zips) -> None:
    out, _ = prepared
    rotated = set(aihub_zips.orientations)
    assert len(rotated) == 2
    detector = create_detector("retinaface")
    for row in _rows(out):
        if row["name"] in rotated:
            crop = np.asarray(Image.open(out / row["path"]).convert("RGB"))
            faces = detector.detect(crop)
            assert faces and faces[0].score > 0.8
            (lx, ly), (rx, ry) = faces[0].landmarks[:2]
            assert abs(ly - ry) < 0.2 * abs(rx - lx), "eyes not level: the crop is not upright"


def test_extracted_folders_give_the_same_dataset(prepared, tmp_path: Path) -> None:
    out, summary = prepared
    folders = build_layout_a(tmp_path / "src", default_records(), zipped=False)
    summary2 = prepare(PrepareConfig("aihub", folders.root, tmp_path / "out", workers=1, report=False))
    assert summary2["prepared"] == summary["prepared"] and summary2["errors"] == summary["errors"]
    strip = [{k: v for k, v in r.items() if k != "source"} for r in _rows(out)]
    assert [{k: v for k, v in r.items() if k != "source"} for r in _rows(tmp_path / "out")] == strip
    for rel in ("images",):
        assert {k: v for k, v in _digest(out).items() if k.startswith(rel)} == {
            k: v for k, v in _digest(tmp_path / "out").items() if k.startswith(rel)
        }


def test_detect_mode_aligns_faces(aihub_zips, tmp_path: Path) -> None:
    prepare(PrepareConfig("aihub", aihub_zips.root, tmp_path, crop="detect", size=112, workers=1, report=False))
    detector = create_detector("retinaface")
    eyes = []
    for row in _rows(tmp_path)[:8]:
        crop = np.asarray(Image.open(tmp_path / row["path"]).convert("RGB"))
        assert crop.shape == (112, 112, 3)
        (lx, ly), (rx, ry) = detector.detect(crop)[0].landmarks[:2]
        eyes.append((lx, ly, rx, ry))
    eyes = np.asarray(eyes)
    assert np.abs(eyes[:, 1] - eyes[:, 3]).max() < 3  # eyes level
    assert (eyes[:, 2] - eyes[:, 0]).std() < 3  # the same eye distance in every crop
    assert np.abs((eyes[:, 0] + eyes[:, 2]) / 2 - 56).max() < 4  # centred


def test_gray_48_and_policy_options(aihub_zips, tmp_path: Path) -> None:
    s = prepare(
        PrepareConfig(
            "aihub", aihub_zips.root, tmp_path, policy="unanimous", size=48, color="gray", image_format="jpg", workers=1
        )
    )
    # 23 unanimous - #33 missing - #34 corrupt - #39 no box.
    assert s["prepared"] == 20
    rows = _rows(tmp_path)
    assert rows[0]["path"].endswith(".jpg") and Image.open(tmp_path / rows[0]["path"]).format == "JPEG"
    assert Image.open(tmp_path / rows[0]["path"]).mode == "L"
    assert Image.open(tmp_path / rows[0]["path"]).size == (48, 48)
    _, meta = read_manifest(tmp_path)
    assert meta["image_format"] == "jpg" and meta["manifest_version"] == 1
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "기쁨 (happiness)" in report and "unanimous" in report and "| image_format | jpg |" in report


def test_cap_keeps_at_most_n_per_class(aihub_zips, tmp_path: Path) -> None:
    s = prepare(PrepareConfig("aihub", aihub_zips.root, tmp_path, cap=3, workers=1, report=False))
    per_class: dict[str, int] = {}
    for split in s["splits"].values():
        for label, n in split.items():
            per_class[label] = per_class.get(label, 0) + n
    assert max(per_class.values()) <= 3 and s["left_out"]["capped"] > 0


def test_other_settings_in_the_same_folder_are_refused(prepared, aihub_zips) -> None:
    out, _ = prepared
    with pytest.raises(DataError, match="policy"):
        prepare(PrepareConfig("aihub", aihub_zips.root, out, policy="unanimous", workers=1))


def test_rerun_of_a_finished_folder_changes_nothing(prepared, aihub_zips) -> None:
    out, _ = prepared
    before = _digest(out)
    prepare(PrepareConfig("aihub", aihub_zips.root, out, workers=1, report=False))
    assert _digest(out) == before


def test_missing_source_and_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        prepare(PrepareConfig("aihub", tmp_path / "nowhere", tmp_path / "out"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no JSON label files"):
        prepare(PrepareConfig("aihub", tmp_path / "empty", tmp_path / "out2"))
    with pytest.raises(DataError, match="policy"):
        PrepareConfig("aihub", tmp_path, tmp_path, policy="vote")


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory):
    return build_scaled(tmp_path_factory.mktemp("scaled"), 240, size=(900, 1200))


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "maeum.cli", *args]


def test_killed_run_resumes_to_identical_outputs(scaled, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    prepare(PrepareConfig("aihub", scaled.root, reference, workers=1, shard_size=16))
    out = tmp_path / "killed"
    args = _cli("data", "prepare", "aihub", str(scaled.root), "--out", str(out), "--workers", "1", "--shard-size", "16")
    proc = subprocess.Popen(args, stderr=subprocess.DEVNULL)
    db = out / ".work" / "state.sqlite"
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db) as con:
                    done = con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
            except sqlite3.Error:
                done = 0
            if done >= 3 * 16:  # three shards committed
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert done >= 3, "the run ended before it could be killed"
    assert not (out / "manifest.parquet").exists()
    subprocess.run(args, check=True, stderr=subprocess.DEVNULL)
    assert _digest(out) == _digest(reference)


def test_ray_engine_gives_the_same_outputs(aihub_zips, prepared, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    out, _ = prepared
    prepare(PrepareConfig("aihub", aihub_zips.root, tmp_path, workers=2, engine="ray", shard_size=8, report=False))
    assert _digest(tmp_path) == _digest(out)


def test_full_disk_is_logged_and_resumed(aihub_zips, prepared, tmp_path: Path) -> None:
    images = tmp_path / "out" / "images"
    images.mkdir(parents=True)
    if (
        os.geteuid() != 0
        or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(images)]).returncode
    ):
        pytest.skip("needs root to mount a small tmpfs standing in for a full disk")
    try:
        cfg = PrepareConfig("aihub", aihub_zips.root, tmp_path / "out", workers=1, shard_size=4, report=False)
        s = prepare(cfg)
        assert s["errors"]["write_failed"] > 0
        assert 0 < s["prepared"] < 31
        for row in _rows(tmp_path / "out"):  # what was written is whole
            with Image.open(tmp_path / "out" / row["path"]) as im:
                im.load()
        assert not list(images.rglob(".*.tmp"))
    finally:
        subprocess.run(["umount", "-l", str(images)], check=True)
    s = prepare(cfg)  # space again: the crops that failed are cut
    assert "write_failed" not in s["errors"] and s["prepared"] == 31
    reference, _ = prepared
    assert _rows(tmp_path / "out") == _rows(reference)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


class _FlakyServer:
    """A loopback HTTP server for layout B: serves files by name; names in ``broken`` answer 404."""

    def __init__(self, files: dict[str, bytes]) -> None:
        import http.server
        import threading
        import urllib.parse

        self.files, self.broken, self.requests = files, set(), []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = urllib.parse.unquote(self.path.lstrip("/"))
                outer.requests.append(name)
                if name in outer.broken or name not in outer.files:
                    self.send_error(404)
                    return
                body = outer.files[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_layout_b_tsv_downloads_and_reruns_fetch_only_failures(tmp_path: Path, monkeypatch) -> None:
    import urllib.parse

    for var in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    info = build_layout_a(tmp_path / "a", default_records()[:14], zipped=False, malformed_json=False)
    files = {img.filename: next(info.root.rglob(img.filename)).read_bytes() for img in info.images}
    server = _FlakyServer(files)
    names = sorted(files)
    server.broken = set(names[:3])
    lines = ["name\turl\tTaskA_emotion\tTaskB_emotion\tTaskC_emotion\tTaskA_background\tTaskB_background\t"
             "TaskC_background\tTaskA_result\tTaskB_result\tTaskC_result"]  # fmt: skip
    for img in info.images:
        x0, y0, x1, y1 = info.stored_face_box(img.filename)
        box = json.dumps({"minX": x0, "minY": y0, "maxX": x1, "maxY": y1})
        url = server.url + urllib.parse.quote(img.filename)
        lines.append("\t".join([img.filename, url, *img.record.votes, *["실내"] * 3, box, box, box]))
    tsv = tmp_path / "layout_b.tsv"
    tsv.write_text("\n".join(lines) + "\n", encoding="cp949")

    out = tmp_path / "out"
    s = prepare(PrepareConfig("aihub", tsv, out, workers=1, report=False))
    assert s["errors"] == {"download_failed": 3} and s["prepared"] == 11
    assert len(server.requests) == 14
    failures = (out / "downloads" / "download_failures.tsv").read_text(encoding="utf-8")
    assert all(n in failures for n in names[:3])

    server.broken, server.requests = set(), []
    s = prepare(PrepareConfig("aihub", tsv, out, workers=1, report=False))
    assert sorted(server.requests) == names[:3]  # only what failed is fetched again
    assert s["errors"] == {} and s["prepared"] == 14
    assert not (out / "downloads" / "download_failures.tsv").exists()
    rows = _rows(out)
    assert {r["name"] for r in rows} == set(names)
    assert len({p for r in rows for p in [r["path"]]}) == 14 and all((out / r["path"]).is_file() for r in rows)
    assert sum(1 for _ in (out / "images").rglob("*.png")) == 14  # no stale crops from the first run


# -- bad downloads, reruns and resuming ------------------------------------------------------------


def _small(root: Path, **kwargs) -> Path:
    """Two unanimous records per AI Hub class (records 0-13), zipped, with no traps."""
    kwargs = {"malformed_json": False, "extra_image_without_record": False, **kwargs}
    return build_layout_a(root, default_records()[:14], zipped=True, **kwargs).root


def _cut(path: Path, share: float = 0.6) -> bytes:
    """Truncate a file to ``share`` of its bytes, as a download cut short; return the whole bytes."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])
    return data


def _cli_main(*args: str) -> int:
    from maeum.cli import main

    return main(["data", "prepare", *args, "--workers", "1", "--no-report"])


def test_truncated_zips_are_logged_and_the_rest_prepared(tmp_path: Path) -> None:
    root = _small(tmp_path / "src")
    images = root / "[원천]EMOIMG_분노_TRAIN_01.zip"
    labels = root / "[라벨]EMOIMG_불안_TRAIN.zip"
    good = {images: _cut(images), labels: _cut(labels)}
    out = tmp_path / "out"
    assert _cli_main("aihub", str(root), "--out", str(out)) == 1  # unfinished: download the zips again
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    # 분노's two records lose their images; 불안's two images lose their records.
    assert s["errors"] == {"corrupt_archive": 2, "missing_image": 2, "no_record": 2}
    assert s["prepared"] == 10 and s["records"] == 12
    lines = [json.loads(line) for line in (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    damaged = sorted(e["file"] for e in lines if e["kind"] == "corrupt_archive")
    assert damaged == sorted(str(p) for p in good)  # each zip named once, though walked three times

    for path, data in good.items():  # downloaded again: the rerun reads the changed files
        path.write_bytes(data)
    assert _cli_main("aihub", str(root), "--out", str(out)) == 0
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert s["errors"] == {} and s["prepared"] == 14
    assert {r["name"] for r in _rows(out)} == {fixture_filename(r, i) for i, r in enumerate(default_records()[:14])}
    assert sum(1 for _ in (out / "images").rglob("*.png")) == 14


def test_a_truncated_zip_as_the_source_says_so(tmp_path: Path) -> None:
    root = _small(tmp_path / "src")
    label_zip = root / "[라벨]EMOIMG_기쁨_TRAIN.zip"
    _cut(label_zip)
    with pytest.raises(DataError, match=r"no JSON label files found \(1 damaged zip"):
        prepare(PrepareConfig("aihub", label_zip, tmp_path / "out", workers=1))
    assert not (tmp_path / "out").exists()


def _move_neutral_part(src: Path, dst: Path) -> None:
    """Move the neutral class's image and label zips: held back from a download, or arriving later."""
    for name in ("[원천]EMOIMG_중립_TRAIN_01.zip", "[라벨]EMOIMG_중립_TRAIN.zip"):
        (src / name).rename(dst / name)


def test_new_zips_in_the_source_are_read_on_the_next_run(tmp_path: Path) -> None:
    root = _small(tmp_path / "src")
    later = tmp_path / "later"
    later.mkdir()
    _move_neutral_part(root, later)
    out = tmp_path / "out"
    assert prepare(PrepareConfig("aihub", root, out, workers=1, report=False))["prepared"] == 12
    _move_neutral_part(later, root)  # the next part of the download arrives
    s = prepare(PrepareConfig("aihub", root, out, workers=1, report=False))
    assert s["prepared"] == 14 and sum(split.get("neutral", 0) for split in s["splits"].values()) == 2
    fresh = tmp_path / "fresh"
    prepare(PrepareConfig("aihub", root, fresh, workers=1, report=False))
    assert _digest(out) == _digest(fresh)  # as if it had been prepared in one go


_PAST_NS = 1_000_000_000 * 10**9  # 2001: crops set to this modification time show whether a rerun rewrote them


def _age_crops(out: Path) -> dict[str, tuple[bytes, int]]:
    """Set every crop's (and mask's) modification time to ``_PAST_NS``; return each row's crop bytes and inode."""
    before = {}
    for row in _rows(out):
        for rel in (row["path"], row["mask_path"]):
            if rel:
                os.utime(out / rel, ns=(_PAST_NS, _PAST_NS))
        before[row["name"]] = ((out / row["path"]).read_bytes(), (out / row["path"]).stat().st_ino)
    return before


def _untouched(out: Path, row: dict, before: tuple[bytes, int]) -> bool:
    """Whether a row's crop (and mask) are the files written before, wherever its split put them now."""
    st = (out / row["path"]).stat()
    mask_ok = not row["mask_path"] or (out / row["mask_path"]).stat().st_mtime_ns == _PAST_NS
    crop_ok = st.st_mtime_ns == _PAST_NS and st.st_ino == before[1] and (out / row["path"]).read_bytes() == before[0]
    return crop_ok and mask_ok


def test_a_changed_source_crops_only_new_and_changed_images(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    records = default_records()[:14]
    root = _small(tmp_path / "src")
    later = tmp_path / "later"
    later.mkdir()
    _move_neutral_part(root, later)
    out = tmp_path / "out"
    assert prepare(PrepareConfig("aihub", root, out, workers=1, report=False))["prepared"] == 12
    old_rows = {r["name"]: r for r in _rows(out)}
    before = _age_crops(out)

    # The 중립 part arrives; 기쁨's image zip comes again with #7 re-encoded (and #0 as it was);
    # 상처's comes again without #4 and its mask.
    _move_neutral_part(later, root)
    changed, kept_with_mask, removed = (fixture_filename(records[i], i) for i in (7, 0, 4))
    happy = root / "[원천]EMOIMG_기쁨_TRAIN_01.zip"
    buf = io.BytesIO()
    Image.open(io.BytesIO(read_location(f"{happy}::EMOIMG_기쁨_TRAIN_01/{changed}"))).save(buf, "JPEG", quality=70)
    rewrite_zip(happy, {changed: buf.getvalue()})
    rewrite_zip(root / "[원천]EMOIMG_상처_TRAIN_01.zip", {removed: None, removed[: -len(".jpg")] + ".npz": None})

    with caplog.at_level(logging.INFO, logger="maeum.data.prepare"):
        s = prepare(PrepareConfig("aihub", root, out, workers=1, report=False))
    assert s["prepared"] == 13 and s["errors"] == {"missing_image": 1}
    assert "2 new, 1 changed, 1 removed, 10 kept" in caplog.text
    assert f"removed, as gone from the source or left out now: {removed}" in caplog.text
    rows = {r["name"]: r for r in _rows(out)}
    new = {fixture_filename(records[i], i) for i in (6, 13)}
    assert set(rows) == (set(old_rows) - {removed}) | new
    for name in set(old_rows) - {changed, removed}:  # not cropped again, only moved if its person changed split
        assert _untouched(out, rows[name], before[name]), name
    assert any(rows[n]["split"] != old_rows[n]["split"] for n in set(old_rows) - {removed})  # two more persons
    assert rows[kept_with_mask]["mask_path"] and (out / rows[kept_with_mask]["mask_path"]).is_file()
    assert not _untouched(out, rows[changed], before[changed])
    assert (out / rows[changed]["path"]).read_bytes() != before[changed][0]
    assert not (out / old_rows[removed]["path"]).exists() and not (out / old_rows[removed]["mask_path"]).exists()

    fresh = tmp_path / "fresh"
    prepare(PrepareConfig("aihub", root, fresh, workers=1, report=False))
    assert _digest(out) == _digest(fresh)  # as if it had been prepared in one go, stale crops deleted


def test_a_zip_downloaded_again_unchanged_keeps_every_crop(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _small(tmp_path / "src")
    out = tmp_path / "out"
    prepare(PrepareConfig("aihub", root, out, workers=1, report=False))
    reference = _digest(out)
    before = _age_crops(out)
    part = root / "[원천]EMOIMG_기쁨_TRAIN_01.zip"
    data = part.read_bytes()
    part.unlink()
    part.write_bytes(data)  # a new file, a new modification time: the source reads as changed
    with caplog.at_level(logging.INFO, logger="maeum.data.prepare"):
        prepare(PrepareConfig("aihub", root, out, workers=1, report=False))
    assert "reading it again" in caplog.text and "0 new, 0 changed, 0 removed, 14 kept" in caplog.text
    assert all(_untouched(out, row, before[row["name"]]) for row in _rows(out))
    assert _digest(out) == reference


def test_crops_survive_a_run_on_a_source_left_without_images(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = _small(tmp_path / "src")
    out = tmp_path / "out"
    prepare(PrepareConfig("aihub", root, out, workers=1, report=False))
    before = _age_crops(out)
    away = tmp_path / "away"
    away.mkdir()
    parts = sorted(root.glob("[[]원천[]]*.zip"))
    for part in parts:
        part.rename(away / part.name)
    with pytest.raises(DataError, match="no usable record"):
        prepare(PrepareConfig("aihub", root, out, workers=1, report=False))
    for part in parts:  # put back: nothing needs cropping again
        (away / part.name).rename(part)
    with caplog.at_level(logging.INFO, logger="maeum.data.prepare"):
        prepare(PrepareConfig("aihub", root, out, workers=1, report=False))
    assert "0 new, 0 changed, 0 removed, 14 kept" in caplog.text
    assert all(_untouched(out, row, before[row["name"]]) for row in _rows(out))


def test_out_inside_the_source_is_refused(tmp_path: Path, astronaut: np.ndarray) -> None:
    src = tmp_path / "faces"
    for split in ("train", "val", "test"):
        (src / split / "happy").mkdir(parents=True)
        Image.fromarray(astronaut).save(src / split / "happy" / "0.jpg")
    for out in (src / "prepared", src, src / "train" / "x"):
        with pytest.raises(DataError, match="inside the source folder"):
            prepare(PrepareConfig("folder", src, out, workers=1))
        assert not (src / "prepared").exists() and not (src / ".work").exists()
    aihub = _small(tmp_path / "aihub")
    assert _cli_main("aihub", str(aihub), "--out", str(aihub / "prepared")) == 2
    assert not (aihub / "prepared").exists()


def test_policies_a_kind_cannot_apply_are_refused(tmp_path: Path, shared: Path) -> None:
    root = _small(tmp_path / "src")
    with pytest.raises(DataError, match="--policy soft does not apply to aihub data; its policies: majority, "
                       "unanimous, uploader, tiebreak"):  # fmt: skip
        prepare(PrepareConfig("aihub", root, tmp_path / "o1", policy="soft", workers=1))
    with pytest.raises(DataError, match="--tiebreak applies to --policy tiebreak only"):
        PrepareConfig("aihub", root, tmp_path / "o2", tiebreak=("A",))
    ferplus = shared / "data" / "ferplus"
    with pytest.raises(DataError, match="--policy unanimous does not apply to ferplus data; its policies: majority, s"):
        prepare(PrepareConfig("ferplus", ferplus, tmp_path / "o3", policy="unanimous", workers=1))
    with pytest.raises(DataError, match="--split needs --resplit"):
        prepare(PrepareConfig("ferplus", ferplus, tmp_path / "o4", fractions=(0.7, 0.2, 0.1), workers=1))
    assert not any(tmp_path.glob("o*"))  # refused before anything was written


def test_bad_numbers_are_refused(tmp_path: Path) -> None:
    root = _small(tmp_path / "src")
    with pytest.raises(DataError, match="crop size 0"):
        prepare(PrepareConfig("aihub", root, tmp_path / "out", size=0, workers=1))
    with pytest.raises(DataError, match="--workers and --shard-size"):
        PrepareConfig("aihub", root, tmp_path / "out", workers=0)
    assert _cli_main("aihub", str(root), "--out", str(tmp_path / "out"), "--shard-size", "0") == 2
    assert not (tmp_path / "out").exists()


def test_annotators_naming_emotions_outside_the_classes_are_logged(tmp_path: Path) -> None:
    records = [
        FixtureRecord("a1b2c3d4", "기쁨", ("기쁨", "기쁨", "놀람")),  # 기쁨 by majority; 놀람 counts as no vote
        FixtureRecord("0c9f1e27", "기쁨", ("공포", "공포", "기쁨")),  # no label: two votes for no class
        FixtureRecord("5d4a8b10", "슬픔", ("혐오", "슬픔", "슬픔")),
        FixtureRecord("e7f60213", "놀람", ("중립", "중립", "중립")),  # the uploader's own word is no class
    ]
    root = build_layout_a(tmp_path / "src", records, malformed_json=False, extra_image_without_record=False).root
    s = prepare(PrepareConfig("aihub", root, tmp_path / "out", workers=1, report=False))
    assert s["errors"] == {"unknown_emotion": 5} and s["prepared"] == 3 and s["left_out"]["no_label"] == 1
    reasons = [json.loads(line)["reason"] for line in (tmp_path / "out" / "errors.jsonl").open(encoding="utf-8")]
    assert any("'놀람' (surprise is not one of the dataset's classes" in r for r in reasons)
    rows = {r["name"].split("_")[0]: r for r in _rows(tmp_path / "out")}
    assert rows["a1b2c3d4"]["annotator_emotions"] == ["happiness", "happiness", None]
    assert rows["a1b2c3d4"]["votes"] == [2, 0, 0, 0, 0, 0, 0]
    assert rows["e7f60213"]["uploader_emotion"] is None


def test_summary_counts_add_up_with_a_duplicate_record(tmp_path: Path) -> None:
    root = _small(tmp_path / "src")
    with zipfile.ZipFile(root / "[라벨]EMOIMG_기쁨_TRAIN.zip") as zf:
        first = json.loads(zf.read(zf.infolist()[0]).decode("utf-8"))[0]
    with zipfile.ZipFile(root / "[라벨]EMOIMG_기쁨_TRAIN_02.zip", "w") as zf:
        zf.writestr("img_emotion_training_data(기쁨)_02.json", json.dumps([first], ensure_ascii=False))
    s = prepare(PrepareConfig("aihub", root, tmp_path / "out", workers=1, report=False))
    assert s["records"] == 14 and s["errors"] == {"duplicate_record": 1}
    assert all(p["kept"] + p["dropped"] == s["records"] for p in s["policies"].values())
    assert s["agreement"]["per_class"]["happiness"]["images"] == 2
    (line,) = (tmp_path / "out" / "errors.jsonl").read_text(encoding="utf-8").splitlines()
    assert "_02.zip::img_emotion_training_data(기쁨)_02.json [record 0]" in json.loads(line)["file"]


def test_missing_image_errors_name_the_label_file(prepared) -> None:
    out, _ = prepared
    lines = [json.loads(line) for line in (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    missing = [e for e in lines if e["kind"] == "missing_image"]
    assert len(missing) == 2 and all(".json [record " in e["file"] for e in missing)
    # #33, the sixth record of 기쁨's file (uploader 기쁨: #0 7 14 28 31 33).
    assert any("img_emotion_training_data(기쁨).json [record 5]" in e["file"] for e in missing)
    assert all(".jpg is not in the source" in e["reason"] for e in missing)


def test_a_failed_run_leaves_nothing_to_block_a_corrected_one(tmp_path: Path) -> None:
    root = _small(tmp_path / "src")
    out = tmp_path / "out"
    # The labels alone: every record's image is missing.
    with pytest.raises(DataError, match=r"no usable record \(2 records read: 2 without their image.*missing_image 2"):
        prepare(PrepareConfig("aihub", root / "[라벨]EMOIMG_기쁨_TRAIN.zip", out, workers=1))
    assert not (out / ".work").exists()
    lines = (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and all(json.loads(line)["kind"] == "missing_image" for line in lines)
    assert prepare(PrepareConfig("aihub", root, out, workers=1, report=False))["prepared"] == 14


def test_settings_of_a_run_that_prepared_nothing_give_way(tmp_path: Path) -> None:
    from maeum.data.prepare import _State

    root = _small(tmp_path / "src")
    out = tmp_path / "out"
    (out / ".work").mkdir(parents=True)
    with _State(out / ".work" / "state.sqlite") as state:  # as a run killed while scanning leaves it
        state.check_settings({"kind": "aihub", "source": str(tmp_path / "elsewhere")}, out, lambda _: None)
    assert prepare(PrepareConfig("aihub", root, out, workers=1, report=False))["prepared"] == 14
    with pytest.raises(DataError, match=r"other settings \(policy: 'majority' -> 'unanimous'\)"):
        prepare(PrepareConfig("aihub", root, out, policy="unanimous", workers=1))


def test_resume_from_another_folder_with_the_defaults_written_out(
    prepared, aihub_zips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, _ = prepared
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    prepare(PrepareConfig("aihub", Path(os.path.relpath(aihub_zips.root)), Path("out"), workers=1, report=False))
    (tmp_path / "a" / "out" / _rows(tmp_path / "a" / "out")[3]["path"]).unlink()  # for the resumed run to redo
    monkeypatch.chdir(tmp_path / "a" / "b")
    cfg = PrepareConfig(
        "aihub", Path(os.path.relpath(aihub_zips.root)), Path("../out"), crop="box", size=224, color="rgb",
        margin=0.2, workers=1, report=False,
    )  # fmt: skip
    prepare(cfg)
    assert _digest(tmp_path / "a" / "out") == _digest(reference)  # paths in the outputs are absolute


def test_a_rerun_repairs_deleted_and_overwritten_crops(prepared, aihub_zips, tmp_path: Path) -> None:
    reference, _ = prepared
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    rows = _rows(out)
    (out / rows[0]["path"]).unlink()
    (out / rows[5]["path"]).write_text("not an image")
    (out / next(r for r in rows if r["mask_path"])["mask_path"]).unlink()
    prepare(PrepareConfig("aihub", aihub_zips.root, out, workers=1, report=False))
    assert _digest(out) == _digest(reference)


def test_an_empty_split_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = build_layout_a(tmp_path / "src", default_records()[:2], malformed_json=False).root  # two persons
    with caplog.at_level(logging.WARNING):
        s = prepare(PrepareConfig("aihub", root, tmp_path / "out", workers=1, report=False))
    assert s["prepared"] == 2 and s["splits"]["val"] == s["splits"]["test"] == {}
    assert "the val and test splits are empty: 2 persons are too few to split 0.8,0.1,0.1 by person" in caplog.text


def test_a_folder_prepared_by_an_earlier_version_resumes(
    prepared, aihub_zips, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference, _ = prepared
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    monkeypatch.chdir(aihub_zips.root.parent)
    # What maeum saved before settings were saved as applied: the options as typed.
    typed = {"kind": "aihub", "source": aihub_zips.root.name, "policy": "majority", "tiebreak": ["uploader", "A", "B",
             "C"], "crop": None, "size": None, "color": None, "margin": 0.2, "image_format": "png", "fractions": [0.8,
             0.1, 0.1], "resplit": False, "seed": 0, "cap": None, "detector": "retinaface", "aligner": "similarity",
             "reduced_decode": True}  # fmt: skip
    with sqlite3.connect(out / ".work" / "state.sqlite") as con:
        con.execute("UPDATE meta SET value = ? WHERE key = 'settings'", (json.dumps(typed),))
        con.execute("DELETE FROM meta WHERE key = 'settings_version'")
    prepare(PrepareConfig("aihub", Path(aihub_zips.root.name), out, workers=1, report=False))
    assert _digest(out) == _digest(reference)
    with pytest.raises(DataError, match="other settings"):
        prepare(PrepareConfig("aihub", Path(aihub_zips.root.name), out, size=64, workers=1, report=False))


# -- found by trying the commands as a user ---------------------------------------------------------


def test_an_out_holding_other_files_is_refused_and_left_as_it_was(tmp_path: Path, capsys) -> None:
    root = _small(tmp_path / "src")
    out = tmp_path / "mine"
    (out / "images").mkdir(parents=True)
    (out / "images" / "my_photo.jpg").write_bytes(b"precious")
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(DataError, match=r"already holds other files \(images, notes.txt\)"):
        prepare(PrepareConfig("aihub", root, out, workers=1, report=False))
    assert _cli_main("aihub", str(root), "--out", str(out)) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "images",
        "images/my_photo.jpg",
        "notes.txt",
    ]
    # Hidden files and empty folders hold nothing to lose; a folder maeum prepared is resumed as ever.
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / ".DS_Store").write_bytes(b"\0")
    assert prepare(PrepareConfig("aihub", root, empty, workers=1, report=False))["prepared"] == 14
    (empty / "README.md").write_text("my notes on this folder", encoding="utf-8")
    assert prepare(PrepareConfig("aihub", root, empty, workers=1, report=False))["prepared"] == 14


def test_unknown_detector_or_aligner_and_nan_split_are_refused_before_out(tmp_path: Path, capsys) -> None:
    root = _small(tmp_path / "src")
    out = tmp_path / "out"
    for extra in (["--detector", "nope"], ["--aligner", "nope"]):
        assert _cli_main("aihub", str(root), "--out", str(out), "--crop", "detect", *extra) == 2
        assert f"{extra[0]} 'nope' is unknown; choose one of" in capsys.readouterr().err
    for split in ("nan,0,1", "1.5,-0.5,0"):
        assert _cli_main("aihub", str(root), "--out", str(out), "--split", split) == 2
        err = capsys.readouterr().err
        assert "give three non-negative fractions" in err and "Traceback" not in err
    assert not out.exists()


def test_detector_and_aligner_without_crop_detect_are_refused(tmp_path: Path, capsys) -> None:
    root = _small(tmp_path / "src")
    out = tmp_path / "out"
    assert _cli_main("aihub", str(root), "--out", str(out), "--detector", "haar", "--aligner", "upright") == 2
    assert "--detector and --aligner apply to --crop detect only" in capsys.readouterr().err
    assert _cli_main("aihub", str(root), "--out", str(out), "--crop", "box", "--aligner", "upright") == 2
    assert "--aligner applies to --crop detect only; add --crop detect or leave it out" in capsys.readouterr().err
    assert not out.exists()


def test_a_folder_whose_work_state_was_deleted_keeps_its_settings(prepared, aihub_zips, tmp_path: Path) -> None:
    reference, _ = prepared
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    shutil.rmtree(out / ".work")  # as docs/datasets.md allows once a run is done
    with pytest.raises(DataError, match=r"other settings \(size: 224 -> 64\)"):
        prepare(PrepareConfig("aihub", aihub_zips.root, out, size=64, workers=1, report=False))
    assert _digest(out) == _digest(reference)
    prepare(PrepareConfig("aihub", aihub_zips.root, out, workers=1, report=False))  # the same settings start over
    assert _digest(out) == _digest(reference)


def test_ages_that_are_no_whole_number_of_years_become_null(tmp_path: Path) -> None:
    info = build_layout_a(
        tmp_path / "src", default_records()[:14], zipped=False, json_encodings=("utf-8",),
        malformed_json=False, extra_image_without_record=False,
    )  # fmt: skip
    label_file = info.root / "labels" / "img_emotion_training_data(기쁨).json"
    records = json.loads(label_file.read_text(encoding="utf-8"))
    records[0]["age"], records[1]["age"] = 1e300, "twenty"  # 1e300 stopped the run when the manifest was written
    label_file.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    s = prepare(PrepareConfig("aihub", info.root, tmp_path / "out", workers=1, report=False))
    assert s["prepared"] == 14
    ages = {r["name"]: r["age"] for r in _rows(tmp_path / "out")}
    assert ages[records[0]["filename"]] is None and ages[records[1]["filename"]] is None
    assert sum(age is not None for age in ages.values()) == 12


def test_a_second_run_into_the_same_out_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    from maeum.data.prepare import _lock

    root = _small(tmp_path / "src")
    out = tmp_path / "out"
    assert prepare(PrepareConfig("aihub", root, out, workers=1, report=False))["prepared"] == 14
    with _lock(out / ".work"):  # as a run in progress holds it
        with pytest.raises(DataError, match="another `maeum data prepare` is writing into"):
            prepare(PrepareConfig("aihub", root, out, workers=1, report=False))
        assert (out / ".work" / "state.sqlite").is_file()  # the running one's state is untouched
    assert prepare(PrepareConfig("aihub", root, out, workers=1, report=False))["prepared"] == 14


def test_a_full_disk_under_the_work_state_stops_in_one_line_and_resumes(tmp_path: Path, capsys) -> None:
    root = _small(tmp_path / "src")
    reference = tmp_path / "reference"
    prepare(PrepareConfig("aihub", root, reference, workers=1, report=False))
    capsys.readouterr()  # what an earlier test's logging handler made of it
    out = tmp_path / "out"
    out.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(out)]).returncode:
        pytest.skip("needs root to mount a small tmpfs standing in for a full disk")
    try:
        args = ("aihub", str(root), "--out", str(out), "--shard-size", "4")
        assert _cli_main(*args) == 3
        err = capsys.readouterr().err
        assert "Traceback" not in err and "run the same command again to finish" in err
        assert not (out / "manifest.parquet").exists()
        subprocess.run(["mount", "-o", "remount,size=20m", str(out)], check=True)  # space again
        assert _cli_main(*args) == 0
        assert _rows(out) == _rows(reference)
    finally:
        subprocess.run(["umount", "-l", str(out)], check=True)


def test_fer2013_refuses_a_file_that_is_no_csv_before_out(tmp_path: Path) -> None:
    packed = tmp_path / "fer2013.tar.gz"
    packed.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4)
    with pytest.raises(DataError, match=r"not a FER2013 CSV.*gzip archive: extract fer2013\.csv"):
        prepare(PrepareConfig("fer2013", packed, tmp_path / "out", workers=1))
    binary = tmp_path / "fer2013.csv"
    binary.write_bytes(bytes(range(128, 256)) * 8)  # not UTF-8: was a UnicodeDecodeError traceback
    with pytest.raises(DataError, match="not a FER2013 CSV"):
        prepare(PrepareConfig("fer2013", binary, tmp_path / "out", workers=1))
    assert not (tmp_path / "out").exists()


def test_fer2013_pixels_out_of_range_are_a_malformed_record(tmp_path: Path, astronaut: np.ndarray) -> None:
    gray = np.asarray(Image.fromarray(astronaut).convert("L").resize((48, 48)))
    good = " ".join(map(str, gray.ravel()))
    rows = [f"3,{good},Training", f"4,{good},Training", "5," + " ".join(["300"] * 2304) + ",Training"]
    csv_file = tmp_path / "fer2013.csv"
    csv_file.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n", encoding="utf-8")
    s = prepare(PrepareConfig("fer2013", csv_file, tmp_path / "out", workers=1, report=False))
    assert s["prepared"] == 2 and s["errors"] == {"malformed_record": 1}
    (line,) = (tmp_path / "out" / "errors.jsonl").read_text(encoding="utf-8").splitlines()
    assert "pixels must be numbers from 0 to 255" in json.loads(line)["reason"]
