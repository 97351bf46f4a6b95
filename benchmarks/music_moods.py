"""How well maeum's emotion-to-music targets pick songs of the expected mood on a labelled data set.

    python benchmarks/music_moods.py [--shared /work/shared] [--n 20]

Reads data/music/data_moods.csv (Spotify audio features with a Happy/Sad/Calm/Energetic mood
label per song) under --shared (default: MAEUM_SHARED, else ../shared), recommends the top N
songs for every emotion and prints, per emotion: the moods expected, the share of the top N
with one of them, the chance rate (their share of the whole catalogue) and the ratio.
Then a cheap check of how much mood the two features carry at all: a nearest-centroid
classifier on (valence, energy) with 5-fold cross-validation against the majority class.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import SHARED, out, positive, run, table
from maeum.music import TARGETS, Recommender, read_spotify_csv

# The mood each emotion's target stands for, in the data set's label names.
EXPECTED: dict[str, tuple[str, ...]] = {emotion: (t.mood.capitalize(),) for emotion, t in TARGETS.items()}


def mood_table(recommender: Recommender, moods: list[str | None], n: int) -> list[list[object]]:
    counts = Counter(moods)
    rows: list[list[object]] = []
    for emotion in TARGETS:
        expected = EXPECTED[emotion]
        top = recommender.recommend(emotion, n=n)
        share = sum(t.mood in expected for t in top) / len(top)
        chance = sum(counts[m] for m in expected) / len(moods)
        got = ", ".join(f"{m} {c}" for m, c in Counter(t.mood for t in top).most_common())
        rows.append([emotion, "/".join(expected), f"{share:.2f}", f"{chance:.2f}", f"{share / chance:.2f}", got])
    return rows


def nearest_centroid_cv(x: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0) -> tuple[float, float]:
    """Mean accuracy of nearest-centroid and of the majority class over stratification-free k folds."""
    order = np.random.default_rng(seed).permutation(len(y))
    accuracies, baselines = [], []
    for fold in np.array_split(order, folds):
        train = np.setdiff1d(order, fold)
        classes = np.unique(y[train])
        centroids = np.stack([x[train][y[train] == c].mean(axis=0) for c in classes])  # (C, 2)
        predicted = classes[np.argmin(np.linalg.norm(x[fold][:, None] - centroids[None], axis=2), axis=1)]
        accuracies.append(float(np.mean(predicted == y[fold])))
        values, counts = np.unique(y[train], return_counts=True)
        baselines.append(float(np.mean(y[fold] == values[np.argmax(counts)])))
    return float(np.mean(accuracies)), float(np.mean(baselines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument("--n", type=positive(int), default=20, help="songs recommended per emotion")
    args = parser.parse_args()
    path = args.shared / "data" / "music" / "data_moods.csv"
    if not path.exists():
        sys.exit(f"{path} not found; pass --shared or set MAEUM_SHARED")
    catalogue = read_spotify_csv(path)
    moods = [t.mood for t in catalogue]
    out(f"{path}: {len(catalogue)} tracks, " + ", ".join(f"{m} {c}" for m, c in Counter(moods).most_common()))
    out()
    header = ["emotion", "expected moods", f"share of top {args.n}", "chance", "ratio", f"top {args.n} moods"]
    out(table(mood_table(Recommender(catalogue), moods, args.n), header))
    out()
    x = np.array([t.features for t in catalogue])
    y = np.array(moods)
    accuracy, baseline = nearest_centroid_cv(x, y)
    out(table([["nearest centroid (valence, energy)", f"{accuracy:.3f}"], ["majority class", f"{baseline:.3f}"]],
              ["mood classifier, 5-fold CV", "accuracy"]))  # fmt: skip


if __name__ == "__main__":
    run(main)
