"""FER+ Valid and Test of a model on shifted and zoomed views of each face, alone and averaged.

    python benchmarks/tta_views.py [--model ferplus-resnet-s] [--shared ../shared]

Test-time augmentation beyond the mirror: each 48 px FER+ crop is cut again (a centred square
of 44, 42 or 40 px, the four 44 px corners, the crop moved 2 px each way, or widened to 52 px,
the border repeating the edge pixels) and resized bilinearly to the model's input, as
``resize_crops`` resizes the crop itself. Each view is scored alone, then the probabilities of
the groups of views are averaged (the bundled model averages each view with its mirror inside
its graph). Choose by Valid; a view set that lifts Test alone is not a gain. Needs ../shared.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _common import FERPLUS_SPLITS as SPLITS
from _common import ferplus_model_args, majority_accuracy, out, run, table
from maeum.classify import EmotionClassifier
from maeum.training import ferplus

SIDE, PAD = 48, 4  # FER+'s crop; the edge pixels repeated around it, for views reaching past it


def _views() -> dict[str, tuple[float, float, float, float]]:
    """View name: its box (left, top, right, bottom) in the 48 px crop's pixels."""
    views = {"crop": (0.0, 0.0, SIDE, SIDE)}
    for side in (44, 42, 40):
        at = (SIDE - side) / 2
        views[f"centre {side}"] = (at, at, at + side, at + side)
    for x in (0, 4):
        for y in (0, 4):
            views[f"corner 44 at ({x}, {y})"] = (x, y, x + 44, y + 44)
    for dx, dy in ((-2, 0), (2, 0), (0, -2), (0, 2)):
        views[f"moved ({dx}, {dy})"] = (dx, dy, SIDE + dx, SIDE + dy)
    views["widened 52"] = (-2.0, -2.0, SIDE + 2, SIDE + 2)
    return views


def cut(crops: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """``box`` of every 48 px gray crop, resized bilinearly to ``size``."""
    shifted = tuple(v + PAD for v in box)
    padded = (Image.fromarray(np.pad(c, PAD, mode="edge")) for c in crops)
    return np.stack([np.asarray(p.resize((size, size), Image.Resampling.BILINEAR, shifted)) for p in padded])


def main() -> int:
    args, root = ferplus_model_args(__doc__.splitlines()[0])
    clf = EmotionClassifier(args.model, threads=args.threads)
    views = _views()
    probs: dict[str, dict[str, np.ndarray]] = {name: {} for name in views}
    labels = {}
    for split, theirs in SPLITS.items():
        faces = ferplus.load_split(root, theirs)
        labels[split] = faces.majority()
        for name, box in views.items():
            probs[name][split] = clf.predict(cut(faces.images, box, clf.info.input.size))

    def accuracy(names: list[str], split: str) -> str:
        return f"{majority_accuracy(np.mean([probs[name][split] for name in names], axis=0), labels[split]):.4f}"

    corners = [name for name in views if name.startswith("corner")]
    moved = [name for name in views if name.startswith("moved")]
    groups = {name: [name] for name in views}
    groups |= {
        "crop + centre 44": ["crop", "centre 44"],
        "crop + moved 2 px (5 views)": ["crop", *moved],
        "crop + corners (5 views)": ["crop", *corners],
        "crop + centre 44 + corners (6 views)": ["crop", "centre 44", *corners],
        "all 13 views": list(views),
    }
    out(f"{args.model}: FER+ majority vote, 7 classes; each view resized to {clf.info.input.size} px")
    out(table([[name, *(accuracy(names, s) for s in SPLITS)] for name, names in groups.items()],
              ["view(s), probabilities averaged", "FER+ Valid", "FER+ Test"]))  # fmt: skip
    return 0


if __name__ == "__main__":
    run(main)
