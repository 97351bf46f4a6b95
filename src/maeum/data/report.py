"""The dataset report: ``report.md`` and PNG charts describing a prepared dataset from its manifest.

Charts are drawn with matplotlib (the ``plot`` extra). For AI Hub data the Markdown shows Korean
class names and so do the charts, in an installed Hangul font (e.g. Debian's fonts-nanum); without
one, chart text is English or romanised, with a warning, never boxes for missing glyphs. The same
manifest and summary give byte-identical files on the same machine.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from maeum.data.manifest import read_manifest
from maeum.data.policy import POLICIES
from maeum.data.records import DataError
from maeum.fonts import INSTALL_HINT, ChartFont, hangul_font
from maeum.labels import display_name

log = logging.getLogger(__name__)

REPORT_NAME = "report.md"
CHART_DIR = "report"
SPLITS: tuple[str, ...] = ("train", "val", "test")
SAMPLES = 8  # sample crops per class
TILE = 96  # sample tile side, pixels
UNKNOWN = "unknown"
_COLUMNS = ["path", "split", "label", "boxes", "gender", "age"]
_GRAY = (128, 128, 128)
# Korean spellings of gender seen in AI Hub files -> (Korean, English) chart names.
_GENDER = {
    "남": ("남성", "male"), "남성": ("남성", "male"), "남자": ("남성", "male"),
    "여": ("여성", "female"), "여성": ("여성", "female"), "여자": ("여성", "female"),
}  # fmt: skip
_GENDER_EN = {k: en for k, (_, en) in _GENDER.items()}


@dataclass(frozen=True)
class _Ctx:
    out_dir: Path
    figure: Callable[..., Any]  # a new Agg-backed matplotlib Figure
    labels: list[str]  # metadata order, then labels found only in the manifest
    splits: list[str]
    korean: bool
    font: ChartFont | None = None  # for Korean chart text; None: charts in English

    def name(self, key: str) -> str:
        ko = display_name(key, "ko") if self.korean else key
        return key if ko == key else f"{ko} ({key})"

    def chart_name(self, value: str) -> str:
        """A class, gender or other category as a chart shows it: in Korean for Korean data when the
        font draws every character, else in English (or romanised): never a box for a missing glyph."""
        if self.korean and self.font is not None:
            ko = _GENDER[value][0] if value in _GENDER else display_name(value, "ko")
            if self.font.draws(ko):
                return ko
        text = _GENDER_EN.get(value, value)
        return text if text.isascii() else _romanise(text)

    def save(self, fig: Any, name: str) -> str:
        """Save a chart under ``report/``, without the metadata that would change between versions."""
        fig.savefig(self.out_dir / CHART_DIR / name, format="png", dpi=100, metadata={"Software": None})
        return f"{CHART_DIR}/{name}"


def write_report(out_dir: Path, summary: dict[str, Any] | None = None) -> Path:
    """Write ``out_dir/report.md`` and its charts under ``out_dir/report/``; return the report's path.

    ``summary`` holds what preparation knows beyond the manifest: ``policies``, ``policy``,
    ``agreement``, ``errors`` and ``records``; their section is left out when it is None.
    """
    out_dir = Path(out_dir)
    table, meta = read_manifest(out_dir, columns=_COLUMNS)
    cols = table.to_pydict()
    labels = list(meta.get("labels") or [])
    labels += sorted({x for x in cols["label"] if x is not None} - set(labels))
    splits = list(SPLITS) + sorted({s for s in cols["split"] if s is not None} - set(SPLITS))
    korean = meta.get("dataset") == "aihub"
    font = hangul_font() if korean else None
    if korean and font is None:
        log.warning(
            "no Hangul font found (e.g. %s): the report's charts name classes and genders in English", INSTALL_HINT
        )
    ctx = _Ctx(out_dir, _figure_factory(), labels, splits, korean, font)
    (out_dir / CHART_DIR).mkdir(exist_ok=True)
    lines = [f"# Dataset report: {meta.get('dataset', UNKNOWN)}", ""]
    lines += _overview(ctx, meta, cols) + _classes(ctx, cols) + _summary(ctx, summary or {})
    lines += _box_agreement(ctx, cols) + _people(ctx, cols) + _samples(ctx, cols)
    path = out_dir / REPORT_NAME
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8", newline="\n")
    tmp.replace(path)
    log.info("wrote %s (%d images)", path, table.num_rows)
    return path


def _figure_factory() -> Callable[..., Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise DataError("the dataset report needs matplotlib: pip install 'maeum[plot]'") from None

    def figure(**kwargs: Any) -> Any:
        fig = Figure(**kwargs)
        FigureCanvasAgg(fig)  # Agg without pyplot: no global backend switch, no figure manager
        return fig

    return figure


def _overview(ctx: _Ctx, meta: dict[str, Any], cols: dict[str, list]) -> list[str]:
    per_split = Counter(cols["split"])
    settings = [[k, _setting(v)] for k, v in sorted(meta.items()) if k not in ("labels", "dataset", "manifest_version")]
    lines = ["## Overview", "", f"- Dataset: {meta.get('dataset', UNKNOWN)}", f"- Images: {len(cols['split'])}"]
    lines.append("- Per split: " + ", ".join(f"{s} {per_split.get(s, 0)}" for s in ctx.splits))
    lines += [f"- Classes ({len(ctx.labels)}): " + ", ".join(ctx.name(k) for k in ctx.labels), ""]
    return lines + _table(["setting", "value"], settings) if settings else lines


def _classes(ctx: _Ctx, cols: dict[str, list]) -> list[str]:
    series = _by_split(ctx, cols["label"], ctx.labels, cols["split"])
    rows = _split_rows(ctx, [ctx.name(k) for k in ctx.labels], series)
    rows.append(["total", *(sum(series[s]) for s in ctx.splits), sum(sum(v) for v in series.values())])
    chart = _bars(ctx, "classes.png", ctx.labels, series, "images", "Images per class and split")
    return ["## Class counts per split", "", *_table(["class", *ctx.splits, "total"], rows), f"![classes]({chart})", ""]


def _by_split(ctx: _Ctx, values: Sequence[Any], cats: Sequence[Any], splits: Sequence[str]) -> dict[str, list[int]]:
    """Per split, how many rows have each category."""
    counts = Counter(zip(values, splits, strict=True))
    return {s: [counts.get((c, s), 0) for c in cats] for s in ctx.splits}


def _split_rows(ctx: _Ctx, names: Sequence[str], series: dict[str, list[int]]) -> list[list[Any]]:
    return [
        [name, *(series[s][i] for s in ctx.splits), sum(series[s][i] for s in ctx.splits)]
        for i, name in enumerate(names)
    ]


def _summary(ctx: _Ctx, summary: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if "records" in summary:
        lines += [f"Records read: {summary['records']}", ""]
    if isinstance(summary.get("policies"), dict):
        chosen = summary.get("policy")
        policies = summary["policies"]  # in POLICIES order, however summary.json ordered them
        names = [p for p in POLICIES if p in policies] + sorted(set(policies) - set(POLICIES))
        rows = [
            [f"**{p}** (chosen)" if p == chosen else p, policies[p].get("kept", 0), policies[p].get("dropped", 0)]
            for p in names
        ]
        lines += ["### Label policies", "", *_table(["policy", "kept", "dropped"], rows)]
    agreement = summary.get("agreement")
    if isinstance(agreement, dict) and isinstance(agreement.get("per_class"), dict):
        per_class = agreement["per_class"]
        keys = [k for k in ctx.labels if k in per_class] + sorted(set(per_class) - set(ctx.labels))
        kinds = ("unanimous", "majority", "all_different")
        series = {x: [float(per_class[k].get(x, 0.0)) for k in keys] for x in kinds}
        rows = [
            [ctx.name(k), per_class[k].get("images", 0), *(_pct(series[x][i]) for x in kinds)]
            for i, k in enumerate(keys)
        ]
        lines += ["### Annotator agreement", "", *_table(["class", "images", *kinds], rows)]
        if agreement.get("fleiss_kappa") is not None:
            lines.append(f"- Fleiss' kappa: {agreement['fleiss_kappa']:.3f}")
        if agreement.get("uploader_matches_majority") is not None:
            lines.append(f"- uploader's emotion matches the majority: {_pct(agreement['uploader_matches_majority'])}")
        chart = _bars(ctx, "agreement.png", keys, series, "fraction of images", "Annotator agreement per class")
        lines += ["", f"![agreement]({chart})", ""]
    if isinstance(summary.get("errors"), dict) and summary["errors"]:
        rows = [[r, n] for r, n in sorted(summary["errors"].items(), key=lambda item: (-item[1], item[0]))]
        lines += ["### Errors", "", *_table(["reason", "records"], rows)]
    return ["## Label policies and annotator agreement", "", *lines] if lines else []


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    inter = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def mean_pairwise_iou(boxes: Sequence[Sequence[float] | None] | None) -> float | None:
    """Mean IoU over all pairs of the non-null boxes, or None when fewer than two."""
    valid = [b for b in boxes or () if b is not None]
    if len(valid) < 2:
        return None
    pairs = list(combinations(valid, 2))
    return sum(_iou(a, b) for a, b in pairs) / len(pairs)


def _box_agreement(ctx: _Ctx, cols: dict[str, list]) -> list[str]:
    per_label: dict[str, list[float]] = {}
    for label, boxes in zip(cols["label"], cols["boxes"], strict=True):
        if (iou := mean_pairwise_iou(boxes)) is not None:
            per_label.setdefault(label, []).append(iou)
    if not per_label:
        return []
    values = np.array([v for k in [*ctx.labels, None] for v in per_label.get(k, [])])
    stats = [[len(values), f"{values.mean():.3f}", f"{np.median(values):.3f}", f"{np.percentile(values, 10):.3f}"]]
    fig = ctx.figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.hist(values, bins=20, range=(0.0, 1.0), color="tab:blue")
    ax.set(xlabel="mean pairwise IoU per image", ylabel="images", title="Face box agreement between annotators")
    fig.tight_layout()
    rows = [[ctx.name(k), len(per_label[k]), f"{np.mean(per_label[k]):.3f}"] for k in ctx.labels if k in per_label]
    intro = "Mean pairwise IoU of the annotators' face boxes, per image with two or more boxes."
    lines = ["## Box agreement between annotators", "", intro, "", *_table(["images", "mean", "median", "p10"], stats)]
    return [*lines, f"![box IoU]({ctx.save(fig, 'box_iou.png')})", "", *_table(["class", "images", "mean IoU"], rows)]


def _people(ctx: _Ctx, cols: dict[str, list]) -> list[str]:
    lines: list[str] = []
    genders = [UNKNOWN if g is None else g for g in cols["gender"]]
    ages = [UNKNOWN if a is None else f"{a // 10 * 10}s" for a in cols["age"]]
    for title, values, order in (("Gender", genders, str), ("Age", ages, lambda v: (len(v), v))):
        if all(v == UNKNOWN for v in values):
            continue
        cats = sorted(set(values) - {UNKNOWN}, key=order) + ([UNKNOWN] if UNKNOWN in values else [])
        series = _by_split(ctx, values, cats, cols["split"])
        rows = _split_rows(ctx, [_with_en(c) for c in cats], series)
        chart = _bars(ctx, f"{title.lower()}.png", cats, series, "images", f"{title} per split")
        lines += [f"### {title}", "", *_table([title.lower(), *ctx.splits, "total"], rows), f"![{title}]({chart})", ""]
    return ["## Gender and age balance", "", *lines] if lines else []


def _samples(ctx: _Ctx, cols: dict[str, list]) -> list[str]:
    picks: dict[str, list[int]] = {k: [] for k in ctx.labels}
    for i in sorted(range(len(cols["path"])), key=lambda i: (cols["split"][i] != "train", i)):
        chosen = picks.get(cols["label"][i])
        if chosen is not None and len(chosen) < SAMPLES:
            chosen.append(i)
    rows = []
    for n, (key, chosen) in enumerate(picks.items()):
        if not chosen:
            continue
        grid = Image.new("RGB", (TILE * len(chosen), TILE), _GRAY)
        for j, i in enumerate(chosen):
            grid.paste(_tile(ctx.out_dir / cols["path"][i]), (j * TILE, 0))
        name = f"samples_{n:02d}_{re.sub(r'[^A-Za-z0-9_-]', '_', key)}.png"
        grid.save(ctx.out_dir / CHART_DIR / name, format="PNG")
        rows.append([ctx.name(key), f"![{key}]({CHART_DIR}/{name})"])
    intro = f"Up to {SAMPLES} crops per class, in manifest order, the training split first."
    return ["## Sample crops", "", intro, "", *_table(["class", "samples"], rows)] if rows else []


def _tile(path: Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return ImageOps.pad(im.convert("RGB"), (TILE, TILE), color=_GRAY)
    except (OSError, ValueError) as e:
        log.warning("%s: sample crop not readable (%s)", path, e)
        return Image.new("RGB", (TILE, TILE), _GRAY)


def _bars(ctx: _Ctx, name: str, cats: Sequence[str], series: dict[str, list], ylabel: str, title: str) -> str:
    """A grouped bar chart, one group per category and one bar per series; returns its Markdown path."""
    fig = ctx.figure(figsize=(max(6.0, 0.8 * len(cats) + 2.0), 4.0))
    ax = fig.add_subplot()
    x, width = np.arange(len(cats)), 0.8 / max(len(series), 1)
    for i, (key, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=ctx.chart_name(key))
    font = ctx.font.props if ctx.font is not None else None
    ax.set_xticks(x, [ctx.chart_name(c) for c in cats], rotation=30, ha="right", fontproperties=font)
    ax.set(ylabel=ylabel, title=title)
    ax.locator_params(axis="y", integer=ylabel == "images")  # counts get whole-number ticks
    ax.legend(frameon=False, prop=font)
    fig.tight_layout()
    return ctx.save(fig, name)


# Revised Romanization, syllable by syllable (no sound changes across syllables): chart text for
# Korean values without an English name when no Hangul font is installed.
_INITIALS = tuple("g kk n d tt r m b pp s ss - j jj ch k t p h".split())  # noqa: SIM905
_VOWELS = tuple("a ae ya yae eo e yeo ye o wa wae oe yo u wo we wi yu eu ui i".split())  # noqa: SIM905
_FINALS = tuple("- k k k n n n t l k m l l l p l m p p t t ng t t k t p t".split())  # noqa: SIM905


def _romanise(text: str) -> str:
    out = []
    for c in text:
        i = ord(c) - 0xAC00
        if 0 <= i < 11172:
            out.append((_INITIALS[i // 588] + _VOWELS[i // 28 % 21] + _FINALS[i % 28]).replace("-", ""))
        else:
            out.append(c if c.isascii() else ascii(c)[1:-1])
    return "".join(out)


def _setting(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _with_en(value: str) -> str:
    return f"{value} ({_GENDER_EN[value]})" if value in _GENDER_EN else value


def _pct(value: float) -> str:
    return f"{100 * float(value):.1f}%"


def _table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> list[str]:
    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(r) for r in rows), ""]
