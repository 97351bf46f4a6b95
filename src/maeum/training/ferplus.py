"""FER+ (Microsoft's relabelled FER2013): images, annotator votes and the original labels."""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

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


def load_split(root: Path, split: str, cache_dir: Path | None = None) -> FerPlusSplit:
    """Read one split from ``root`` (the shared ``ferplus`` folder) using ``fer2013new.csv`` votes."""
    if split not in SPLITS:
        raise ValueError(f"unknown FER+ split {split!r}; choose one of {', '.join(SPLITS)}")
    usage, folder = SPLITS[split]
    cache = cache_dir / f"ferplus_{split}.npz" if cache_dir else None
    if cache and cache.exists():
        data = np.load(cache)
        return FerPlusSplit(list(data["names"]), data["images"], data["votes"])
    vote_file = root / "fer2013new.csv"
    if not vote_file.is_file():
        raise FileNotFoundError(f"{vote_file} not found: pass the FER+ folder holding fer2013new.csv")
    names, votes, images = [], [], []
    with vote_file.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["Usage"] != usage or not row["Image name"]:
                continue
            path = root / folder / row["Image name"]
            with Image.open(path) as im:
                images.append(np.asarray(im.convert("L"), dtype=np.uint8))
            names.append(row["Image name"])
            votes.append([int(row[c]) for c in VOTE_COLUMNS])
    out = FerPlusSplit(names, np.stack(images), np.asarray(votes, dtype=np.int64))
    log.info("FER+ %s: %d images from %s", split, len(names), root / folder)
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, names=np.asarray(names), images=out.images, votes=out.votes)
    return out


def fer2013_labels(root: Path, names: list[str]) -> np.ndarray:
    """Original FER2013 labels for ``names`` in FERPLUS7 order (-1 where the file has none)."""
    by_name: dict[str, int] = {}
    with (root / "fer2013_labels.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            by_name[row["Image name"]] = int(_FER2013_TO_FERPLUS7[int(row["fer2013_emotion"])])
    return np.asarray([by_name.get(n, -1) for n in names])
