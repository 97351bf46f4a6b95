"""FER+ (Microsoft's relabelled FER2013): images, annotator votes and the original labels."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from maeum.data.records import DataError
from maeum.labels import FERPLUS7

log = logging.getLogger(__name__)

VOTE_COLUMNS: tuple[str, ...] = (*FERPLUS7, "contempt", "unknown", "NF")
SPLITS: dict[str, tuple[str, str]] = {
    # our name: (Usage value in the vote file, image folder)
    "train": ("Training", "FER2013Train"),
    "valid": ("PublicTest", "FER2013Valid"),
    "test": ("PrivateTest", "FER2013Test"),
}
# Original FER2013 label ids: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral.
_FER2013_TO_FERPLUS7 = np.array([4, 5, 6, 1, 3, 2, 0])


@dataclass(frozen=True)
class FerPlusSplit:
    names: list[str]
    images: np.ndarray  # (N, 48, 48) uint8 gray
    votes: np.ndarray  # (N, 10) int, columns VOTE_COLUMNS

    def majority(self) -> np.ndarray:
        """FER+ majority label per image in FERPLUS7 order; -1 where it is contempt/unknown/NF."""
        top = self.votes.argmax(axis=1)
        return np.where(top < len(FERPLUS7), top, -1)

    def soft_targets(self) -> np.ndarray:
        """Vote distribution over the seven classes, (N, 7) float32 (rows may sum to 0)."""
        v = self.votes[:, : len(FERPLUS7)].astype(np.float32)
        total = v.sum(axis=1, keepdims=True)
        return np.divide(v, total, out=np.zeros_like(v), where=total > 0)


def read_votes(
    vote_file: Path, on_repeat: Callable[[int, dict[str, str]], None] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of each image row of ``fer2013new.csv``, every image once.

    The file lists a few images twice in one split (fer0033120.png in PrivateTest: its second
    row says not-a-face, while ``FER2013Test/label.csv`` agrees with the first). The first row
    of a repeated (Usage, image name) is kept, everywhere maeum reads FER+; each later one goes
    to ``on_repeat``. Rows without an image name (frames FER+ found no face in) are skipped.
    """
    seen: set[tuple[str | None, str]] = set()
    with vote_file.open(newline="", encoding="utf-8-sig") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            name = row.get("Image name")
            if not name:
                continue
            key = (row.get("Usage"), name)
            if key in seen:
                if on_repeat is not None:
                    on_repeat(line, row)
                continue
            seen.add(key)
            yield line, row


def load_split(root: Path, split: str, cache_dir: Path | None = None) -> FerPlusSplit:
    """Read one split from ``root`` (the shared ``ferplus`` folder) using ``fer2013new.csv`` votes."""
    if split not in SPLITS:
        raise ValueError(f"unknown FER+ split {split!r}; choose one of {', '.join(SPLITS)}")
    usage, folder = SPLITS[split]
    cache = cache_dir / f"ferplus_{split}.npz" if cache_dir else None
    if cache and cache.exists():
        data = np.load(cache)
        names = [str(n) for n in data["names"]]
        keep = _first_of_each(names)  # a cache written before repeated rows were left out holds them
        return FerPlusSplit([names[i] for i in keep], data["images"][keep], data["votes"][keep])
    vote_file = root / "fer2013new.csv"
    if not vote_file.is_file():
        raise FileNotFoundError(f"{vote_file} not found: pass the FER+ folder holding fer2013new.csv")
    names, votes, images = [], [], []
    repeated: list[str] = []

    def on_repeat(_: int, row: dict[str, str]) -> None:
        if row["Usage"] == usage:
            repeated.append(row["Image name"])

    for _, row in read_votes(vote_file, on_repeat):
        if row["Usage"] != usage:
            continue
        path = root / folder / row["Image name"]
        with Image.open(path) as im:
            images.append(np.asarray(im.convert("L"), dtype=np.uint8))
        names.append(row["Image name"])
        votes.append([int(row[c]) for c in VOTE_COLUMNS])
    if not names:
        raise DataError(f"{vote_file}: no image of the {split} split ({usage}); pass the complete FER+ folder")
    out = FerPlusSplit(names, np.stack(images), np.asarray(votes, dtype=np.int64))
    if repeated:
        log.info(
            "FER+ %s: %d repeated row(s) of fer2013new.csv left out, the first row kept (%s)",
            split, len(repeated), ", ".join(repeated),
        )  # fmt: skip
    log.info("FER+ %s: %d images from %s", split, len(names), root / folder)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, names=np.asarray(names), images=out.images, votes=out.votes)
    return out


def _first_of_each(names: list[str]) -> list[int]:
    """Indices of the first occurrence of each name, in order."""
    seen: set[str] = set()
    keep = []
    for i, name in enumerate(names):
        if name not in seen:
            seen.add(name)
            keep.append(i)
    return keep


def fer2013_labels(root: Path, names: list[str]) -> np.ndarray:
    """Original FER2013 labels for ``names`` in FERPLUS7 order (-1 where the file has none)."""
    by_name: dict[str, int] = {}
    with (root / "fer2013_labels.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            by_name[row["Image name"]] = int(_FER2013_TO_FERPLUS7[int(row["fer2013_emotion"])])
    return np.asarray([by_name.get(n, -1) for n in names])
