"""Dataset sources behind one registry: each turns a user's download into records and images.

``open_source(kind, path, work_dir)`` gives a ``Source``: its label set, a record stream, the
images (and masks) by record name, and its usual crop settings. Kinds: ``aihub`` (layout A
folders or zips, or a layout B TSV of URLs), ``fer2013`` (the Kaggle CSV), ``ferplus``
(Microsoft's image folders with ``fer2013new.csv``) and ``folder`` (one folder per class).
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from maeum.data.aihub import iter_label_files, read_label_file
from maeum.data.archive import walk
from maeum.data.records import AIHUB7, DataError, ErrorSink, Record, label_key
from maeum.errors import UnknownNameError
from maeum.imageio import IMAGE_SUFFIXES
from maeum.labels import FERPLUS7

log = logging.getLogger(__name__)

Pairs = Iterator[tuple[str, str]]  # (record name, location)
_SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "publictest": "val",
    "test": "test", "privatetest": "test",
}  # fmt: skip


# The label policies each kind of source can apply (maeum.data.policy). AI Hub has three
# annotators' words and the uploader's; FER+ has vote counts; the others give labels outright.
ANNOTATED_POLICIES: tuple[str, ...] = ("majority", "unanimous", "uploader", "tiebreak")
VOTE_POLICIES: tuple[str, ...] = ("majority", "soft")
GIVEN_POLICIES: tuple[str, ...] = ("majority",)


@dataclass(frozen=True)
class Source:
    """A dataset as downloaded. ``records`` and ``images`` report bad input to their ``ErrorSink``."""

    kind: str
    labels: tuple[str, ...]
    records: Callable[[ErrorSink], Iterator[Record]]
    images: Callable[[ErrorSink], Pairs]
    masks: Callable[[ErrorSink], Pairs] = lambda _: iter(())
    crop: str = "box"  # the crop mode that suits it
    size: int = 224
    color: str = "rgb"
    policies: tuple[str, ...] = GIVEN_POLICIES  # the label policies it supports, the default first
    splits_given: bool = False  # every record comes with its split (FER2013, FER+): --split needs --resplit
    download: Callable[[ErrorSink], None] | None = None  # fetch images first (layout B)
    notes: dict[str, str] = field(default_factory=dict)


_REGISTRY: dict[str, Callable[[Path, Path], Source]] = {}


def register_source(kind: str) -> Callable[[Callable[[Path, Path], Source]], Callable[[Path, Path], Source]]:
    def wrap(factory: Callable[[Path, Path], Source]) -> Callable[[Path, Path], Source]:
        _REGISTRY[kind] = factory
        return factory

    return wrap


def list_sources() -> list[str]:
    return sorted(_REGISTRY)


def open_source(kind: str, path: Path, work_dir: Path) -> Source:
    """The source ``kind`` reading ``path``; ``work_dir`` holds anything it must materialise."""
    if kind not in _REGISTRY:
        raise UnknownNameError("dataset kind", kind, list_sources())
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; pass the {kind} download's location")
    return _REGISTRY[kind](path, work_dir)


@register_source("aihub")
def _aihub(path: Path, work_dir: Path) -> Source:
    if path.is_file() and path.suffix.lower() in (".tsv", ".txt", ".csv"):
        return _aihub_tsv(path, work_dir)
    damaged: list[str] = []
    if not any(True for _ in iter_label_files(path, lambda item, _: damaged.append(item))):
        hint = f" ({len(damaged)} damaged zip(s) could not be read: {', '.join(damaged)})" if damaged else ""
        raise DataError(f"{path}: no JSON label files found{hint}; pass the folder (or zip) holding the [라벨] files")

    def records(on_error: ErrorSink) -> Iterator[Record]:
        for _, location in iter_label_files(path, on_error):
            yield from read_label_file(location, on_error)

    return Source(
        "aihub",
        AIHUB7,
        records,
        images=lambda on_error: walk(path, frozenset({".jpg", ".jpeg", ".png"}), on_error),
        masks=lambda on_error: ((Path(n).stem, loc) for n, loc in walk(path, frozenset({".npz"}), on_error)),
        policies=ANNOTATED_POLICIES,
    )


def _aihub_tsv(path: Path, work_dir: Path) -> Source:
    from maeum.data.download import download, read_tsv

    dest = work_dir.parent / "downloads"

    def fetch(on_error: ErrorSink) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        summary = download(read_tsv(path, lambda *_: None), dest)
        for name, reason in summary.failures:
            on_error(name, f"download failed: {reason}")

    return Source(
        "aihub",
        AIHUB7,
        lambda on_error: read_tsv(path, on_error),
        images=lambda on_error: walk(dest, frozenset({".jpg", ".jpeg", ".png"}), on_error),
        policies=ANNOTATED_POLICIES,
        download=fetch,
        notes={"layout": "B (TSV of URLs)", "downloads": str(dest)},
    )


@register_source("ferplus")
def _ferplus(path: Path, work_dir: Path) -> Source:
    from maeum.training.ferplus import SPLITS, VOTE_COLUMNS, read_votes

    votes_file = path / "fer2013new.csv"
    if not votes_file.is_file():
        raise DataError(f"{path}: no fer2013new.csv; pass the FER+ folder holding it and the FER2013Train/Valid/Test")
    folders = {usage: folder for usage, folder in SPLITS.values()}

    def records(on_error: ErrorSink) -> Iterator[Record]:
        def on_repeat(line: int, row: dict[str, str]) -> None:
            on_error(
                f"{votes_file}:{line}",
                f"duplicate record: a second row for {row.get('Usage')} {row['Image name']}; kept the first",
            )

        for line, row in read_votes(votes_file, on_repeat):
            where = f"{votes_file}:{line}"
            try:
                votes = tuple(int(row[c]) for c in VOTE_COLUMNS)
                folder = folders[row["Usage"]]
            except (KeyError, TypeError, ValueError):
                on_error(where, f"malformed record: {row}")
                continue
            name = f"{folder}/{row['Image name']}"
            yield Record(name=name, person=name, votes=votes, split=_SPLIT_NAMES[row["Usage"].lower()], where=where)

    def images(on_error: ErrorSink) -> Pairs:
        for folder in folders.values():
            for name, location in walk(path / folder, IMAGE_SUFFIXES, on_error):
                yield f"{folder}/{name}", location

    return Source(
        "ferplus", FERPLUS7, records, images, crop="whole", size=48, color="gray", policies=VOTE_POLICIES,
        splits_given=True,
    )  # fmt: skip


# The Kaggle FER2013 label ids: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral.
FER2013_LABELS: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


@register_source("fer2013")
def _fer2013(path: Path, work_dir: Path) -> Source:
    """The Kaggle ``fer2013.csv`` (emotion, pixels, Usage); its pixels become PNG files in the work folder."""
    if not path.is_file():
        raise DataError(f"{path}: not a file; pass the Kaggle fer2013.csv itself")
    folder = work_dir / "fer2013"

    def open_csv(f: IO[str]) -> csv.DictReader:
        """A reader past the header; DataError for a file that is no FER2013 CSV (a zip, a tar.gz, another CSV)."""
        try:
            reader = csv.DictReader(f)
            fields = reader.fieldnames
        except (csv.Error, UnicodeDecodeError):
            fields = None
        missing = {"emotion", "pixels", "Usage"} - set(fields or ())
        if missing:
            with path.open("rb") as raw:
                packed = raw.read(4).startswith((b"PK\x03\x04", b"\x1f\x8b"))
            hint = "; it is a zip or gzip archive: extract fer2013.csv and pass that" if packed else ""
            raise DataError(f"{path}: not a FER2013 CSV; missing columns {', '.join(sorted(missing))}{hint}")
        return reader

    with path.open(newline="", encoding="utf-8-sig") as f:
        open_csv(f)  # refused before --out is made

    def rows() -> Iterator[tuple[str, int, str | None, str | None, str | None]]:  # (name, line, emotion, usage, pixels)
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = open_csv(f)
            try:
                for line, row in enumerate(reader, start=2):
                    # A short row (a file cut off mid-download) has None for its missing fields.
                    yield f"fer2013-{line - 2:05d}.png", line, row["emotion"], row["Usage"], row["pixels"]
            except (csv.Error, UnicodeDecodeError) as e:
                raise DataError(f"{path}: unreadable CSV: {e}") from None

    def parse(emotion: str | None, usage: str | None, pixels: str | None) -> tuple[str, str, np.ndarray]:
        if emotion is None or usage is None or pixels is None:
            raise ValueError("a short row, without its emotion, pixels or Usage (a truncated file?)")
        if not emotion.strip().isdigit() or int(emotion) >= len(FER2013_LABELS):
            raise ValueError(f"emotion {emotion!r} is not a FER2013 label id (0 to {len(FER2013_LABELS) - 1})")
        split = _SPLIT_NAMES.get(usage.strip().lower())
        if split is None:
            raise ValueError(f"Usage {usage!r} is not Training, PublicTest or PrivateTest")
        try:
            gray = np.array(pixels.split(), dtype=np.uint8)
        except (ValueError, OverflowError) as e:  # numpy's words ("out of bounds for uint8") name no pixel range
            raise ValueError(f"pixels must be numbers from 0 to 255 separated by spaces ({e})") from None
        if gray.size != 48 * 48:
            raise ValueError(f"{gray.size} pixels, expected 2304")
        return FER2013_LABELS[int(emotion)], split, gray.reshape(48, 48)

    def records(on_error: ErrorSink) -> Iterator[Record]:
        for name, line, emotion, usage, pixels in rows():
            try:
                label, split, _ = parse(emotion, usage, pixels)
            except (ValueError, OverflowError) as e:
                on_error(f"{path}:{line}", f"malformed record: {e}")
                continue
            yield Record(name=name, person=name, label=label, split=split, where=f"{path}:{line}")

    def images(on_error: ErrorSink) -> Pairs:
        # The pixels become PNG files; a file already written with the same bytes is left alone, so its
        # modification time tells a rerun after the CSV changed which rows changed (prepare._input_key).
        folder.mkdir(parents=True, exist_ok=True)
        for name, _, emotion, usage, pixels in rows():
            try:
                _, _, gray = parse(emotion, usage, pixels)
            except (ValueError, OverflowError):
                continue  # records() reports it
            target = folder / name
            png = io.BytesIO()
            Image.fromarray(gray).save(png, format="PNG")
            if not target.is_file() or target.stat().st_size != png.tell() or target.read_bytes() != png.getvalue():
                tmp = target.with_suffix(".tmp.png")
                tmp.write_bytes(png.getvalue())
                tmp.replace(target)
            yield name, str(target)

    return Source("fer2013", FERPLUS7, records, images, crop="whole", size=48, color="gray", splits_given=True)


@register_source("folder")
def _folder(path: Path, work_dir: Path) -> Source:
    """``ROOT/<class>/*.jpg`` or ``ROOT/<split>/<class>/*.jpg``; class folders in Korean or English."""
    if not path.is_dir():
        raise DataError(f"{path}: not a folder; pass a folder with one subfolder per class")
    subdirs = _subfolders(path)
    by_split = bool(subdirs) and all(p.name.lower() in _SPLIT_NAMES for p in subdirs)
    candidates = [c for s in subdirs for c in _subfolders(s)] if by_split else subdirs
    class_dirs = [c for c in candidates if next(_images_under(path, c), None) is not None]
    keys = {label_key(c.name) or c.name.lower() for c in class_dirs}
    # A class no image shows would still be a class of the model, one it never learns.
    gone = [c.relative_to(path).as_posix() for c in candidates if (label_key(c.name) or c.name.lower()) not in keys]
    if gone:
        log.warning("left out %d class folder(s) without any image: %s", len(gone), ", ".join(gone))
    if not keys:
        what = "no class subfolder holds an image" if candidates else "no class subfolders"
        raise DataError(f"{path}: {what}; put the images of each class in a folder named after it")
    # The classes present, in AI Hub's or FER+'s order when they are a subset of one.
    order = next((o for o in (AIHUB7, FERPLUS7) if keys <= set(o)), tuple(sorted(keys)))
    labels = tuple(label for label in order if label in keys)

    def records(on_error: ErrorSink) -> Iterator[Record]:
        for class_dir in class_dirs:
            label = label_key(class_dir.name) or class_dir.name.lower()
            split = _SPLIT_NAMES[class_dir.parent.name.lower()] if by_split else None
            for name, _ in _images_under(path, class_dir):
                yield Record(name=name, person=name, label=label, split=split)

    def images(on_error: ErrorSink) -> Pairs:
        for class_dir in class_dirs:
            yield from _images_under(path, class_dir)

    return Source("folder", labels, records, images, crop="whole")


def _subfolders(folder: Path) -> list[Path]:
    """Subfolders in name order, without hidden ones (``.git``) and macOS's ``__MACOSX``."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))


def _images_under(root: Path, folder: Path) -> Pairs:
    for file in sorted(folder.rglob("*")):
        if file.suffix.lower() in IMAGE_SUFFIXES and file.is_file() and not file.name.startswith("._"):
            yield file.relative_to(root).as_posix(), str(file)
