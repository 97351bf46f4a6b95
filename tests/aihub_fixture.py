"""Generated AI Hub "layout A" datasets built from real face photos, for tests and benchmarks.

Nobody here has the real AI Hub data (``/work/shared/docs/AIHUB_FORMAT.md`` describes it), so
readers are tested against archives this module writes: real faces (scikit-image's astronaut,
matplotlib's Grace Hopper) scaled up into large phone-sized canvases, per-emotion image zips,
per-emotion JSON label files, and the traps seen in the wild.

What ``build_layout_a`` writes (``zipped=True``)::

    root/[원천]EMOIMG_{emo}_TRAIN_01.zip   members EMOIMG_{emo}_TRAIN_01/<file>.jpg (+ <stem>.npz masks)
    root/[라벨]EMOIMG_{emo}_TRAIN.zip      member  img_emotion_training_data({emo}).json
    root/[라벨]EMOIMG_기타_TRAIN.zip       member  img_emotion_training_data(기타).json  (truncated JSON)

and with ``zipped=False``::

    root/EMOIMG_{emo}_TRAIN/<file>.jpg (+ <stem>.npz)
    root/labels/img_emotion_training_data({emo}).json (+ the truncated 기타 file)

Name forms, by the position ``k`` of an image within its emotion's archive or folder
(``FixtureInfo.name_forms`` records the form of every image, mask and label member):
``k % 3 == 1`` -> zip member name in CP949 *without* the UTF-8 flag (zipped, ``cp949_names``);
``k % 3 == 2`` -> name in NFD (``nfd_names``; zip members keep the UTF-8 flag); otherwise NFC
UTF-8. Label zips at odd positions also name their JSON member in CP949. JSON encodings rotate
over ``json_encodings`` in class order (``FixtureInfo.json_encodings``).

Boxes in the JSON are in STORED pixel coordinates (before EXIF orientation); each annotator's
box is the true face box with every edge moved by up to ``JITTER`` of the box size. Traps:

- ``missing_image``: the record is in the JSON but no image (and no mask) is written.
- ``corrupt_jpeg``: the image is the first half of a valid JPEG's bytes (PIL fails on load).
- ``inverted_box``: annotator A's box has minX/maxX and minY/maxY swapped (sorting recovers it).
- ``box_outside``: annotator B's box is shifted right by the stored width (fully outside).
- ``exif_rotated``: pixels stored rotated with EXIF Orientation 6, 8, 6, ... in record order
  (``FixtureInfo.orientations``); the upright view is the normal composition.
- ``no_boxes``: annotator A has no "boxes" key, B has ``"boxes": null``, C has ``"boxes": {}``.

This is a plain module (no pytest): tests import it as ``aihub_fixture`` (pytest puts
``tests/`` on ``sys.path``); benchmarks add ``tests/`` to ``sys.path`` themselves.
"""

from __future__ import annotations

import io
import json
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1)

KOREAN7: tuple[str, ...] = ("기쁨", "당황", "분노", "불안", "상처", "슬픔", "중립")  # maeum.data.records.AIHUB7 order
TRAPS: frozenset[str] = frozenset(
    {"missing_image", "corrupt_jpeg", "inverted_box", "box_outside", "exif_rotated", "no_boxes"}
)
FACES: tuple[str, ...] = ("astronaut", "hopper")
MASK_CLASSES: dict[str, int] = {"background": 0, "hair": 1, "body": 2, "face": 3, "clothes": 4, "other": 5}
JITTER = 0.04  # each annotator edge moves by at most this fraction of the box width/height
MALFORMED_NAME = "img_emotion_training_data(기타).json"
ORPHAN_PERSON = "deadbeef"  # hex like every uploader hash, but no record uses it

_TIMESTAMP0 = datetime(2021, 1, 26, 16, 55, 38)
_ZIP_TIME = (2021, 1, 26, 0, 0, 0)
_UTF8_FLAG = 0x800

# Face boxes measured by hand on the source photos, in their pixel coordinates.
_SOURCE_FACE: dict[str, Box] = {"astronaut": (178.0, 60.0, 268.0, 175.0), "hopper": (175.0, 110.0, 355.0, 325.0)}


@dataclass(frozen=True)
class FixtureRecord:
    """One image of the fixture: who uploaded it, what they meant, how annotators A, B, C voted."""

    person: str  # uploader hash, e.g. "a1b2c3d4" (hex)
    uploader: str  # Korean emotion the uploader meant, e.g. "기쁨"
    votes: tuple[str, str, str]  # annotators A, B, C emotions (may be unreadable, e.g. "놀람?")
    face: str = "astronaut"  # or "hopper"
    gender: str = "여"
    age: int = 20
    background: str = "숙박 및 거주공간"
    trap: str | None = None  # None or one of TRAPS
    mask: bool = False  # also write a segmentation mask <stem>.npz beside the image

    def __post_init__(self) -> None:
        if self.face not in FACES:
            raise ValueError(f"unknown face {self.face!r}; expected one of {FACES}")
        if self.trap is not None and self.trap not in TRAPS:
            raise ValueError(f"unknown trap {self.trap!r}; expected one of {sorted(TRAPS)}")
        if len(self.votes) != 3:
            raise ValueError(f"votes must name three annotators' emotions, got {self.votes!r}")


class FixtureImage(NamedTuple):
    """One record as written: NFC file name, record, true face box (upright coordinates), stored (w, h).

    For ``missing_image`` and ``corrupt_jpeg`` records the box and size are those the image
    would have had (the JSON boxes were drawn from them).
    """

    filename: str
    record: FixtureRecord
    face_box: Box
    stored_size: tuple[int, int]


@dataclass(frozen=True)
class FixtureInfo:
    """What a builder wrote under ``root``."""

    root: Path
    images: tuple[FixtureImage, ...]  # in the order of the records given
    orphan_image: str | None  # NFC file name of the image that no JSON mentions
    malformed_json: tuple[str, ...]  # label files with truncated JSON
    orientations: dict[str, int] = field(default_factory=dict)  # NFC file name -> EXIF orientation (rotated ones)
    name_forms: dict[str, str] = field(default_factory=dict)  # member/file name (NFC) -> "nfc" | "nfd" | "cp949"
    json_encodings: dict[str, str] = field(default_factory=dict)  # label file name -> encoding used
    zipped: bool = True
    key_style: str = "annot"

    def by_name(self) -> dict[str, FixtureImage]:
        return {im.filename: im for im in self.images}

    def stored_face_box(self, filename: str) -> Box:
        """The true face box of an image in stored-pixel coordinates (what the JSON boxes jitter)."""
        im = self.by_name()[filename]
        orientation = self.orientations.get(filename, 1)
        return upright_to_stored(im.face_box, _upright_size(im.stored_size, orientation), orientation)


def upright_to_stored(box: Box, upright_size: tuple[int, int], orientation: int) -> Box:
    """Map a box from the upright view to the stored pixels of an image with this EXIF orientation (1, 6 or 8)."""
    x0, y0, x1, y1 = box
    w, h = upright_size
    if orientation == 1:
        return box
    if orientation == 6:  # stored = upright turned 90° counter-clockwise; (x, y) -> (y, w - x)
        return (y0, w - x1, y1, w - x0)
    if orientation == 8:  # stored = upright turned 90° clockwise; (x, y) -> (h - y, x)
        return (h - y1, x0, h - y0, x1)
    raise ValueError(f"unsupported orientation {orientation}")


def _upright_size(stored: tuple[int, int], orientation: int) -> tuple[int, int]:
    return (stored[1], stored[0]) if orientation in (6, 8) else stored


# ----------------------------------------------------------------------------------------------
# The hand-written table
# ----------------------------------------------------------------------------------------------

# Twelve uploaders: hash -> (gender, age, face photo). Gender and age are per person, as in the
# real file names; faces alternate so both photos appear in every split of any size.
PEOPLE: dict[str, tuple[str, int, str]] = {
    "a1b2c3d4": ("여", 20, "astronaut"),
    "0c9f1e27": ("남", 30, "hopper"),
    "5d4a8b10": ("여", 40, "astronaut"),
    "e7f60213": ("남", 20, "hopper"),
    "3b8c2d9e": ("여", 30, "astronaut"),
    "9a0e4f56": ("남", 50, "hopper"),
    "c2d7b8a1": ("여", 20, "astronaut"),
    "4f1a6c3b": ("남", 40, "hopper"),
    "8e5d0b72": ("여", 30, "astronaut"),
    "d3c9a4e8": ("남", 20, "hopper"),
    "16b7e0f9": ("여", 50, "astronaut"),
    "fa2c5e83": ("남", 30, "hopper"),
}


def _r(
    person: str,
    uploader: str,
    votes: tuple[str, str, str],
    *,
    background: str = "숙박 및 거주공간",
    trap: str | None = None,
    mask: bool = False,
) -> FixtureRecord:
    gender, age, face = PEOPLE[person]
    return FixtureRecord(person, uploader, votes, face, gender, age, background, trap, mask)


def default_records() -> list[FixtureRecord]:
    """40 records over 12 persons; every class appears as uploader label and as majority vote.

    Literal on purpose: count policy results by hand from this table (numbers in comments are
    the record's index in the returned list).
    """
    return [
        # -- Block 1 (0-13): unanimous 3/3, uploader agrees. Two per class. Masks on 0 and 4.
        _r("a1b2c3d4", "기쁨", ("기쁨", "기쁨", "기쁨"), mask=True),  # 0
        _r("0c9f1e27", "당황", ("당황", "당황", "당황")),  # 1
        _r("5d4a8b10", "분노", ("분노", "분노", "분노"), background="상업시설 및 점포"),  # 2
        _r("e7f60213", "불안", ("불안", "불안", "불안")),  # 3
        _r("3b8c2d9e", "상처", ("상처", "상처", "상처"), mask=True),  # 4
        _r("9a0e4f56", "슬픔", ("슬픔", "슬픔", "슬픔"), background="실외 자연환경"),  # 5
        _r("c2d7b8a1", "중립", ("중립", "중립", "중립")),  # 6
        _r("4f1a6c3b", "기쁨", ("기쁨", "기쁨", "기쁨"), background="교통 및 이동수단"),  # 7
        _r("8e5d0b72", "당황", ("당황", "당황", "당황")),  # 8
        _r("d3c9a4e8", "분노", ("분노", "분노", "분노")),  # 9
        _r("16b7e0f9", "불안", ("불안", "불안", "불안"), background="학교 및 교육기관"),  # 10
        _r("fa2c5e83", "상처", ("상처", "상처", "상처")),  # 11
        _r("a1b2c3d4", "슬픔", ("슬픔", "슬픔", "슬픔")),  # 12
        _r("0c9f1e27", "중립", ("중립", "중립", "중립"), background="상업시설 및 점포"),  # 13
        # -- Block 2 (14-20): 2-of-3 majority, uploader agrees with the majority. One per class.
        _r("5d4a8b10", "기쁨", ("기쁨", "기쁨", "중립")),  # 14
        _r("e7f60213", "당황", ("당황", "불안", "당황")),  # 15
        _r("3b8c2d9e", "분노", ("슬픔", "분노", "분노")),  # 16
        _r("9a0e4f56", "불안", ("불안", "불안", "당황")),  # 17
        _r("c2d7b8a1", "상처", ("슬픔", "상처", "상처")),  # 18
        _r("4f1a6c3b", "슬픔", ("슬픔", "상처", "슬픔")),  # 19
        _r("8e5d0b72", "중립", ("중립", "중립", "불안")),  # 20
        # -- Block 3 (21-25): the uploader's label differs from the annotators' majority.
        _r("d3c9a4e8", "상처", ("슬픔", "슬픔", "슬픔")),  # 21: 3/3 슬픔, uploader 상처
        _r("16b7e0f9", "불안", ("당황", "당황", "불안")),  # 22: 2/3 당황, uploader is the minority vote
        _r("fa2c5e83", "분노", ("중립", "중립", "기쁨")),  # 23: 2/3 중립, uploader not among the votes
        _r("a1b2c3d4", "당황", ("기쁨", "기쁨", "기쁨")),  # 24: 3/3 기쁨, uploader 당황
        _r("0c9f1e27", "슬픔", ("상처", "슬픔", "상처")),  # 25: 2/3 상처, uploader is the minority vote
        # -- Block 4 (26-28): all three annotators differ; the uploader's label is one of them.
        _r("5d4a8b10", "불안", ("불안", "당황", "슬픔")),  # 26
        _r("e7f60213", "상처", ("슬픔", "상처", "분노")),  # 27
        _r("3b8c2d9e", "기쁨", ("중립", "당황", "기쁨")),  # 28
        # -- Block 5 (29-30): all three differ; the uploader's label is none of them.
        _r("9a0e4f56", "중립", ("기쁨", "분노", "슬픔")),  # 29
        _r("c2d7b8a1", "당황", ("불안", "상처", "중립")),  # 30
        # -- Block 6 (31-32): an unreadable vote ("놀람?" maps to no label key).
        _r("4f1a6c3b", "기쁨", ("기쁨", "놀람?", "기쁨")),  # 31: 2/3 기쁨 despite the unreadable vote
        _r("8e5d0b72", "슬픔", ("놀람?", "슬픔", "상처")),  # 32: no two readable votes agree
        # -- Block 7 (33-39): one trap each (exif_rotated twice: orientation 6 then 8); 3/3 = uploader.
        _r("d3c9a4e8", "기쁨", ("기쁨", "기쁨", "기쁨"), trap="missing_image"),  # 33
        _r("16b7e0f9", "슬픔", ("슬픔", "슬픔", "슬픔"), trap="corrupt_jpeg"),  # 34
        _r("fa2c5e83", "당황", ("당황", "당황", "당황"), trap="inverted_box"),  # 35
        _r("a1b2c3d4", "분노", ("분노", "분노", "분노"), trap="box_outside"),  # 36
        _r("0c9f1e27", "중립", ("중립", "중립", "중립"), trap="exif_rotated", mask=True),  # 37: orientation 6
        _r("5d4a8b10", "상처", ("상처", "상처", "상처"), trap="exif_rotated"),  # 38: orientation 8
        _r("e7f60213", "불안", ("불안", "불안", "불안"), trap="no_boxes"),  # 39
    ]


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------


@cache
def source_photo(face: str) -> np.ndarray:
    """The RGB uint8 source photo of a face (read-only)."""
    if face == "astronaut":
        import skimage.data

        arr = np.asarray(skimage.data.astronaut())
    elif face == "hopper":
        import matplotlib.cbook

        with Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
            arr = np.asarray(im.convert("RGB"))
    else:
        raise ValueError(f"unknown face {face!r}")
    arr = arr.copy()
    arr.setflags(write=False)
    return arr


def source_face_box(face: str) -> Box:
    """The face box in the source photo's own pixel coordinates."""
    return _SOURCE_FACE[face]


class _Placement(NamedTuple):
    ox: int
    oy: int
    w: int  # size of the scaled photo on the canvas
    h: int
    face_box: Box  # in canvas coordinates


def _place(face: str, size: tuple[int, int], rng: np.random.Generator) -> _Placement:
    """Where the scaled photo sits on the canvas: scale 55-100 % of the largest that fits, anywhere."""
    cw, ch = size
    src = source_photo(face)
    ph, pw = src.shape[:2]
    s = min(cw / pw, ch / ph) * float(rng.uniform(0.55, 1.0))
    w, h = max(1, round(pw * s)), max(1, round(ph * s))
    ox = int(rng.integers(0, cw - w + 1))
    oy = int(rng.integers(0, ch - h + 1))
    sx, sy = w / pw, h / ph
    fx0, fy0, fx1, fy1 = _SOURCE_FACE[face]
    return _Placement(ox, oy, w, h, (ox + fx0 * sx, oy + fy0 * sy, ox + fx1 * sx, oy + fy1 * sy))


def _compose(face: str, size: tuple[int, int], place: _Placement, rng: np.random.Generator) -> Image.Image:
    """A canvas with a vertical colour gradient and the photo scaled onto it."""
    cw, ch = size
    c0 = rng.integers(40, 216, 3).astype(np.float32)
    c1 = rng.integers(40, 216, 3).astype(np.float32)
    t = np.linspace(0.0, 1.0, ch, dtype=np.float32)[:, None]
    column = (c0 * (1 - t) + c1 * t).astype(np.uint8)  # (ch, 3)
    canvas = Image.fromarray(np.ascontiguousarray(np.broadcast_to(column[:, None, :], (ch, cw, 3))))
    photo = Image.fromarray(source_photo(face)).resize((place.w, place.h), Image.Resampling.BICUBIC)
    canvas.paste(photo, (place.ox, place.oy))
    return canvas


def _mask(size: tuple[int, int], place: _Placement) -> np.ndarray:
    """A plausible segmentation of the upright canvas: 0 background, 1 hair, 2 body, 3 face, 4 clothes, 5 other."""
    cw, ch = size
    m = np.zeros((ch, cw), np.uint8)
    px0, py0, px1, py1 = place.ox, place.oy, place.ox + place.w, place.oy + place.h
    x0, y0, x1, y1 = place.face_box
    fw, fh = x1 - x0, y1 - y0

    def paint(bx0: float, by0: float, bx1: float, by1: float, value: int) -> None:
        ix0, iy0 = max(px0, round(bx0)), max(py0, round(by0))
        ix1, iy1 = min(px1, round(bx1)), min(py1, round(by1))
        if ix1 > ix0 and iy1 > iy0:
            m[iy0:iy1, ix0:ix1] = value

    paint(px0, py0, px1, py1, MASK_CLASSES["other"])
    paint(x0 - 0.15 * fw, y0 - 0.3 * fh, x1 + 0.15 * fw, y0 + 0.35 * fh, MASK_CLASSES["hair"])
    paint(x0 - 0.6 * fw, y1 + 0.25 * fh, x1 + 0.6 * fw, py1, MASK_CLASSES["clothes"])
    paint(x0 + 0.2 * fw, y1, x1 - 0.2 * fw, y1 + 0.25 * fh, MASK_CLASSES["body"])
    paint(x0, y0, x1, y1, MASK_CLASSES["face"])
    return m


_ROTATION = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}  # upright -> stored


def _jpeg(img: Image.Image, orientation: int = 1) -> bytes:
    buf = io.BytesIO()
    if orientation == 1:
        img.save(buf, "JPEG", quality=90)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.transpose(_ROTATION[orientation]).save(buf, "JPEG", quality=90, exif=exif)
    return buf.getvalue()


def _npz(mask: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, mask=mask)
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# Labels
# ----------------------------------------------------------------------------------------------


def _jitter(box: Box, rng: np.random.Generator) -> dict[str, float]:
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * JITTER, (y1 - y0) * JITTER
    j = rng.uniform(-1.0, 1.0, 4)
    return {
        "minX": float(round(x0 + j[0] * dx)),
        "minY": float(round(y0 + j[1] * dy)),
        "maxX": float(round(x1 + j[2] * dx)),
        "maxY": float(round(y1 + j[3] * dy)),
    }


def _label_record(
    filename: str,
    rec: FixtureRecord,
    stored_box: Box,
    stored_size: tuple[int, int],
    rng: np.random.Generator,
    key_style: str,
) -> dict[str, object]:
    blocks: list[dict[str, object]] = []
    for vote in rec.votes:
        blocks.append({"boxes": _jitter(stored_box, rng), "faceExp": vote, "bg": rec.background})
    if rec.trap == "inverted_box":
        b = blocks[0]["boxes"]
        assert isinstance(b, dict)
        b["minX"], b["maxX"], b["minY"], b["maxY"] = b["maxX"], b["minX"], b["maxY"], b["minY"]
    elif rec.trap == "box_outside":
        b = blocks[1]["boxes"]
        assert isinstance(b, dict)
        b["minX"] += stored_size[0]
        b["maxX"] += stored_size[0]
    elif rec.trap == "no_boxes":
        del blocks[0]["boxes"]
        blocks[1]["boxes"] = None
        blocks[2]["boxes"] = {}
    prefix = {"annot": "annot_", "faceBB": "faceBB_"}[key_style]
    out: dict[str, object] = {
        "filename": filename,
        "gender": rec.gender,
        "age": rec.age,
        "isProf": "일반인",
        "faceExp_uploader": rec.uploader,
        "bg_uploader": rec.background,
    }
    for letter, block in zip("ABC", blocks, strict=True):
        out[prefix + letter] = block
    return out


def _json_bytes(items: Iterable[dict[str, object]], encoding: str) -> Iterator[bytes]:
    """A JSON list, one record per line, encoded piece by piece (utf-8-sig starts with a BOM)."""
    if encoding == "utf-8-sig":
        yield b"\xef\xbb\xbf"
        encoding = "utf-8"
    yield b"["
    for i, item in enumerate(items):
        yield (",\n" if i else "\n").encode(encoding) + json.dumps(item, ensure_ascii=False).encode(encoding)
    yield b"\n]\n"


def _malformed_json() -> bytes:
    """Two plausible records for images that do not exist, cut off in the middle."""
    items = [
        {
            "filename": f"ffff000{i}_여_30_기타_숙박 및 거주공간_20200101000000-000-00{i}.jpg",
            "gender": "여",
            "age": 30,
            "isProf": "일반인",
            "faceExp_uploader": "기타",
            "bg_uploader": "숙박 및 거주공간",
        }
        for i in range(2)
    ]
    text = json.dumps(items, ensure_ascii=False, indent=1).encode("utf-8")
    return text[: len(text) * 2 // 3]


# ----------------------------------------------------------------------------------------------
# Writing archives and folders
# ----------------------------------------------------------------------------------------------


class _Cp949ZipInfo(zipfile.ZipInfo):
    """A member whose name is stored in CP949 without the UTF-8 flag, as Korean Windows zip tools write it."""

    __slots__ = ()

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's private hook
        return self.filename.encode("cp949"), self.flag_bits & ~_UTF8_FLAG


class _StoredNameZipInfo(zipfile.ZipInfo):
    """A member copied from another zip with its name bytes as they were: ``zipfile`` reads a name
    without the UTF-8 flag as CP437, so encoding it as CP437 gives the stored bytes back."""

    __slots__ = ()

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # zipfile's private hook
        return self.filename.encode("cp437"), self.flag_bits & ~_UTF8_FLAG


def _member_base_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & _UTF8_FLAG:
        raw = name.encode("cp437")
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            name = raw.decode("cp949")
    return unicodedata.normalize("NFC", name.rsplit("/", 1)[-1])


def rewrite_zip(path: Path, changes: dict[str, bytes | None]) -> None:
    """Rewrite the zip at ``path`` as a newer download of it: each member whose NFC base name is a
    key of ``changes`` gets those bytes, or is left out for None; every other member is copied
    byte for byte under its name as stored (CP949 names stay without the UTF-8 flag)."""
    with zipfile.ZipFile(path) as zin:
        members = [(info, zin.read(info)) for info in zin.infolist()]
    missing = set(changes) - {_member_base_name(info) for info, _ in members}
    if missing:
        raise KeyError(f"{path} holds no member named {sorted(missing)}")
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zout:
        for info, data in members:
            base = _member_base_name(info)
            data = changes.get(base) if base in changes else data
            if data is None:
                continue
            cls = zipfile.ZipInfo if info.flag_bits & _UTF8_FLAG else _StoredNameZipInfo
            copy = cls(info.filename, info.date_time)
            copy.compress_type, copy.external_attr = info.compress_type, info.external_attr
            zout.writestr(copy, data)
    tmp.replace(path)


def _form(k: int, cp949: bool, nfd: bool) -> str:
    if k % 3 == 1 and cp949:
        return "cp949"
    if k % 3 == 2 and nfd:
        return "nfd"
    return "nfc"


class _Sink:
    """Where one emotion's images (or one label file) go: a zip archive or a folder."""

    def __init__(self, path: Path, zipped: bool, member_dir: str, compression: int) -> None:
        self.zipped = zipped
        self.member_dir = member_dir
        if zipped:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.zf: zipfile.ZipFile | None = zipfile.ZipFile(path, "w", compression)
            if member_dir:
                d = zipfile.ZipInfo(member_dir + "/", _ZIP_TIME)
                d.external_attr = 0o40755 << 16 | 0x10
                self.zf.writestr(d, b"")
            self.folder = path
        else:
            self.zf = None
            self.folder = path
            path.mkdir(parents=True, exist_ok=True)

    def put(self, name: str, data: bytes | Iterable[bytes], form: str) -> None:
        name = unicodedata.normalize("NFD" if form == "nfd" else "NFC", name)
        if self.zf is None:
            with open(self.folder / name, "wb") as f:
                if isinstance(data, bytes):
                    f.write(data)
                else:
                    for chunk in data:
                        f.write(chunk)
            return
        member = f"{self.member_dir}/{name}" if self.member_dir else name
        info = (_Cp949ZipInfo if form == "cp949" else zipfile.ZipInfo)(member, _ZIP_TIME)
        info.compress_type = self.zf.compression
        info.external_attr = 0o644 << 16
        if isinstance(data, bytes):
            self.zf.writestr(info, data)
        else:
            with self.zf.open(info, "w") as f:
                for chunk in data:
                    f.write(chunk)

    def close(self) -> None:
        if self.zf is not None:
            self.zf.close()


def _emotion_order(emotions: Iterable[str]) -> list[str]:
    present = set(emotions)
    return [e for e in KOREAN7 if e in present] + sorted(present - set(KOREAN7))


def _timestamp(index: int) -> str:
    t = _TIMESTAMP0 + timedelta(seconds=317 * index)
    return f"{t:%Y%m%d%H%M%S}-{(10 + index) % 1000:03d}-{(11 + 7 * index) % 1000:03d}"


def fixture_filename(rec: FixtureRecord, index: int) -> str:
    """The NFC file name of the ``index``-th record: ``<hash>_<성별>_<나이>_<감정>_<배경>_<timestamp>.jpg``."""
    return f"{rec.person}_{rec.gender}_{rec.age}_{rec.uploader}_{rec.background}_{_timestamp(index)}.jpg"


def _image_sink(root: Path, emo: str, zipped: bool, part: int = 1) -> _Sink:
    if zipped:
        stem = f"EMOIMG_{emo}_TRAIN_{part:02d}"
        return _Sink(root / f"[원천]{stem}.zip", True, stem, zipfile.ZIP_STORED)
    return _Sink(root / f"EMOIMG_{emo}_TRAIN", False, "", zipfile.ZIP_STORED)


def _write_label_file(
    root: Path, emo: str, items: Iterable[dict[str, object]] | bytes, encoding: str, zipped: bool, form: str
) -> str:
    name = f"img_emotion_training_data({emo}).json"
    data = items if isinstance(items, bytes) else _json_bytes(items, encoding)
    if zipped:
        sink = _Sink(root / f"[라벨]EMOIMG_{emo}_TRAIN.zip", True, "", zipfile.ZIP_DEFLATED)
    else:
        sink = _Sink(root / "labels", False, "", zipfile.ZIP_STORED)
    try:
        sink.put(name, data, form)
    finally:
        sink.close()
    return name


def build_layout_a(
    root: Path,
    records: list[FixtureRecord],
    *,
    zipped: bool = True,
    size: tuple[int, int] = (1200, 1600),
    seed: int = 0,
    key_style: str = "annot",
    json_encodings: tuple[str, ...] = ("utf-8", "utf-8-sig", "cp949"),
    extra_image_without_record: bool = True,
    malformed_json: bool = True,
    nfd_names: bool = True,
    cp949_names: bool = True,
) -> FixtureInfo:
    """Write an AI Hub layout-A dataset of ``records`` under ``root`` (see the module docstring)."""
    if key_style not in ("annot", "faceBB"):
        raise ValueError(f"key_style must be 'annot' or 'faceBB', not {key_style!r}")
    if not json_encodings:
        raise ValueError("json_encodings must name at least one encoding")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)

    images: list[FixtureImage] = []
    orientations: dict[str, int] = {}
    name_forms: dict[str, str] = {}
    labels: dict[str, list[dict[str, object]]] = {}
    rotated = 0
    emotions = _emotion_order(r.uploader for r in records)
    sinks = {emo: _image_sink(root, emo, zipped) for emo in emotions}
    position = dict.fromkeys(emotions, 0)
    try:
        for index, rec in enumerate(records):
            rng = np.random.default_rng([seed, index])
            filename = fixture_filename(rec, index)
            place = _place(rec.face, size, rng)
            orientation = 1
            if rec.trap == "exif_rotated":
                orientation = (6, 8)[rotated % 2]
                rotated += 1
                orientations[filename] = orientation
            stored_size = (size[1], size[0]) if orientation != 1 else size
            stored_box = upright_to_stored(place.face_box, size, orientation)
            images.append(FixtureImage(filename, rec, place.face_box, stored_size))
            labels.setdefault(rec.uploader, []).append(
                _label_record(filename, rec, stored_box, stored_size, rng, key_style)
            )
            if rec.trap == "missing_image":
                continue
            img = _compose(rec.face, size, place, rng)
            data = _jpeg(img, orientation)
            if rec.trap == "corrupt_jpeg":
                data = data[: len(data) // 2]
            form = _form(position[rec.uploader], cp949_names and zipped, nfd_names)
            position[rec.uploader] += 1
            sinks[rec.uploader].put(filename, data, form)
            name_forms[filename] = form
            if rec.mask:
                mask = _mask(size, place)
                if orientation != 1:
                    mask = np.asarray(Image.fromarray(mask).transpose(_ROTATION[orientation]))
                stem = filename[: -len(".jpg")]
                sinks[rec.uploader].put(stem + ".npz", _npz(mask), form)
                name_forms[stem + ".npz"] = form

        orphan: str | None = None
        if extra_image_without_record and records:
            emo = emotions[0]
            orphan_rec = FixtureRecord(ORPHAN_PERSON, emo, (emo, emo, emo))
            orphan = fixture_filename(orphan_rec, len(records))
            rng = np.random.default_rng([seed, len(records)])
            place = _place(orphan_rec.face, size, rng)
            sinks[emo].put(orphan, _jpeg(_compose(orphan_rec.face, size, place, rng)), "nfc")
            name_forms[orphan] = "nfc"
    finally:
        for sink in sinks.values():
            sink.close()

    encodings: dict[str, str] = {}
    for i, emo in enumerate(emotions):
        enc = json_encodings[i % len(json_encodings)]
        form = "cp949" if (zipped and cp949_names and i % 2 == 1) else "nfc"
        name = _write_label_file(root, emo, labels[emo], enc, zipped, form)
        encodings[name] = enc
        name_forms[name] = form
    malformed: tuple[str, ...] = ()
    if malformed_json:
        name = _write_label_file(root, "기타", _malformed_json(), "utf-8", zipped, "nfc")
        encodings[name] = "utf-8"
        name_forms[name] = "nfc"
        malformed = (name,)
    return FixtureInfo(root, tuple(images), orphan, malformed, orientations, name_forms, encodings, zipped, key_style)


def build_scaled(
    root: Path,
    n_images: int,
    *,
    n_persons: int | None = None,
    size: tuple[int, int] = (1200, 1600),
    zipped: bool = True,
    seed: int = 0,
    key_style: str = "annot",
    json_encodings: tuple[str, ...] = ("utf-8", "utf-8-sig", "cp949"),
    images_per_zip: int = 5000,
) -> FixtureInfo:
    """A large layout-A dataset for memory and speed benchmarks: seeded labels, no traps.

    One JPEG per face photo is encoded at ``size`` and its bytes reused for every record, so
    building is bound by disk speed. Person ``i % n_persons`` uploads record ``i``. Votes: 60 %
    unanimous for the uploader's label, 25 % two for it and one other, 15 % three random.
    Images of one emotion go to ``[원천]EMOIMG_{emo}_TRAIN_{part:02d}.zip`` parts of at most
    ``images_per_zip`` members; name forms and JSON encodings vary as in ``build_layout_a``.
    """
    if n_images < 1:
        raise ValueError("n_images must be at least 1")
    n_persons = max(1, n_images // 5) if n_persons is None else n_persons
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    templates: dict[str, tuple[bytes, Box]] = {}
    for face in FACES:
        trng = np.random.default_rng([seed, FACES.index(face), 1])
        place = _place(face, size, trng)
        templates[face] = (_jpeg(_compose(face, size, place, trng)), place.face_box)

    # Person hashes: an odd multiplier is a bijection modulo 2**32, so they are distinct.
    persons = [f"{(i * 2654435761 + seed * 40503) % 2**32:08x}" for i in range(n_persons)]
    genders = rng.choice(np.array(["여", "남"]), n_persons)
    ages = rng.choice(np.array([10, 20, 30, 40, 50, 60]), n_persons)
    uploader = rng.integers(0, 7, n_images)
    kind = rng.choice(3, n_images, p=[0.6, 0.25, 0.15])
    other = rng.integers(0, 7, (n_images, 3))
    odd_one = rng.integers(0, 3, n_images)
    face_of = rng.integers(0, 2, n_images)
    jitter = rng.uniform(-JITTER, JITTER, (n_images, 3, 4))
    backgrounds = ("숙박 및 거주공간", "상업시설 및 점포", "실외 자연환경", "교통 및 이동수단", "학교 및 교육기관")
    bg_of = rng.integers(0, len(backgrounds), n_images)

    def record(i: int) -> FixtureRecord:
        up = int(uploader[i])
        if kind[i] == 0:
            votes = [up, up, up]
        elif kind[i] == 1:
            votes = [up, up, up]
            votes[int(odd_one[i])] = int(other[i, 0])
        else:
            votes = [int(v) for v in other[i]]
        p = i % n_persons
        return FixtureRecord(
            persons[p],
            KOREAN7[up],
            (KOREAN7[votes[0]], KOREAN7[votes[1]], KOREAN7[votes[2]]),
            FACES[int(face_of[i])],
            str(genders[p]),
            int(ages[p]),
            backgrounds[int(bg_of[i])],
        )

    prefix = {"annot": "annot_", "faceBB": "faceBB_"}[key_style]
    images: list[FixtureImage | None] = [None] * n_images
    name_forms: dict[str, str] = {}
    encodings: dict[str, str] = {}

    def label_items(emo_index: int) -> Iterator[dict[str, object]]:
        """Write one emotion's images while yielding its label records (the JSON is streamed)."""
        emo = KOREAN7[emo_index]
        members = np.flatnonzero(uploader == emo_index)
        sink: _Sink | None = None
        try:
            for k, i in enumerate(members.tolist()):
                if k % images_per_zip == 0:
                    if sink is not None:
                        sink.close()
                    sink = _image_sink(root, emo, zipped, part=k // images_per_zip + 1)
                rec = record(i)
                filename = fixture_filename(rec, i)
                data, box = templates[rec.face]
                form = _form(k % images_per_zip, zipped, True)
                assert sink is not None
                sink.put(filename, data, form)
                name_forms[filename] = form
                images[i] = FixtureImage(filename, rec, box, size)
                x0, y0, x1, y1 = box
                dims = np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0])
                item: dict[str, object] = {
                    "filename": filename,
                    "gender": rec.gender,
                    "age": rec.age,
                    "isProf": "일반인",
                    "faceExp_uploader": rec.uploader,
                    "bg_uploader": rec.background,
                }
                for a, letter in enumerate("ABC"):
                    b = np.round(np.array(box) + jitter[i, a] * dims)
                    item[prefix + letter] = {
                        "boxes": {"minX": float(b[0]), "minY": float(b[1]), "maxX": float(b[2]), "maxY": float(b[3])},
                        "faceExp": rec.votes[a],
                        "bg": rec.background,
                    }
                yield item
        finally:
            if sink is not None:
                sink.close()

    present = [e for e in range(7) if np.any(uploader == e)]
    for j, e in enumerate(present):
        enc = json_encodings[j % len(json_encodings)]
        form = "cp949" if (zipped and j % 2 == 1) else "nfc"
        name = _write_label_file(root, KOREAN7[e], label_items(e), enc, zipped, form)
        encodings[name] = enc
        name_forms[name] = form
    written = tuple(im for im in images if im is not None)
    assert len(written) == n_images
    return FixtureInfo(root, written, None, (), {}, name_forms, encodings, zipped, key_style)
