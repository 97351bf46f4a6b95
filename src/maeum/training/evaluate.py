"""Evaluate an emotion model (ONNX) on labelled face crops: accuracy, per-class table, calibration.

Needs only the base install (numpy, onnxruntime), plus pyarrow for prepared manifests and
matplotlib for the confusion-matrix picture; never torch. The data is a FER+ folder (majority
vote of the annotators, as in ``benchmarks/accuracy.py``) or a folder written by
``maeum data prepare``. Data and model labels are matched by name: images whose true label the
model does not have are left out and counted per label in ``EvalReport.dropped``.

Metric conventions, for a confusion matrix ``cm`` (rows: true class, columns: predicted):
precision, recall and F1 are NaN where they are 0/0; balanced accuracy and macro-F1 average
over the classes with support (a model class the data never has does not count).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maeum.classify import EmotionClassifier, resolve_model
from maeum.data.manifest import MANIFEST_NAME, read_manifest
from maeum.data.records import DataError
from maeum.errors import MaeumError
from maeum.fonts import INSTALL_HINT, hangul_font
from maeum.labels import FERPLUS7, display_name
from maeum.training import ferplus
from maeum.training.datasets import ferplus_at_input, is_manifest, load_crop

__all__ = [
    "ClassResult",
    "EvalConfig",
    "EvalReport",
    "EvaluationError",
    "GroupResult",
    "PerClassMetrics",
    "apply_temperature",
    "balanced_accuracy",
    "confusion_matrix",
    "evaluate",
    "expected_calibration_error",
    "fit_temperature",
    "macro_f1",
    "per_class_metrics",
    "summary_lines",
    "write_report",
]

log = logging.getLogger(__name__)

# Our split names for the FER+ folder, and the names ferplus.load_split uses for them.
FERPLUS_SPLITS: dict[str, str] = {"train": "train", "val": "valid", "test": "test"}


class EvaluationError(MaeumError, ValueError):
    """An evaluation that cannot run as asked: labels that do not overlap, an empty split."""


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate, on which data; checked when created."""

    model: str  # a maeum model name (`maeum models`) or a path to an exported .onnx
    data: str  # a FER+ folder (with fer2013new.csv), or a prepared manifest (folder or manifest.parquet)
    split: str = "test"
    tta: bool = False  # average the probabilities of each crop and its horizontal mirror
    calibrate_split: str | None = None  # fit a temperature on this split; report ECE before and after
    group_by: str | None = None  # a manifest column: accuracy per value (e.g. "source", "gender")
    fer2013_labels: bool = False  # FER+ folder: the original FER2013 labels instead of the vote majority
    batch_size: int | None = None  # faces per onnxruntime run (default: the classifier's)
    threads: int | None = None  # inference threads (default: the classifier's)

    def __post_init__(self) -> None:
        if str(self.model).endswith((".pt", ".pth")):  # evaluation runs the served file, through onnxruntime
            raise EvaluationError(
                f"{self.model} is a training checkpoint; export it first (maeum export {self.model} --out "
                "model.onnx) and evaluate the .onnx"
            )
        resolve_model(self.model)  # UnknownNameError / ModelError name the fix
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        path = Path(self.data)
        if not path.exists():
            raise DataError(f"{path}: no such file or folder; pass a FER+ folder or a prepared manifest")
        if is_manifest(path):
            if self.fer2013_labels:
                raise DataError(f"{path}: --fer2013-labels needs the FER+ folder; a manifest carries its own labels")
            known, columns = _manifest_splits_and_columns(path)
        elif (path / "fer2013new.csv").is_file():
            known, columns = tuple(FERPLUS_SPLITS), ()
            if self.fer2013_labels and not (path / "fer2013_labels.csv").is_file():
                raise DataError(f"{path}: --fer2013-labels needs fer2013_labels.csv beside fer2013new.csv")
        else:
            raise DataError(
                f"{path}: neither a manifest (run `maeum data prepare` first) nor a FER+ folder with fer2013new.csv"
            )
        for what, split in (("split", self.split), ("calibration split", self.calibrate_split)):
            if split is not None and split not in known:
                if split in ("train", "val", "test"):  # a split prepare made empty (too few persons, a 0 fraction)
                    raise DataError(
                        f"the {split} split of {path} is empty (it has {', '.join(known) or 'no split'}); prepare "
                        "the data again with more persons or a larger fraction for it (--split)"
                    )
                raise DataError(f"unknown {what} {split!r} in {path}; choose one of: {', '.join(known)}")
        if self.group_by is not None:
            if not columns:
                raise DataError(f"{path}: a FER+ folder has no columns to group by; prepare a manifest first")
            if self.group_by not in columns:
                raise DataError(f"unknown column {self.group_by!r} in {path}; choose one of: {', '.join(columns)}")


@dataclass(frozen=True)
class PerClassMetrics:
    """Per-class arrays, each (K,): precision, recall and F1 (NaN where 0/0), support (true count)."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray


@dataclass(frozen=True)
class ClassResult:
    label: str
    name_ko: str
    precision: float | None  # None where undefined (never predicted, or no support)
    recall: float | None
    f1: float | None
    support: int


@dataclass(frozen=True)
class GroupResult:
    value: str
    n: int
    accuracy: float


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of the top-1 answers: faces in (upper - 1/bins, upper], their mean confidence and accuracy."""

    upper: float
    n: int
    confidence: float | None  # None for an empty bin
    accuracy: float | None


@dataclass(frozen=True)
class EvalReport:
    # The paths are absolute, so that the evaluate command `maeum card` rebuilds from them runs from any
    # folder (a bundled model it names by ``model``, never by its file). ``data`` stays as typed, for the
    # summary and report.md.
    model: str  # the model's name from its metadata
    model_path: str  # the file evaluated, absolute
    data: str  # as given
    data_path: str  # the same, absolute
    split: str
    labels: tuple[str, ...]  # the model's labels: the order of per_class and the confusion matrix
    n: int  # images evaluated
    dropped: dict[str, int]  # true label -> images left out because the model lacks that label
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    per_class: tuple[ClassResult, ...]
    confusion: tuple[tuple[int, ...], ...]  # rows: true, columns: predicted
    ece: float
    tta: bool = False
    calibrate_split: str | None = None
    temperature: float | None = None
    ece_after: float | None = None
    group_by: str | None = None
    groups: tuple[GroupResult, ...] = ()
    fer2013_labels: bool = False
    seconds: float = 0.0
    reliability: tuple[ReliabilityBin, ...] = ()  # the bins ECE sums over
    reliability_after: tuple[ReliabilityBin, ...] = ()  # the same after temperature scaling (with calibrate_split)
    model_sha256: str = ""  # of the file evaluated: `maeum card` takes the report only for that file

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- metrics ---------------------------------------------------------------------------------------


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    """(n, n) int64 counts; rows are true classes, columns predicted classes."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of one length, got {y_true.shape} and {y_pred.shape}")
    if len(y_true) and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= n):
        raise ValueError(f"class indices must lie in [0, {n})")
    return np.bincount(y_true * n + y_pred, minlength=n * n).reshape(n, n)


def per_class_metrics(cm: np.ndarray) -> PerClassMetrics:
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / predicted
        recall = tp / support
        f1 = 2 * tp / (predicted + support)
    return PerClassMetrics(precision, recall, f1, support.astype(np.int64))


def balanced_accuracy(cm: np.ndarray) -> float:
    """Mean recall over the classes with support (NaN when there is none)."""
    m = per_class_metrics(cm)
    return float(m.recall[m.support > 0].mean()) if (m.support > 0).any() else math.nan


def macro_f1(cm: np.ndarray) -> float:
    """Mean F1 over the classes with support (NaN when there is none)."""
    m = per_class_metrics(cm)
    return float(m.f1[m.support > 0].mean()) if (m.support > 0).any() else math.nan


def reliability_bins(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> tuple[ReliabilityBin, ...]:
    """The top-1 answers in equal-width confidence bins: what a reliability diagram draws and ECE sums."""
    probs, y_true = np.asarray(probs, np.float64), np.asarray(y_true, np.int64)
    confidence = probs.max(axis=1) if len(probs) else np.zeros(0)
    correct = (probs.argmax(axis=1) == y_true).astype(np.float64) if len(probs) else np.zeros(0)
    # Bin b holds confidences in (b/bins, (b+1)/bins]; a confidence of exactly 0 joins bin 0.
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=confidence, minlength=bins)
    correct_sum = np.bincount(which, weights=correct, minlength=bins)
    return tuple(
        ReliabilityBin(
            (b + 1) / bins,
            int(count[b]),
            float(conf_sum[b] / count[b]) if count[b] else None,
            float(correct_sum[b] / count[b]) if count[b] else None,
        )
        for b in range(bins)
    )


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-1 confidence: sum over equal-width bins of |accuracy - confidence| x bin share."""
    return _ece(reliability_bins(probs, y_true, bins))


def _ece(bins: tuple[ReliabilityBin, ...]) -> float:
    total = sum(b.n for b in bins)
    if total == 0:
        return math.nan
    return float(sum(b.n * abs(b.accuracy - b.confidence) for b in bins if b.n) / total)  # type: ignore[operator]


TEMPERATURE_LOW, TEMPERATURE_HIGH = 0.05, 20.0  # where fit_temperature searches


def fit_temperature(
    probs: np.ndarray, y_true: np.ndarray, low: float = TEMPERATURE_LOW, high: float = TEMPERATURE_HIGH
) -> float:
    """Temperature T > 0 minimising the NLL of softmax(log(probs) / T), by golden-section search on log T.

    The NLL is convex in 1/T, so it has one minimum on the search interval; T > 1 softens an
    overconfident model, T < 1 sharpens an underconfident one.
    """
    logits = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None))  # (N, K)
    y_true = np.asarray(y_true, np.int64)
    if len(logits) == 0:
        raise EvaluationError("cannot fit a temperature on no images")
    rows = np.arange(len(y_true))

    def nll(log_t: float) -> float:
        z = logits / math.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float((np.log(np.exp(z).sum(axis=1)) - z[rows, y_true]).mean())

    a, b = math.log(low), math.log(high)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(c), nll(d)
    while b - a > 1e-5:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(d)
    return math.exp((a + b) / 2)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(probs) / T), (N, K) float64."""
    z = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, None)) / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


# -- evaluation ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Split:
    images: np.ndarray  # (N, S, S) gray or (N, S, S, 3) RGB uint8, at the model's input size
    labels: list[str]  # true label per image
    groups: list[Any] | None  # the group_by value per image, as the manifest holds it (None where missing)


def evaluate(config: EvalConfig) -> EvalReport:
    """Run the model on ``config.split`` (and the calibration split) and measure it."""
    start = time.monotonic()
    clf = EmotionClassifier(config.model, threads=config.threads)
    data = _load_split(config, config.split, clf)
    probs, y_true, dropped, keep = _predict_known(clf, data, config)
    if len(y_true) == 0:
        raise EvaluationError(f"{config.data} {config.split}: no image has a label the model knows")
    pred = probs.argmax(axis=1)
    k = len(clf.labels)
    cm = confusion_matrix(y_true, pred, k)
    m = per_class_metrics(cm)
    per_class = tuple(
        ClassResult(
            label,
            display_name(label, "ko"),
            _finite(m.precision[i]),
            _finite(m.recall[i]),
            _finite(m.f1[i]),
            int(m.support[i]),
        )
        for i, label in enumerate(clf.labels)
    )
    temperature = ece_after = None
    reliability_after: tuple[ReliabilityBin, ...] = ()
    if config.calibrate_split is not None:
        if config.calibrate_split == config.split:
            log.warning("calibrating on the evaluated split (%s): ECE after is optimistic", config.split)
        cal = _load_split(config, config.calibrate_split, clf)
        cal_probs, cal_true, _, _ = _predict_known(clf, cal, config)
        temperature = fit_temperature(cal_probs, cal_true)
        reliability_after = reliability_bins(apply_temperature(probs, temperature), y_true)
        ece_after = _ece(reliability_after)
        log.info("temperature %.3f fitted on %s (%d images)", temperature, config.calibrate_split, len(cal_true))
        if not TEMPERATURE_LOW * 1.01 < temperature < TEMPERATURE_HIGH / 1.01:
            log.warning(
                "the temperature reached the end of its search range (%g to %g): the model's confidence is "
                "barely related to its accuracy on %s, and the fitted value is a bound, not a calibration",
                TEMPERATURE_LOW,
                TEMPERATURE_HIGH,
                config.calibrate_split,
            )
    groups: tuple[GroupResult, ...] = ()
    if data.groups is not None:
        values = [v for v, kept in zip(data.groups, keep, strict=True) if kept]
        correct = pred == y_true
        # In the column's own order (ages as numbers: 5 before 10), the images without a value last.
        order = sorted(set(values), key=lambda v: (v is None, 0 if v is None else v))
        groups = tuple(
            GroupResult("(none)" if v is None else str(v), int(mask.sum()), float(correct[mask].mean()))
            for v in order
            for mask in [np.array([x == v for x in values])]
        )
    return EvalReport(
        model=clf.info.name,
        model_path=str(clf.path.resolve()),
        model_sha256=clf.sha256,
        data=str(config.data),
        data_path=str(Path(config.data).resolve()),
        split=config.split,
        labels=clf.labels,
        n=len(y_true),
        dropped=dropped,
        accuracy=float((pred == y_true).mean()),
        balanced_accuracy=balanced_accuracy(cm),
        macro_f1=macro_f1(cm),
        per_class=per_class,
        confusion=tuple(tuple(int(v) for v in row) for row in cm),
        ece=_ece(reliability := reliability_bins(probs, y_true)),
        tta=config.tta,
        calibrate_split=config.calibrate_split,
        temperature=temperature,
        ece_after=ece_after,
        group_by=config.group_by,
        groups=groups,
        fer2013_labels=config.fer2013_labels,
        seconds=time.monotonic() - start,
        reliability=reliability,
        reliability_after=reliability_after,
    )


def _predict_known(
    clf: EmotionClassifier, data: _Split, config: EvalConfig
) -> tuple[np.ndarray, np.ndarray, dict[str, int], np.ndarray]:
    """Probabilities and model-index labels of the images whose label the model has; drop counts; kept mask."""
    index = {label: i for i, label in enumerate(clf.labels)}
    y = np.asarray([index.get(label, -1) for label in data.labels], np.int64)
    keep = y >= 0
    dropped: dict[str, int] = {}
    for label in data.labels:
        if label not in index:
            dropped[label] = dropped.get(label, 0) + 1
    if data.labels and not keep.any():
        raise EvaluationError(
            f"no label overlaps: the data has {sorted(set(data.labels))}, the model {list(clf.labels)}"
        )
    if dropped:
        unlabelled = ' ("(none)": the data gives them no label)' if "(none)" in dropped else ""
        log.info("left out %d images whose label the model lacks%s: %s", sum(dropped.values()), unlabelled, dropped)
    if config.tta and clf.info.mirrored:
        log.warning(
            "%s already averages each face with its mirror (exported with --tta): no second mirror pass",
            clf.info.name,
        )
    return clf.predict_many(data.images[keep], config.batch_size, config.tta or None), y[keep], dropped, keep


def _load_split(config: EvalConfig, split: str, clf: EmotionClassifier) -> _Split:
    spec = clf.info.input
    path = Path(config.data)
    if is_manifest(path):
        table, _ = read_manifest(
            path, columns=["path", "split", "label", *([config.group_by] if config.group_by else [])]
        )
        rows = table.to_pydict()
        idx = [i for i, s in enumerate(rows["split"]) if s == split]
        if not idx:
            raise EvaluationError(f"{path}: the {split} split is empty")
        folder = path if path.is_dir() else path.parent
        mode = "L" if spec.channels == 1 else "RGB"
        images = np.stack([load_crop(folder / rows["path"][i], spec.size, mode) for i in idx])
        labels = [rows["label"][i] or "(none)" for i in idx]
        groups = [_group_value(rows[config.group_by][i]) for i in idx] if config.group_by else None
        log.info("%s %s: %d images", path, split, len(idx))
        return _Split(images, labels, groups)
    # FER+: the label is the annotators' majority (first of the tied top classes), as ferplus.majority(),
    # or the image's original FER2013 label ("(none)" where fer2013_labels.csv has none).
    s = _load_ferplus(path, split)
    if config.fer2013_labels:
        labels = [FERPLUS7[k] if k >= 0 else "(none)" for k in ferplus.fer2013_labels(path, s.names)]
    else:
        labels = [ferplus.VOTE_COLUMNS[j] for j in s.votes.argmax(axis=1)]
    return _Split(ferplus_at_input(s.images, spec), labels, None)


def _load_ferplus(path: Path, split: str) -> ferplus.FerPlusSplit:
    """One split of the FER+ folder; DataError naming the fix for a split without images, an image
    missing or unreadable (a partial copy of the folder) or a vote file of another format."""
    folder = ferplus.SPLITS[FERPLUS_SPLITS[split]][1]
    vote_file = path / "fer2013new.csv"
    try:
        return ferplus.load_split(path, FERPLUS_SPLITS[split])  # DataError for a split without images
    except OSError as e:
        raise DataError(
            f"{path}: cannot read the FER+ {split} split ({e}); pass the complete FER+ folder, whose {folder} "
            "holds the images fer2013new.csv names"
        ) from None
    except (KeyError, ValueError) as e:
        if isinstance(e, MaeumError):
            raise
        raise DataError(
            f"{vote_file}: not in the FER+ format ({type(e).__name__}: {e}); pass Microsoft's fer2013new.csv "
            "(Usage, Image name and the 10 vote columns)"
        ) from None


def _manifest_splits_and_columns(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    table, _ = read_manifest(path, columns=["split"])  # DataError without pyarrow or manifest
    import pyarrow.parquet as pq

    file = path / MANIFEST_NAME if path.is_dir() else path
    splits = tuple(sorted({s for s in table.column("split").to_pylist() if s}))
    return splits, tuple(pq.read_schema(file).names)


def _group_value(v: Any) -> Any:
    """A manifest value to group by: None (missing, NaN too), a number or a string (a list as its text)."""
    if isinstance(v, float) and math.isnan(v):
        return None
    return v if v is None or isinstance(v, (str, int, float)) else str(v)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


# -- report files ----------------------------------------------------------------------------------


def write_report(report: EvalReport, out_dir: str | Path) -> list[Path]:
    """Write report.json, report.md, confusion.csv and (with matplotlib) confusion.png and calibration.png,
    which report.md shows; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.json", out / "report.md", out / "confusion.csv"]
    written[0].write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    ko = [display_name(label, "ko") for label in report.labels]
    # A byte-order mark where the names are Korean: Excel reads a CSV without one in the
    # system's code page (CP949 on Korean Windows) and shows mojibake.
    encoding = "utf-8" if all(name.isascii() for name in ko) else "utf-8-sig"
    with written[2].open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        w.writerow(["true \\ predicted", *ko])
        for name, row in zip(ko, report.confusion, strict=True):
            w.writerow([name, *row])
    plots = _plots(report, out)
    written[1].write_text(_markdown(report, {p.name for p in plots}), encoding="utf-8")
    log.info("report written to %s", out)
    return written + plots


def summary_lines(report: EvalReport) -> list[str]:
    """A few lines for a terminal."""
    dropped = ""
    if report.dropped:
        dropped = " (left out: " + ", ".join(f"{k} {v}" for k, v in sorted(report.dropped.items())) + ")"
    lines = [
        f"{report.model} on {report.data} [{report.split}]: {report.n} images{dropped}"
        + (", original FER2013 labels" if report.fer2013_labels else "")
        + (", flip TTA" if report.tta else ""),
        f"accuracy {report.accuracy:.4f}  balanced accuracy {report.balanced_accuracy:.4f}  "
        f"macro-F1 {report.macro_f1:.4f}  ECE {report.ece:.4f}",
    ]
    if report.temperature is not None and report.ece_after is not None:
        lines.append(
            f"temperature {report.temperature:.3f} (fitted on {report.calibrate_split}): "
            f"ECE {report.ece:.4f} -> {report.ece_after:.4f}"
        )
    for g in report.groups:
        lines.append(f"  {report.group_by}={g.value}: accuracy {g.accuracy:.4f} ({g.n} images)")
    return lines


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _both(label: str) -> str:
    """'중립 (neutral)'; just the key where there is no Korean name."""
    ko = display_name(label, "ko")
    return f"{ko} ({label})" if ko != label else label


def _markdown(r: EvalReport, plots: set[str]) -> str:
    names = [_both(label) for label in r.labels]
    lines = [
        f"# Evaluation of {r.model}",
        "",
        f"Data `{r.data}`, split `{r.split}`: {r.n} images"
        + (", scored against the original FER2013 labels" if r.fer2013_labels else "")
        + (", flip TTA" if r.tta else "")
        + f"; {r.seconds:.1f} s.",
    ]
    if r.dropped:
        left = ", ".join(f"{_both(k)} {v}" for k, v in sorted(r.dropped.items()))
        lines.append(f"Left out (label not in the model): {left}.")
    lines += ["", "| metric | value |", "|---|---|"]
    lines += [
        f"| accuracy | {r.accuracy:.4f} |",
        f"| balanced accuracy | {r.balanced_accuracy:.4f} |",
        f"| macro-F1 | {r.macro_f1:.4f} |",
        f"| ECE (15 bins) | {r.ece:.4f} |",
    ]
    if r.temperature is not None and r.ece_after is not None:
        lines += [
            f"| temperature (fitted on {r.calibrate_split}) | {r.temperature:.3f} |",
            f"| ECE after temperature | {r.ece_after:.4f} |",
        ]
    lines += ["", "## Per class", "", "| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for name, c in zip(names, r.per_class, strict=True):
        lines.append(f"| {name} | {_fmt(c.precision)} | {_fmt(c.recall)} | {_fmt(c.f1)} | {c.support} |")
    lines += ["", "## Confusion matrix (rows: true, columns: predicted)", ""]
    lines.append("| true \\ predicted | " + " | ".join(display_name(x, "ko") for x in r.labels) + " |")
    lines.append("|---|" + "---:|" * len(r.labels))
    for name, row in zip(names, r.confusion, strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    if "confusion.png" in plots:
        lines += ["", "![confusion matrix](confusion.png)"]
    if r.reliability:
        scaled = bool(r.reliability_after)
        head = "| confidence bin | images | mean confidence | accuracy |"
        head += " images, after temperature | mean confidence, after | accuracy, after |" if scaled else ""
        lines += [
            "",
            f"## Calibration (top-1 confidence in {len(r.reliability)} bins)",
            "",
            head,
            "|---|" + "---:|" * (6 if scaled else 3),
        ]
        width = 1 / len(r.reliability)
        for k, b in enumerate(r.reliability):
            a = r.reliability_after[k] if scaled else None
            if b.n or (a is not None and a.n):
                row = f"| {b.upper - width:.2f}–{b.upper:.2f} | {b.n} | {_fmt(b.confidence)} | {_fmt(b.accuracy)} |"
                lines.append(row + (f" {a.n} | {_fmt(a.confidence)} | {_fmt(a.accuracy)} |" if a is not None else ""))
        if "calibration.png" in plots:
            lines += ["", "![calibration](calibration.png)"]
    if r.groups:
        lines += ["", f"## Accuracy by {r.group_by}", "", f"| {r.group_by} | images | accuracy |", "|---|---:|---:|"]
        lines += [f"| {g.value} | {g.n} | {g.accuracy:.4f} |" for g in r.groups]
    return "\n".join(lines) + "\n"


def _plots(r: EvalReport, out: Path) -> list[Path]:
    """confusion.png and, where there are bins, calibration.png (none without matplotlib)."""
    try:
        import matplotlib.backends.backend_agg  # noqa: F401
    except ImportError:
        log.warning("matplotlib is not installed, so no confusion.png or calibration.png (pip install 'maeum[plot]')")
        return []
    plots = [_confusion_png(r, out / "confusion.png")]
    if r.reliability:
        plots.append(_calibration_png(r, out / "calibration.png"))
    return plots


def _calibration_png(r: EvalReport, path: Path) -> Path:
    """Reliability diagram: accuracy against mean confidence per bin, before (and after) temperature scaling."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 4.4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    series = [("as the model answers", r.reliability, r.ece, "C0")]
    if r.reliability_after and r.ece_after is not None:
        series.append((f"temperature {r.temperature:.2f}", r.reliability_after, r.ece_after, "C1"))
    for name, bins, ece, colour in series:
        kept = [b for b in bins if b.n]
        ax.plot(
            [b.confidence for b in kept], [b.accuracy for b in kept], marker="o", color=colour,
            label=f"{name} (ECE {ece:.3f})",
        )  # fmt: skip
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean confidence in bin")
    ax.set_ylabel("accuracy in bin")
    ax.set_title(f"{r.model}, {r.split}: calibration", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _confusion_png(r: EvalReport, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    hangul = hangul_font()
    if hangul is None:
        log.warning("no Hangul font found (e.g. %s): confusion.png uses English names", INSTALL_HINT)
    names = [
        display_name(x, "ko") if hangul is not None and hangul.draws(display_name(x, "ko")) else x for x in r.labels
    ]
    font = hangul.props if hangul is not None else None
    cm = np.asarray(r.confusion, np.float64)
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)  # each true class sums to 1
    k = len(names)
    fig = Figure(figsize=(1.2 + 0.75 * k, 1.0 + 0.7 * k))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            colour = "white" if rows[i, j] > 0.5 else "black"
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontproperties=font)
    ax.set_yticks(range(k), names, fontproperties=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{r.model}, {r.split}: accuracy {r.accuracy:.3f}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path
