"""FER+ Valid and Test of a model whose class scores are shifted by per-class offsets fitted on Valid.

    python benchmarks/class_bias.py [--model ferplus-resnet-s] [--shared ../shared]

A model trained on vote distributions answers with the class it thinks most annotators chose;
adding a constant to each class's log-probability moves the borders between classes (more
"fear", fewer "sadness", say) without retraining. The offsets are fitted by coordinate ascent
on a grid (each class in turn, four sweeps) to maximise majority-vote accuracy on the fitting
faces. Three fits are shown: on all of Valid (then scored on Test), and on each half of Valid
(split at random, seed 0) scored on the other half, which tells whether what a fit gains on
the faces it saw carries to faces it did not. Needs ../shared.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import FERPLUS_SPLITS as SPLITS
from _common import ferplus_model_args, majority_accuracy, out, run, table
from maeum.classify import EmotionClassifier
from maeum.training import ferplus

GRID = np.linspace(-1.5, 1.5, 61)  # offsets tried for each class, in log-probability
SWEEPS = 4


def fit_offsets(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class offsets that maximise majority accuracy of ``log_probs + offsets`` (coordinate ascent)."""
    offsets = np.zeros(log_probs.shape[1])
    best = majority_accuracy(log_probs, labels)
    for _ in range(SWEEPS):
        for k in range(len(offsets)):
            for value in GRID:
                trial = offsets.copy()
                trial[k] = value
                accuracy = majority_accuracy(log_probs + trial, labels)
                if accuracy > best + 1e-12:
                    best, offsets = accuracy, trial
    return offsets


def main() -> int:
    args, root = ferplus_model_args(__doc__.splitlines()[0])
    clf = EmotionClassifier(args.model, threads=args.threads)
    log_probs, labels = {}, {}
    for split, theirs in SPLITS.items():
        faces = ferplus.load_split(root, theirs)
        labels[split] = faces.majority()
        log_probs[split] = np.log(np.clip(clf.predict(faces.images), 1e-12, None))

    order = np.random.default_rng(0).permutation(len(labels["val"]))
    halves = {"Valid half A": order[: len(order) // 2], "Valid half B": order[len(order) // 2 :]}
    rows = []
    for fit_on, score_on in [("Valid", "Test"), ("Valid half A", "Valid half B"), ("Valid half B", "Valid half A")]:
        if fit_on == "Valid":
            fit = (log_probs["val"], labels["val"])
            score = (log_probs["test"], labels["test"])
        else:
            fit = (log_probs["val"][halves[fit_on]], labels["val"][halves[fit_on]])
            score = (log_probs["val"][halves[score_on]], labels["val"][halves[score_on]])
        offsets = fit_offsets(*fit)
        rows.append([
            fit_on, score_on, " ".join(f"{o:+.2f}" for o in offsets),
            f"{majority_accuracy(*fit):.4f} → {majority_accuracy(fit[0] + offsets, fit[1]):.4f}",
            f"{majority_accuracy(*score):.4f} → {majority_accuracy(score[0] + offsets, score[1]):.4f}",
        ])  # fmt: skip
    out(f"{args.model}: FER+ majority vote, 7 classes; offsets in the order {', '.join(clf.info.labels)}")
    out(table(rows, ["fitted on", "scored on", "offsets", "fitted faces: before → after",
                     "scored faces: before → after"]))  # fmt: skip
    return 0


if __name__ == "__main__":
    run(main)
