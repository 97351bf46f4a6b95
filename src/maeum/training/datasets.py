"""Training data from either a FER+ folder or a manifest written by ``maeum data prepare``.

Both become ``TrainingData``: per split, uint8 crops at the model's input size, vote counts
(soft targets) and majority labels, and the label order the model will carry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from maeum.data.manifest import MANIFEST_NAME, read_manifest
from maeum.data.records import DataError
from maeum.labels import FERPLUS7
from maeum.preprocess import InputSpec, resize_crops
from maeum.training import ferplus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # (N, S, S) gray or (N, S, S, 3) RGB, uint8
    votes: np.ndarray  # (N, K) float32 vote counts per class
    labels: np.ndarray  # (N,) int64 class index, -1 where there is no single label

    def soft_targets(self) -> np.ndarray:
        total = self.votes.sum(axis=1, keepdims=True)
        return np.divide(self.votes, total, out=np.zeros_like(self.votes), where=total > 0)


@dataclass(frozen=True)
class TrainingData:
    name: str  # "ferplus", or the manifest's dataset kind
    labels: tuple[str, ...]
    splits: dict[str, Split]  # "train", "val" and, when present, "test"


def is_manifest(path: Path) -> bool:
    path = Path(path)
    return path.suffix == ".parquet" or (path / MANIFEST_NAME).is_file()


def load_training_data(
    path: Path, spec: InputSpec, cache_dir: Path | None = None, original_labels: bool = False
) -> TrainingData:
    """Read ``path`` (a FER+ folder or a prepared manifest) at the model's input size and colour.

    ``original_labels``: for the FER+ folder, the images' original FER2013 labels instead of
    the FER+ votes (one vote each; images without one are left out).
    """
    path = Path(path)
    if is_manifest(path):
        if original_labels:
            raise DataError(f"{path}: labels fer2013 needs the FER+ folder; a manifest carries its own labels")
        return _from_manifest(path, spec)
    if (path / "fer2013new.csv").is_file():
        return _from_ferplus(path, spec, cache_dir, original_labels)
    raise DataError(
        f"{path}: neither a manifest (run `maeum data prepare` first) nor a FER+ folder with fer2013new.csv"
    )


def _from_ferplus(root: Path, spec: InputSpec, cache_dir: Path | None, original_labels: bool) -> TrainingData:
    if original_labels and not (root / "fer2013_labels.csv").is_file():
        raise DataError(f"{root}: labels fer2013 needs fer2013_labels.csv beside fer2013new.csv")
    splits = {}
    for ours, theirs in (("train", "train"), ("val", "valid"), ("test", "test")):
        s = ferplus.load_split(root, theirs, cache_dir)
        images = ferplus_at_input(s.images, spec)
        if original_labels:
            labels = ferplus.fer2013_labels(root, s.names)
            votes = np.zeros((len(labels), len(FERPLUS7)), dtype=np.float32)
            votes[labels >= 0, labels[labels >= 0]] = 1.0
            splits[ours] = Split(images, votes, labels)
        else:
            splits[ours] = Split(images, s.votes[:, : len(FERPLUS7)].astype(np.float32), s.majority())
    return TrainingData("fer2013" if original_labels else "ferplus", FERPLUS7, splits)


def ferplus_at_input(images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """FER+'s 48x48 gray crops (N, 48, 48) at the model's input: resized bilinearly, gray copied to RGB."""
    images = resize_crops(images, spec.size)
    if spec.channels == 3:
        images = np.repeat(images[..., None], 3, axis=-1)
    return images


def _from_manifest(path: Path, spec: InputSpec) -> TrainingData:
    table, meta = read_manifest(path, columns=["path", "split", "label", "votes"])
    folder = path if path.is_dir() else path.parent
    labels = tuple(meta["labels"])
    index = {label: i for i, label in enumerate(labels)}
    rows = table.to_pydict()
    by_split: dict[str, list[int]] = {}
    for i, split in enumerate(rows["split"]):
        by_split.setdefault(split, []).append(i)
    for needed in ("train", "val"):
        if not by_split.get(needed):
            raise DataError(f"{path}: the {needed} split is empty; prepare the data with a non-zero {needed} fraction")
    unknown = sorted({label for label in rows["label"] if label not in index})
    if unknown:
        raise DataError(f"{path}: labels {unknown} are not in the manifest's label list {list(labels)}")
    mode = "L" if spec.channels == 1 else "RGB"
    splits = {}
    for split, idx in by_split.items():
        images = np.stack([load_crop(folder / rows["path"][i], spec.size, mode) for i in idx])
        votes = np.asarray([rows["votes"][i] for i in idx], dtype=np.float32)
        label_idx = np.asarray([index[rows["label"][i]] for i in idx], dtype=np.int64)
        # A row without votes (folders, FER2013) votes once for its label.
        empty = votes.sum(axis=1) == 0
        votes[empty, label_idx[empty]] = 1.0
        splits[split] = Split(images, votes, label_idx)
        log.info("%s %s: %d images", path, split, len(idx))
    return TrainingData(str(meta.get("dataset", "manifest")), labels, splits)


def load_crop(path: Path, size: int, mode: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im = im.convert(mode)
            if im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(im)
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read this crop ({e}); prepare the data again") from None
