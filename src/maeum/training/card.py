"""Model cards written from evidence: the ONNX metadata, ``maeum evaluate`` reports and the training run.

A card has the sections of ``maeum/models/MODEL_CARD.md``: a header table (task, input, output,
architecture, size, licence), Data, Recipe, Metrics and Limits. Every number comes from a file:
nothing is typed by hand, so the card cannot drift from the model it describes. Torch-free.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maeum.classify import BUNDLED_MODELS, EmotionClassifier, ModelInfo, resolve_model
from maeum.errors import MaeumError
from maeum.labels import display_name
from maeum.training.config import describe_changes

log = logging.getLogger("maeum")

# The keys of EvalReport.to_dict() a card needs; a JSON without them is not an evaluate report.
REPORT_KEYS: tuple[str, ...] = (
    "model",
    "model_path",
    "data",
    "split",
    "labels",
    "n",
    "dropped",
    "accuracy",
    "balanced_accuracy",
    "macro_f1",
    "per_class",
    "confusion",
    "ece",
)
_LABEL_MODES = {
    "soft": "targets: the annotators' vote distribution",
    "majority": "targets: the one-hot majority label",
    "fer2013": "targets: the original FER2013 labels",
}
WEAK_RECALL = 0.5  # a class below this recall is named in Limits
NOT_STATED = "not stated in the model's metadata"
EXPRESSIONS_NOT_FEELINGS = (
    "Expressions are not feelings: the model reads a face at one moment, posed or not. "
    "Do not use it to make decisions about people."
)


class CardError(MaeumError, ValueError):
    """A model card that cannot be written from the given files: a missing or foreign report, a bad run folder."""


def model_card(model: str | Path, reports: Sequence[Path], run: Path | None = None) -> str:
    """The Markdown card of ``model`` from its evaluation reports (report.json or its folder) and training run."""
    return _render(model, reports, run, link_from=None)


def write_card(model: str | Path, reports: Sequence[Path], run: Path | None = None, *, out: Path) -> Path:
    """Write the card of ``model`` to ``out`` (links relative to its folder); return ``out``."""
    out = Path(out)
    text = _render(model, reports, run, link_from=out.parent)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    log.debug("model card written to %s", out)
    return out


# -- loading and checking the evidence -------------------------------------------------------------


def _render(model: str | Path, reports: Sequence[Path], run: Path | None, link_from: Path | None) -> str:
    path = resolve_model(model)
    clf = EmotionClassifier(model, threads=1)  # as named: a bundled variant is its own model
    info = clf.info
    if not reports:
        raise CardError("no evaluation report given; run `maeum evaluate MODEL --data D --out DIR` and pass DIR")
    digest = clf.sha256
    loaded = [_load_report(Path(r), info, digest, str(model)) for r in reports]
    config, summary = _load_run(Path(run), info) if run is not None else (None, None)
    lines = _header(info, path)
    lines += _data(info, run, config, summary)
    lines += _recipe(info, path, run, config, summary)
    lines += _metrics(loaded, link_from)
    lines += _limits(info, loaded, link_from)
    return "\n".join(lines) + "\n"


def _load_report(path: Path, info: ModelInfo, digest: str, model: str) -> tuple[Path, dict[str, Any]]:
    """(folder of the report, its data); refuses what is not an evaluate report of this model file
    (``digest``: its SHA-256; reports written before evaluate recorded it are checked by name only).
    ``model`` is the model as the user named it, for the command a message suggests."""
    file = path / "report.json" if path.is_dir() else path
    if not file.is_file():
        raise CardError(
            f"{path}: no such report; run `maeum evaluate {model} --data D --out DIR` and pass DIR or DIR/report.json"
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CardError(f"{file}: not a readable JSON report ({e}); pass the report.json of `maeum evaluate`") from None
    missing = [k for k in REPORT_KEYS if k not in data] if isinstance(data, dict) else list(REPORT_KEYS)
    if missing:
        raise CardError(
            f"{file}: not a `maeum evaluate` report (missing {', '.join(missing)}); "
            "pass the report.json that `maeum evaluate --out DIR` writes, or DIR"
        )
    if "data_path" not in data:  # written before evaluate recorded absolute paths
        log.warning(
            "%s: an older report, with its paths as typed in the folder evaluate ran in; the card's evaluate "
            "command shows them so, and may not run from the card's folder (evaluate again to fix it)",
            file,
        )
    if data["model"] != info.name:
        raise CardError(
            f"{file} is a report of model {data['model']!r}, not of {info.name!r}; "
            f"evaluate this model with `maeum evaluate {model} ...` and pass that report"
        )
    if data.get("model_sha256", digest) != digest:
        raise CardError(
            f"{file} is a report of another file named {info.name!r} ({data['model_path']}, "
            f"sha256 {data['model_sha256'][:12]}…), not of this one (sha256 {digest[:12]}…); "
            "evaluate this file and pass that report"
        )
    labels = tuple(data["labels"])
    if labels != info.labels or len(data["confusion"]) != len(labels) or len(data["per_class"]) != len(labels):
        raise CardError(
            f"{file}: its labels {list(labels)} (or its tables) do not match the model's {list(info.labels)}; "
            "evaluate this model again and pass the new report"
        )
    return file.parent, data


def _load_run(run: Path, info: ModelInfo) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The run's config.json and, when the run finished, its summary.json; refused when the model's
    metadata says it came from another run (another architecture, input or training setting)."""
    config_file = run / "config.json"
    if not config_file.is_file():
        raise CardError(f"{run}: no config.json; pass the folder that `maeum train --out RUN` wrote")
    config = _read_json(config_file)
    theirs: dict[str, Any] = {"model": info.extra.get("architecture"), "input.size": info.input.size}
    theirs["input.color"] = info.input.color
    training = info.extra.get("training")
    # The settings export records as they are (teachers it shortens). Not epochs: a resume may
    # extend a run, and its best.pt keeps the settings of the epoch it was saved at.
    if isinstance(training, dict):
        theirs |= {k: training.get(k) for k in ("labels", "batch_size", "lr", "seed")}
    ours = {
        **config,
        "input.size": config.get("input", {}).get("size"),
        "input.color": config.get("input", {}).get("color"),
    }
    differ = [
        f"{k} {ours[k]!r} (the model: {v!r})" for k, v in theirs.items() if v is not None and k in ours and ours[k] != v
    ]
    if differ:
        raise CardError(
            f"{run} is not the run {info.name} was exported from: its {', '.join(differ)}; "
            "pass the run folder of the checkpoint this model was exported from"
        )
    summary_file = run / "summary.json"
    summary = _read_json(summary_file) if summary_file.is_file() else None
    return config, summary


def _read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CardError(f"{file}: unreadable JSON ({e}); pass a run folder written by `maeum train`") from None
    if not isinstance(data, dict):
        raise CardError(f"{file}: expected a JSON object; pass a run folder written by `maeum train`")
    return data


# -- sections --------------------------------------------------------------------------------------


def _header(info: ModelInfo, path: Path) -> list[str]:
    spec, extra = info.input, info.extra
    classes = ", ".join(f"{label} {display_name(label, 'ko')}" for label in info.labels)
    if len(spec.mean) == 1:
        norm = f"`(pixel / 255 - {spec.mean[0]:g}) / {spec.std[0]:g}`"
    else:
        norm = f"`(pixel / 255 - mean) / std`, mean {list(spec.mean)}, std {list(spec.std)} per channel"
    output = (
        "probabilities (softmax inside the graph)"
        if info.output == "probabilities"
        else "logits (maeum applies the softmax)"
    )
    params = extra.get("parameters")
    size = f"{params:,} parameters, " if isinstance(params, int) else "parameters not stated in the metadata, "
    size += f"{path.stat().st_size / 1e6:.1f} MB ONNX (`{path.name}`)"
    architecture = f"`{extra['architecture']}`" if extra.get("architecture") else NOT_STATED
    if info.mirrored:
        output += "; the mean over the face and its mirror image (flip test-time augmentation in the graph)"
    elif info.flip_below is not None:
        output += (
            f"; faces whose top probability is below {info.flip_below:g} are averaged with their mirror image "
            "(flip test-time augmentation where the model is unsure, run by maeum's classifier)"
        )
    if extra.get("quantization"):
        size += f"; {extra['quantization']}"
    return [
        f"# Model card: `{info.name}`",
        "",
        "Written by `maeum card` from the model's metadata, its evaluation reports and, when given, its training run.",
        "",
        "| | |",
        "|---|---|",
        f"| task | facial expression, {len(info.labels)} classes: {classes} |",
        f"| input | aligned face, {spec.size}x{spec.size} {spec.color}, {norm}; "
        "alignment template in the file's metadata |",
        f"| output | {output} |",
        f"| architecture | {architecture} |",
        f"| size | {size} |",
        f"| licence | {extra.get('licence') or NOT_STATED} |",
    ]


def _data(
    info: ModelInfo, run: Path | None, config: dict[str, Any] | None, summary: dict[str, Any] | None
) -> list[str]:
    extra = info.extra
    trained_on = extra.get("trained_on") or extra.get("dataset") or NOT_STATED
    lines = ["", "## Data", "", f"- **Trained on**: {trained_on}."]
    training = extra.get("training")
    if isinstance(training, dict) and training:
        settings = ", ".join(f"{k} {v}" for k, v in training.items())
        lines.append(f"- **Training (metadata)**: {settings}.")
    if extra.get("epoch") is not None:
        lines.append(f"- **Checkpoint**: epoch {extra['epoch']}.")
    if extra.get("exported_from"):
        how = "its int8 graph kept as it was" if extra.get("graph_kept") else "its network read back"
        lines.append(
            f"- **Exported again** from {extra['exported_from']}, {how} "
            f"(`maeum export SOURCE --data DATA --out FILE{_export_flags(info)}`)."
        )
    if config is not None:
        lines.append(
            f"- **Run** `{run}`: train and val splits from `{config.get('data')}`, "
            f"label mode `{config.get('labels')}` ({_LABEL_MODES.get(str(config.get('labels')), 'as configured')})."
        )
        if summary is None:
            lines.append("- The run has no summary.json: it did not finish, so its best epoch is unknown.")
        else:
            patience = config.get("early_stopping", 0)
            if summary.get("stopped_early"):
                stopping = f"stopped early (no better valid accuracy for {patience} epochs)"
            elif patience:
                stopping = f"early stopping after {patience} epochs without progress, not triggered"
            else:
                stopping = "no early stopping"
            lines.append(
                f"- **Selection**: best epoch {summary.get('best_epoch')} (valid accuracy "
                f"{summary.get('best_valid_acc')}) of {int(summary.get('last_epoch', -1)) + 1} epochs run "
                f"({summary.get('epochs')} planned); {stopping}."
            )
    return lines


def _recipe(
    info: ModelInfo, path: Path, run: Path | None, config: dict[str, Any] | None, summary: dict[str, Any] | None
) -> list[str]:
    lines = ["", "## Recipe", ""]
    if config is None or run is None:
        return [
            *lines,
            "The recipe of this file is unknown: no training run was given. Pass `--run RUN_DIR` (the folder "
            "`maeum train --out RUN_DIR` wrote, holding config.json and summary.json) to include its settings "
            "and the commands that reproduce it.",
        ]
    try:
        import yaml

        block, kind = yaml.safe_dump(config, sort_keys=False, allow_unicode=True).rstrip(), "yaml"
    except ImportError:
        block, kind = json.dumps(config, indent=2, ensure_ascii=False), "json"
    q = shlex.quote
    resumes = (summary or {}).get("resumes") or []
    if resumes:
        lines += [
            "The run was resumed with other settings than its first epochs, so the commands below, with "
            "the final settings from the start, do not repeat it exactly:",
            "",
            *(f"- after epoch {r['after_epoch']}: {describe_changes(r['changed'])}" for r in resumes),
            "",
        ]
    return [
        *lines,
        f"Settings (`{run / 'config.json'}`):",
        "",
        f"```{kind}",
        block,
        "```",
        "",
        "```bash",
        f"maeum train --config {q(str(run / 'config.json'))}",
        f"maeum export {q(str(run / 'best.pt'))} --out {q(str(path))} --name {q(info.name)}{_export_flags(info)}",
        "```",
    ]


def _export_flags(info: ModelInfo) -> str:
    """The ``maeum export`` options that wrote a file with this metadata."""
    tta = " --tta" if info.mirrored else " --tta gated" if info.flip_below is not None else ""
    return tta + (" --int8" if info.extra.get("quantization") else "")


def _metrics(reports: list[tuple[Path, dict[str, Any]]], link_from: Path | None) -> list[str]:
    lines = ["", "## Metrics"]
    if link_from is not None:
        lines += ["", "Run the evaluate commands below from this card's folder: their relative paths start there."]
    for folder, r in reports:
        lines += [
            "",
            f"### `{_data_path(r, link_from)}`, split `{r['split']}`"
            + (", original FER2013 labels" if r.get("fer2013_labels") else ""),
            "",
            "```bash",
            _evaluate_command(folder, r, link_from),
            "```",
            "",
        ]
        left = ", ".join(f"{k} {v}" for k, v in sorted(r["dropped"].items()))
        images = f"{r['n']}" + (f" (left out: {left})" if left else "") + (", flip TTA" if r.get("tta") else "")
        lines += [
            "| metric | value |",
            "|---|---|",
            f"| images | {images} |",
            f"| accuracy | {r['accuracy']:.4f} |",
            f"| balanced accuracy | {r['balanced_accuracy']:.4f} |",
            f"| macro-F1 | {r['macro_f1']:.4f} |",
            f"| ECE (15 bins) | {r['ece']:.4f} |",
        ]
        if r.get("temperature") is not None:
            lines.append(f"| temperature (fitted on {r.get('calibrate_split')}) | {r['temperature']:.3f} |")
        if r.get("ece_after") is not None:
            lines.append(f"| ECE after temperature | {r['ece_after']:.4f} |")
        lines += ["", "| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
        for c in r["per_class"]:
            lines.append(
                f"| {_name(c['label'])} | {_fmt(c.get('precision'))} | {_fmt(c.get('recall'))} | "
                f"{_fmt(c.get('f1'))} | {c.get('support')} |"
            )
        names = [_name(label) for label in r["labels"]]
        lines += ["", "Confusion matrix (rows: true label; columns: prediction):", ""]
        lines += ["| true \\ predicted | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        lines += [
            f"| {n} | " + " | ".join(str(v) for v in row) + " |" for n, row in zip(names, r["confusion"], strict=True)
        ]
        if r.get("groups"):
            lines += ["", f"| {r.get('group_by')} | images | accuracy |", "|---|---:|---:|"]
            lines += [f"| {g['value']} | {g['n']} | {g['accuracy']:.4f} |" for g in r["groups"]]
        png = folder / "confusion.png"
        if png.is_file():
            lines += ["", f"![confusion matrix, {r['split']}]({_link(png, link_from)})"]
    return lines


def _limits(info: ModelInfo, reports: list[tuple[Path, dict[str, Any]]], link_from: Path | None) -> list[str]:
    lines = ["", "## Limits", ""]
    for _, r in reports:
        where = f"on `{_data_path(r, link_from)}` split `{r['split']}`"
        weak = [
            f"{_name(c['label'])} {c['recall']:.3f} ({_faces(c['support'])})"
            for c in r["per_class"]
            if c.get("recall") is not None and c["recall"] < WEAK_RECALL
        ]
        if weak:
            lines.append(f"- **Weak classes** {where} (recall below {WEAK_RECALL}): {', '.join(weak)}.")
        columns = list(zip(*r["confusion"], strict=True)) if r["confusion"] else []
        never = [_name(label) for label, col in zip(r["labels"], columns, strict=True) if sum(col) == 0]
        if never:
            lines.append(f"- **Never predicted** {where}: {', '.join(never)}.")
        if r["dropped"]:
            left = ", ".join(f"{k} ({_faces(v)})" for k, v in sorted(r["dropped"].items()))
            lines.append(f"- **Labels the model cannot output**, left out {where}: {left}.")
    spec = info.input
    colour = "gray: colour is discarded" if spec.color == "gray" else "colour"
    lines += [
        f"- {_domain_note(info)}",
        f"- **{spec.size}x{spec.size} {spec.color} input** ({colour}): fine detail is lost; very small, blurred or "
        "strongly turned faces fall outside what it was trained on.",
        f"- {EXPRESSIONS_NOT_FEELINGS}",
    ]
    return lines


# -- helpers ---------------------------------------------------------------------------------------


def _domain_note(info: ModelInfo) -> str:
    trained_on = str(info.extra.get("trained_on") or info.extra.get("dataset") or "")
    key = trained_on.lower().replace(" ", "").replace("+", "plus")
    if "ferplus" in key or "fer2013" in key:
        return (
            "**Not validated on Korean faces**: trained on FER2013 web images (48x48 gray, gathered by web image "
            "search); its people, ages and photo styles may not be your users'."
        )
    if "aihub" in key:
        return "**Korean faces from AI Hub**: check the licence terms of the data before you ship or share the model."
    if trained_on:
        return f"**Trained on {trained_on}**; check it matches your users."
    return "**The training data is not stated** in the model's metadata; check it matches your users."


def _evaluate_command(folder: Path, r: dict[str, Any], link_from: Path | None) -> str:
    """The `maeum evaluate` call that wrote the report: a bundled model by its name, files by the paths
    ``_link`` gives them (from the card's folder), so that it runs wherever the card's folder is."""
    model = r["model_path"]
    if r["model"] in BUNDLED_MODELS and _same_file(model, resolve_model(r["model"])):
        model = r["model"]  # a name, never a path (the variants of a bundled model share its file)
    else:
        model = _recorded(model, link_from)
    q = shlex.quote
    parts = ["maeum evaluate", q(model), "--data", q(_data_path(r, link_from)), "--split", q(str(r["split"]))]
    if r.get("tta"):
        parts.append("--tta")
    if r.get("fer2013_labels"):
        parts.append("--fer2013-labels")
    if r.get("calibrate_split"):
        parts += ["--calibrate-on", q(str(r["calibrate_split"]))]
    if r.get("group_by"):
        parts += ["--group-by", q(str(r["group_by"]))]
    parts += ["--out", q(_link(folder, link_from))]
    return " ".join(parts)


def _data_path(r: dict[str, Any], link_from: Path | None) -> str:
    return _recorded(r.get("data_path") or r["data"], link_from)


def _recorded(path: str, link_from: Path | None) -> str:
    """A path a report records, as the card shows it: an absolute one as ``_link`` gives it; a relative one
    (from a report older than absolute paths) as recorded, as the folder it started from is unknown."""
    return _link(Path(path), link_from) if Path(path).is_absolute() else path


def _same_file(a: str | Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == b.resolve()
    except OSError:
        return False


def _link(target: Path, link_from: Path | None) -> str:
    """``target`` relative to the card's folder ``link_from``, so the card and what lies beside it can move
    together. Absolute without a folder (``model_card``), and where the two share no folder but the root:
    a path climbing to the root would name the author's layout all the same, less readably."""
    target = target.resolve()
    if link_from is None:
        return target.as_posix()
    here = link_from.resolve()
    try:
        if os.path.commonpath([target, here]) == target.anchor:
            return target.as_posix()
        return Path(os.path.relpath(target, here)).as_posix()
    except ValueError:  # another drive on Windows: no relative path
        return target.as_posix()


def _name(label: str) -> str:
    """'neutral 중립'; just the key where there is no Korean name."""
    ko = display_name(label, "ko")
    return f"{label} {ko}" if ko != label else label


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _faces(n: int) -> str:
    return f"{n} face" if n == 1 else f"{n} faces"
