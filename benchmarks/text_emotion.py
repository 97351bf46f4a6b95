"""Korean text emotion (maeum.text) on the hand-labelled diary sentences, against two baselines.

    python benchmarks/text_emotion.py
    python benchmarks/text_emotion.py --lyrics /work/shared/data/music/melon_lyrics

The sentences are tests/data/diary_sentences_ko.tsv (label<TAB>sentence). Every 4th sentence
(0-based row index % 4 == 3, header excluded) is the test part, never looked at while the
lexicon was tuned; the rest is dev. tests/data/diary_sentences_ko_heldout.tsv (140 sentences,
20 per label) is a harder held-out set by a writer who saw neither the lexicon nor the dev part:
more situations and bodily reactions than emotion words, negation, contrast, slang and typos.
Baselines: the majority class of dev, and keyword-only (the same lexicon with negation,
intensifier, contrast and emoticon rules off).
``--lyrics DIR`` tags every ``*.csv`` in DIR (columns artist,title,lyric, as in the Melon lyrics
set) and prints the label distribution per file and a few examples; nothing is written.
"""

from __future__ import annotations

import argparse
import collections
import csv
import sys
from collections.abc import Callable
from pathlib import Path

from _common import REPO, at_least_zero, out, run, table
from maeum.text import LABELS, TextEmotionConfig, analyze_text

SENTENCES = REPO / "tests" / "data" / "diary_sentences_ko.tsv"
HELDOUT = REPO / "tests" / "data" / "diary_sentences_ko_heldout.tsv"
KEYWORDS_ONLY = TextEmotionConfig(negation=False, intensifiers=False, contrast=False, emoticons=False)


def _rows(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.split("\t", 1)) for line in path.read_text(encoding="utf-8").splitlines()[1:]]  # type: ignore[misc]


def load_split(path: Path = SENTENCES) -> dict[str, list[tuple[str, str]]]:
    """{"dev": [...], "test": [...], "held-out": [...]} of (label, sentence).

    dev and test come from ``path`` by the fixed every-4th-row rule; held-out is a separate set
    written later by another writer who never saw the lexicon or the dev sentences.
    """
    parts: dict[str, list[tuple[str, str]]] = {"dev": [], "test": []}
    for i, row in enumerate(_rows(path)):
        parts["test" if i % 4 == 3 else "dev"].append(row)
    if HELDOUT.exists():
        parts["held-out"] = _rows(HELDOUT)
    return parts


def metrics(gold: list[str], pred: list[str]) -> tuple[float, float, dict[str, tuple[float, float]]]:
    """Accuracy, macro-F1 over LABELS, and {label: (precision, recall)}."""
    acc = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)
    per: dict[str, tuple[float, float]] = {}
    f1s = []
    for lab in LABELS:
        tp = sum(g == p == lab for g, p in zip(gold, pred, strict=True))
        n_pred, n_gold = pred.count(lab), gold.count(lab)
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        per[lab] = (prec, rec)
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return acc, sum(f1s) / len(f1s), per


def evaluate(show_errors: bool) -> None:
    parts = load_split()
    majority = collections.Counter(lab for lab, _ in parts["dev"]).most_common(1)[0][0]
    systems: dict[str, Callable[[str], str]] = {
        "majority": lambda s: majority,
        "keyword-only": lambda s: analyze_text(s, KEYWORDS_ONLY).label,
        "maeum.text": lambda s: analyze_text(s).label,
    }
    rows, per_rows = [], []
    for part, items in parts.items():
        gold = [lab for lab, _ in items]
        for name, fn in systems.items():
            pred = [fn(s) for _, s in items]
            acc, f1, per = metrics(gold, pred)
            rows.append([part, name, len(items), f"{acc:.3f}", f"{f1:.3f}"])
            if name == "maeum.text":
                per_rows += [[part, lab, f"{p:.2f}", f"{r:.2f}"] for lab, (p, r) in per.items()]
                if show_errors and part == "dev":
                    for (g, s), p in zip(items, pred, strict=True):
                        if g != p:
                            out(f"  {g:>9} -> {p:<9} {s}  {analyze_text(s).evidence}")
    out(table(rows, ["part", "system", "n", "accuracy", "macro-F1"]))
    out()
    out(table(per_rows, ["part", "label", "precision", "recall"]))


def tag_lyrics(folder: Path, examples: int) -> None:
    csv.field_size_limit(sys.maxsize)
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise SystemExit(f"no *.csv files in {folder}; expected artist,title,lyric CSVs such as melon_lyrics")
    total: collections.Counter[str] = collections.Counter()
    rows, shown = [], []
    for path in files:
        counts: collections.Counter[str] = collections.Counter()
        with path.open(encoding="utf-8", newline="") as fh:
            for rec in csv.DictReader(fh):
                lyric = (rec.get("lyric") or "").strip()
                if not lyric:
                    continue
                result = analyze_text(lyric)
                counts[result.label] += 1
                if len(shown) < examples and result.label != "neutral" and len(shown) < 2 * (files.index(path) + 1):
                    shown.append(
                        [
                            path.stem,
                            (rec.get("title") or "").strip()[:30],
                            result.label,
                            f"{result.confidence:.2f}",
                            ", ".join(result.evidence[:5]),
                        ]
                    )
        total += counts
        n = sum(counts.values())
        rows.append([path.stem, n, *(f"{counts[lab] / n:.0%}" if n else "-" for lab in LABELS)])
    n = sum(total.values())
    rows.append(["all", n, *(f"{total[lab] / n:.0%}" for lab in LABELS)])
    out(table(rows, ["file", "songs", *LABELS]))
    out()
    out(table(shown, ["file", "title", "label", "conf", "evidence (first 5)"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lyrics", type=Path, help="folder of artist,title,lyric CSV files to tag")
    parser.add_argument("--examples", type=at_least_zero(int), default=10, help="lyrics examples to print")
    parser.add_argument("--errors", action="store_true", help="list the dev-part errors (never the test part)")
    args = parser.parse_args()
    evaluate(args.errors)
    if args.lyrics:
        out()
        tag_lyrics(args.lyrics, args.examples)


if __name__ == "__main__":
    run(main)
