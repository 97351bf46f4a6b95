"""FER+ Valid and Test of training checkpoints and of their averages, each face averaged with its mirror.

    python benchmarks/checkpoints.py runs/a/best.pt runs/b/best.pt [--average runs/a/best.pt,runs/b/best.pt]

Each ``best.pt`` of ``maeum train`` classifies FER+ Valid and Test (majority vote, 7 classes) in
torch at its own input size, every face averaged with its mirror: its answers as a teacher
(``maeum.training.distill.teacher_probabilities``). ``--average`` (repeatable) scores the mean
of those checkpoints' probabilities; without it, all the checkpoints given are averaged. Choose
by Valid. Needs ../shared and the train extra.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import FERPLUS_SPLITS as SPLITS
from _common import SHARED, ferplus_root, majority_accuracy, out, positive, run, table
from maeum.labels import FERPLUS7
from maeum.training import ferplus
from maeum.training.distill import teacher_probabilities
from maeum.training.trainer import load_checkpoint


def main() -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="best.pt files of maeum train")
    parser.add_argument("--average", action="append", default=[], help="comma-separated checkpoints to average")
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--threads", type=positive(int), default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = ferplus_root(parser, args.shared)
    missing = [str(c) for c in args.checkpoints if not c.is_file()]
    if missing:
        parser.error(f"no such checkpoint: {', '.join(missing)}")
    faces = {split: ferplus.load_split(root, theirs) for split, theirs in SPLITS.items()}
    labels = {split: faces[split].majority() for split in SPLITS}
    probs, params = {}, {}
    both = np.concatenate([faces[split].images for split in SPLITS])  # one pass of each checkpoint
    ends = np.cumsum([len(faces[split].images) for split in SPLITS])[:-1]
    for checkpoint in args.checkpoints:  # as distillation asks a teacher: crop and mirror, FER+'s classes
        name = str(checkpoint)
        probs[name] = dict(zip(SPLITS, np.split(teacher_probabilities(name, both, FERPLUS7), ends), strict=True))
        params[name] = sum(p.numel() for p in load_checkpoint(checkpoint)[0].parameters())
    groups = [a.split(",") for a in args.average] or [[str(c) for c in args.checkpoints]]
    unknown = sorted({name for group in groups for name in group} - set(probs))
    if unknown:
        parser.error(f"--average names checkpoints not given: {', '.join(unknown)}")

    def row(name: str, split_probs: dict[str, np.ndarray], parameters: int) -> list[str]:
        return [name, f"{parameters:,}", *(f"{majority_accuracy(split_probs[s], labels[s]):.4f}" for s in SPLITS)]

    rows = [row(name, probs[name], params[name]) for name in probs]
    for group in groups:
        if len(group) > 1:
            mean = {s: np.mean([probs[name][s] for name in group], axis=0) for s in SPLITS}
            rows.append(row(" + ".join(group), mean, sum(params[name] for name in group)))
    out(f"FER+ majority vote, 7 classes; each face averaged with its mirror; torch {torch.__version__}")
    out(table(rows, ["checkpoint(s)", "parameters", "FER+ Valid", "FER+ Test"]))
    return 0


if __name__ == "__main__":
    run(main)
