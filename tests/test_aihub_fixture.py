"""The AI Hub layout-A fixture builder writes what it promises (names, encodings, traps, faces, masks)."""

from __future__ import annotations

import io
import json
import os
import struct
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from aihub_fixture import (
    JITTER,
    KOREAN7,
    MASK_CLASSES,
    TRAPS,
    FixtureInfo,
    build_layout_a,
    build_scaled,
    default_records,
    source_face_box,
    source_photo,
)
from maeum.data.records import label_key

ORIENTATION = 0x0112


@pytest.fixture(scope="module")
def zipped(tmp_path_factory: pytest.TempPathFactory) -> FixtureInfo:
    return build_layout_a(tmp_path_factory.mktemp("aihub_zipped"), default_records())


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> FixtureInfo:
    return build_layout_a(tmp_path_factory.mktemp("aihub_folders"), default_records(), zipped=False)


# -- helpers --------------------------------------------------------------------------------------


def _raw_entries(path: Path) -> list[tuple[int, bytes, int, bytes]]:
    """(central flags, central name bytes, local flags, local name bytes) of every member, parsed by hand."""
    data = path.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    count, _, cd_offset = struct.unpack_from("<HII", data, eocd + 10)
    out = []
    pos = cd_offset
    for _ in range(count):
        assert data[pos : pos + 4] == b"PK\x01\x02"
        flags = struct.unpack_from("<H", data, pos + 8)[0]
        n_name, n_extra, n_comment = struct.unpack_from("<HHH", data, pos + 28)
        local = struct.unpack_from("<I", data, pos + 42)[0]
        name = data[pos + 46 : pos + 46 + n_name]
        assert data[local : local + 4] == b"PK\x03\x04"
        local_flags = struct.unpack_from("<H", data, local + 6)[0]
        local_n = struct.unpack_from("<H", data, local + 26)[0]
        out.append((flags, name, local_flags, data[local + 30 : local + 30 + local_n]))
        pos += 46 + n_name + n_extra + n_comment
    return out


def _members(info: FixtureInfo) -> dict[str, bytes]:
    """Every file of the dataset by NFC base name (zip members decoded as CP949 when unflagged)."""
    out: dict[str, bytes] = {}
    if info.zipped:
        for path in sorted(info.root.glob("*.zip")):
            with zipfile.ZipFile(path, metadata_encoding="cp949") as zf:
                for m in zf.infolist():
                    if not m.is_dir():
                        out[unicodedata.normalize("NFC", m.filename.rsplit("/", 1)[-1])] = zf.read(m)
    else:
        for path in sorted(p for p in info.root.rglob("*") if p.is_file()):
            out[unicodedata.normalize("NFC", path.name)] = path.read_bytes()
    return out


def _labels(info: FixtureInfo) -> dict[str, bytes]:
    members = _members(info)
    return {name: members[name] for name in info.json_encodings}


def _decode_json(raw: bytes) -> list[dict[str, object]]:
    for enc in ("utf-8-sig", "cp949"):
        try:
            return json.loads(raw.decode(enc))
        except UnicodeDecodeError:
            continue
    raise AssertionError("undecodable label file")


def _gray(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    return np.asarray(img.convert("L").resize(size, Image.Resampling.BILINEAR), dtype=np.float64)


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def _source_face(face: str) -> Image.Image:
    return Image.fromarray(source_photo(face)).crop(tuple(round(v) for v in source_face_box(face)))


def _crop(img: Image.Image, box: tuple[float, float, float, float]) -> Image.Image:
    return img.crop(tuple(round(v) for v in box))


# -- the table ------------------------------------------------------------------------------------


def test_default_records_cover_every_case() -> None:
    recs = default_records()
    assert len(recs) == 40
    assert len({r.person for r in recs}) == 12
    assert set(r.uploader for r in recs) == set(KOREAN7)
    assert {r.trap for r in recs} - {None} == TRAPS
    assert sum(r.mask for r in recs) == 3
    assert all(int(r.person, 16) >= 0 and len(r.person) == 8 for r in recs)

    majority = []
    for r in recs:
        keys = [label_key(v) for v in r.votes]
        top, n = Counter(k for k in keys if k is not None).most_common(1)[0]
        majority.append((top, n) if n >= 2 else (None, 1))
    counts = Counter(n for _, n in majority)
    assert counts == {3: 23, 2: 11, 1: 6}  # unanimous, 2-of-3, no majority
    assert {m for m, _ in majority} - {None} == {label_key(k) for k in KOREAN7}
    differs = [i for i, (m, _) in enumerate(majority) if m is not None and m != label_key(recs[i].uploader)]
    assert differs == [21, 22, 23, 24, 25]
    no_majority = [i for i, (m, _) in enumerate(majority) if m is None]
    assert no_majority == [26, 27, 28, 29, 30, 32]
    uploader_among = [i for i in no_majority if recs[i].uploader in recs[i].votes]
    assert uploader_among == [26, 27, 28, 32]


# -- names ----------------------------------------------------------------------------------------


def test_file_names_follow_the_pattern(zipped: FixtureInfo) -> None:
    names = [im.filename for im in zipped.images]
    assert len(set(names)) == len(names)
    for im in zipped.images:
        r = im.record
        person, gender, age, emo, bg, stamp = im.filename[: -len(".jpg")].split("_")
        assert (person, gender, int(age), emo, bg) == (r.person, r.gender, r.age, r.uploader, r.background)
        assert len(stamp) == len("20210126165538-010-011") and stamp[14] == stamp[18] == "-"


def test_zips_hold_cp949_names_without_the_utf8_flag(zipped: FixtureInfo) -> None:
    cp949 = utf8 = 0
    for path in zipped.root.glob("*.zip"):
        for flags, name, local_flags, local_name in _raw_entries(path):
            assert (flags & 0x800) == (local_flags & 0x800) and name == local_name
            if flags & 0x800:
                name.decode("utf-8")
                utf8 += 1
            elif not name.isascii():
                text = name.decode("cp949")
                with pytest.raises(UnicodeDecodeError):
                    name.decode("utf-8")
                assert unicodedata.normalize("NFC", text) == text
                assert zipped.name_forms[text.rsplit("/", 1)[-1]] == "cp949"
                cp949 += 1
    assert cp949 >= 10 and utf8 >= 10
    image_forms = Counter(zipped.name_forms[im.filename] for im in zipped.images if im.record.trap != "missing_image")
    assert image_forms["cp949"] >= 7 and image_forms["nfd"] >= 7 and image_forms["nfc"] >= 7
    label_forms = Counter(zipped.name_forms[name] for name in zipped.json_encodings)
    assert label_forms["cp949"] >= 1 and label_forms["nfc"] >= 1


def test_nfd_names_exist(zipped: FixtureInfo, folders: FixtureInfo) -> None:
    nfd_members = []
    for path in zipped.root.glob("[[]원천]*.zip"):
        with zipfile.ZipFile(path, metadata_encoding="cp949") as zf:
            nfd_members += [n for n in zf.namelist() if unicodedata.normalize("NFC", n) != n]
    assert len(nfd_members) >= 7
    assert all(unicodedata.normalize("NFD", n.rsplit("/", 1)[1]) == n.rsplit("/", 1)[1] for n in nfd_members)

    on_disk = [name for d in folders.root.iterdir() if d.is_dir() for name in os.listdir(d)]
    nfd_files = [n for n in on_disk if unicodedata.normalize("NFC", n) != n]
    assert len(nfd_files) >= 7
    assert {unicodedata.normalize("NFC", n) for n in nfd_files} == {
        n for n, form in folders.name_forms.items() if form == "nfd"
    }
    assert all(form != "cp949" for form in folders.name_forms.values())


def test_layouts_put_files_where_the_format_says(zipped: FixtureInfo, folders: FixtureInfo) -> None:
    zips = {p.name for p in zipped.root.iterdir()}
    assert {f"[원천]EMOIMG_{e}_TRAIN_01.zip" for e in KOREAN7} <= zips
    assert {f"[라벨]EMOIMG_{e}_TRAIN.zip" for e in KOREAN7} <= zips
    with zipfile.ZipFile(zipped.root / "[원천]EMOIMG_분노_TRAIN_01.zip", metadata_encoding="cp949") as zf:
        dirs = {unicodedata.normalize("NFC", n).split("/")[0] for n in zf.namelist()}
    assert dirs == {"EMOIMG_분노_TRAIN_01"}
    assert {p.name for p in folders.root.iterdir()} == {f"EMOIMG_{e}_TRAIN" for e in KOREAN7} | {"labels"}
    assert sorted(p.name for p in (folders.root / "labels").iterdir()) == sorted(folders.json_encodings)


# -- labels ---------------------------------------------------------------------------------------


def test_json_encodings_vary(zipped: FixtureInfo) -> None:
    labels = _labels(zipped)
    assert set(zipped.json_encodings.values()) == {"utf-8", "utf-8-sig", "cp949"}
    for name, raw in labels.items():
        enc = zipped.json_encodings[name]
        assert raw.startswith(b"\xef\xbb\xbf") == (enc == "utf-8-sig")
        if enc == "cp949":
            with pytest.raises(UnicodeDecodeError):
                raw.decode("utf-8")
            raw.decode("cp949")
    malformed = zipped.malformed_json
    assert malformed == ("img_emotion_training_data(기타).json",)
    with pytest.raises(json.JSONDecodeError):
        json.loads(labels[malformed[0]].decode("utf-8"))


def test_json_records_match_the_table(zipped: FixtureInfo) -> None:
    by_name = zipped.by_name()
    seen: list[str] = []
    for name, raw in _labels(zipped).items():
        if name in zipped.malformed_json:
            continue
        emo = name[len("img_emotion_training_data(") : -len(").json")]
        for item in _decode_json(raw):
            assert list(item)[:6] == ["filename", "gender", "age", "isProf", "faceExp_uploader", "bg_uploader"]
            im = by_name[item["filename"]]
            r = im.record
            assert item["faceExp_uploader"] == r.uploader == emo
            assert (item["gender"], item["age"], item["isProf"], item["bg_uploader"]) == (
                r.gender,
                r.age,
                "일반인",
                r.background,
            )
            assert tuple(item[f"annot_{a}"]["faceExp"] for a in "ABC") == r.votes
            seen.append(item["filename"])
    assert sorted(seen) == sorted(by_name)
    assert zipped.orphan_image not in seen


def test_boxes_jitter_the_true_box_and_traps_break_them(zipped: FixtureInfo) -> None:
    items = {}
    for name, raw in _labels(zipped).items():
        if name not in zipped.malformed_json:
            items.update({it["filename"]: it for it in _decode_json(raw)})
    trap_seen = set()
    for im in zipped.images:
        item, trap = items[im.filename], im.record.trap
        w, h = im.stored_size
        x0, y0, x1, y1 = zipped.stored_face_box(im.filename)
        tol = JITTER * max(x1 - x0, y1 - y0) + 1
        if trap == "no_boxes":
            assert "boxes" not in item["annot_A"]
            assert item["annot_B"]["boxes"] is None and item["annot_C"]["boxes"] == {}
            trap_seen.add(trap)
            continue
        for a in "ABC":
            box = item[f"annot_{a}"]["boxes"]
            if trap == "inverted_box" and a == "A":
                assert box["minX"] > box["maxX"] and box["minY"] > box["maxY"]
                box = {"minX": box["maxX"], "maxX": box["minX"], "minY": box["maxY"], "maxY": box["minY"]}
                trap_seen.add(trap)
            if trap == "box_outside" and a == "B":
                assert box["minX"] >= w and box["maxX"] > box["minX"]
                trap_seen.add(trap)
                continue
            got = (box["minX"], box["minY"], box["maxX"], box["maxY"])
            assert all(isinstance(v, float) for v in got)
            assert np.allclose(got, (x0, y0, x1, y1), atol=tol), (im.filename, a, got)
            assert 0 <= got[0] < got[2] <= w and 0 <= got[1] < got[3] <= h
    assert trap_seen == {"no_boxes", "inverted_box", "box_outside"}


def test_face_bb_key_style_and_chosen_encoding(tmp_path: Path) -> None:
    recs = default_records()[:3]
    info = build_layout_a(
        tmp_path, recs, key_style="faceBB", json_encodings=("cp949",), malformed_json=False, size=(300, 400)
    )
    assert info.malformed_json == () and set(info.json_encodings.values()) == {"cp949"}
    for raw in _labels(info).values():
        item = json.loads(raw.decode("cp949"))[0]
        assert {"faceBB_A", "faceBB_B", "faceBB_C"} <= set(item) and "annot_A" not in item
        assert set(item["faceBB_A"]) == {"boxes", "faceExp", "bg"}


def test_builds_are_deterministic(tmp_path: Path) -> None:
    recs = default_records()[30:36]
    a = build_layout_a(tmp_path / "a", recs, size=(240, 320), seed=3)
    b = build_layout_a(tmp_path / "b", recs, size=(240, 320), seed=3)
    c = build_layout_a(tmp_path / "c", recs, size=(240, 320), seed=4)
    assert a.images == b.images and _labels(a) == _labels(b)
    assert a.images != c.images


# -- images ---------------------------------------------------------------------------------------


def test_traps_are_on_disk(zipped: FixtureInfo, folders: FixtureInfo) -> None:
    for info in (zipped, folders):
        members = _members(info)
        assert info.orphan_image in members and info.orphan_image not in info.by_name()
        for im in info.images:
            trap = im.record.trap
            if trap == "missing_image":
                assert im.filename not in members
                continue
            with Image.open(io.BytesIO(members[im.filename])) as img:
                if trap == "corrupt_jpeg":
                    with pytest.raises(OSError):
                        img.load()
                    continue
                img.load()
                assert img.size == im.stored_size
                orientation = img.getexif().get(ORIENTATION)
                assert orientation == info.orientations.get(im.filename)
                assert ImageOps.exif_transpose(img).size == (1200, 1600)
        assert sorted(info.orientations.values()) == [6, 8]


def test_face_is_at_the_true_box(zipped: FixtureInfo) -> None:
    members = _members(zipped)
    checked = 0
    for im in zipped.images:
        if im.record.trap in ("missing_image", "corrupt_jpeg"):
            continue
        ref = _source_face(im.record.face)
        ref_gray = _gray(ref, ref.size)
        with Image.open(io.BytesIO(members[im.filename])) as stored:
            upright = ImageOps.exif_transpose(stored)
            assert _corr(_gray(_crop(upright, im.face_box), ref.size), ref_gray) > 0.9
            # The same face in stored pixels, where the JSON boxes live.
            crop = _crop(stored, zipped.stored_face_box(im.filename))
            turn = {6: Image.Transpose.ROTATE_270, 8: Image.Transpose.ROTATE_90}.get(
                zipped.orientations.get(im.filename, 1)
            )
            if turn is not None:
                crop = crop.transpose(turn)
            assert _corr(_gray(crop, ref.size), ref_gray) > 0.9
            # A box one face-width to the side is not the face: the check can fail.
            x0, y0, x1, y1 = im.face_box
            shifted = (x0 - (x1 - x0), y0, x0, y1) if x0 > x1 - x0 else (x1, y0, 2 * x1 - x0, y1)
            assert _corr(_gray(_crop(upright, shifted), ref.size), ref_gray) < 0.8
        checked += 1
    assert checked == 38
    boxes = {im.face_box for im in zipped.images}
    assert len(boxes) == len(zipped.images)  # placement varies per record


def test_masks_load(zipped: FixtureInfo, folders: FixtureInfo) -> None:
    for info in (zipped, folders):
        members = _members(info)
        masked = [im for im in info.images if im.record.mask]
        assert len(masked) == 3
        assert len([n for n in members if n.endswith(".npz")]) == 3
        for im in masked:
            with np.load(io.BytesIO(members[im.filename[: -len(".jpg")] + ".npz"])) as npz:
                assert list(npz.keys()) == ["mask"]
                mask = npz["mask"]
            w, h = im.stored_size
            assert mask.dtype == np.uint8 and mask.shape == (h, w)
            assert set(np.unique(mask).tolist()) == set(MASK_CLASSES.values())
            x0, y0, x1, y1 = (round(v) for v in info.stored_face_box(im.filename))
            assert (mask[y0:y1, x0:x1] == MASK_CLASSES["face"]).all()
            assert (mask == MASK_CLASSES["face"]).sum() == (x1 - x0) * (y1 - y0)
        assert any(im.filename in info.orientations for im in masked)


# -- the scaled builder ---------------------------------------------------------------------------


def test_build_scaled(tmp_path: Path) -> None:
    info = build_scaled(tmp_path, 70, images_per_zip=4, seed=1)
    assert len(info.images) == 70 and len({im.record.person for im in info.images}) == 14
    assert all(im.record.trap is None for im in info.images)
    parts = sorted(p.name for p in tmp_path.glob("[[]원천]*.zip"))
    assert any(p.endswith("_TRAIN_02.zip") for p in parts)
    members = _members(info)
    by_face: dict[str, set[bytes]] = {}
    for im in info.images:
        by_face.setdefault(im.record.face, set()).add(members[im.filename])
    assert all(len(v) == 1 for v in by_face.values())  # one encoded JPEG per face photo
    n_items = 0
    for raw in _labels(info).values():
        for item in _decode_json(raw):
            im = info.by_name()[item["filename"]]
            assert tuple(item[f"annot_{a}"]["faceExp"] for a in "ABC") == im.record.votes
            height = im.face_box[3] - im.face_box[1]
            b = item["annot_B"]["boxes"]
            assert np.allclose((b["minX"], b["minY"], b["maxX"], b["maxY"]), im.face_box, atol=JITTER * height + 1)
            n_items += 1
    assert n_items == 70
    with Image.open(io.BytesIO(next(iter(by_face["hopper"])))) as img:
        face = next(im for im in info.images if im.record.face == "hopper").face_box
        ref = _source_face("hopper")
        assert _corr(_gray(_crop(img, face), ref.size), _gray(ref, ref.size)) > 0.9
