"""``maeum evaluate``: accuracy, per-class table and calibration of an emotion model on labelled crops."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from maeum.errors import ConfigError, MaeumError
from maeum.outpaths import output_file, output_folder, refuse_overwriting

log = logging.getLogger("maeum")

EXIT_OK = 0  # usage errors (2) are cli.main's


def add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``evaluate`` subcommand on the ``maeum`` parser's subparsers."""
    e = sub.add_parser(
        "evaluate",
        help="evaluate an emotion model on FER+ or a prepared dataset (no torch needed)",
        description="Classify the face crops of one split, compare with their labels and write "
        "report.json, report.md, confusion.csv, confusion.png and calibration.png to --out.",
    )
    e.add_argument("model", help="emotion model name (see `maeum models`) or an exported .onnx")
    e.add_argument(
        "--data", required=True, help="the FER+ folder, or a folder prepared by `maeum data prepare` (or its manifest)"
    )
    e.add_argument("--split", default="test", help="split to evaluate (default: test)")
    e.add_argument("--tta", action="store_true", help="average each crop with its horizontal mirror")
    e.add_argument(
        "--calibrate-on",
        metavar="SPLIT",
        help="fit a temperature on this split (e.g. val); report ECE before and after",
    )
    e.add_argument(
        "--group-by",
        metavar="COLUMN",
        action="append",
        help="accuracy per value of this manifest column (e.g. gender); one column a run",
    )
    e.add_argument(
        "--fer2013-labels",
        action="store_true",
        help="FER+ folder: score against the original FER2013 labels (the FER2013 protocol: --split test "
        "is PrivateTest) instead of the FER+ vote majority",
    )
    e.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="faces per inference run (default: 256 images a run, mirror images included)",
    )
    e.add_argument("--threads", type=int, default=None, help="CPU threads for inference")
    e.add_argument("--out", type=Path, required=True, help="folder for the report files")
    e.set_defaults(run=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from maeum.training.evaluate import EvalConfig, evaluate, summary_lines, write_report

    output_folder(args.out)
    data = Path(args.data)
    data_folder = data if data.is_dir() else data.parent
    if args.out.is_dir() and data_folder.is_dir() and args.out.samefile(data_folder):
        raise ConfigError(  # report.md would replace the data's own report (`maeum data prepare`)
            f"--out {args.out}: is the data folder ({data_folder}); write the report into a folder of its own, "
            f"e.g. --out {args.out / 'eval'}"
        )
    if args.group_by and len(args.group_by) > 1:
        raise MaeumError(
            f"--group-by takes one column, got {len(args.group_by)} ({', '.join(args.group_by)}); "
            "run evaluate once per column"
        )
    try:
        config = EvalConfig(
            model=args.model,
            data=args.data,
            split=args.split,
            tta=args.tta,
            calibrate_split=args.calibrate_on,
            group_by=args.group_by[0] if args.group_by else None,
            fer2013_labels=args.fer2013_labels,
            batch_size=args.batch_size,
            threads=args.threads,
        )
    except ValueError as e:  # MaeumErrors pass through to cli.main
        if isinstance(e, MaeumError):
            raise
        raise MaeumError(str(e)) from None
    report = evaluate(config)
    paths = write_report(report, args.out)
    out = sys.stdout
    for line in summary_lines(report):
        out.write(line + "\n")
    out.write("wrote " + ", ".join(str(p) for p in paths) + "\n")
    return EXIT_OK


def add_card_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``card`` subcommand: a model card written from the model, its reports and its run."""
    c = sub.add_parser(
        "card",
        help="write a model card (Markdown) from an ONNX model, its evaluation reports and its training run",
        description="Write a model card from the model's metadata, `maeum evaluate` reports and, with --run, "
        "the training run's config.json and summary.json.",
    )
    c.add_argument("model", help="emotion model name (see `maeum models`) or an exported .onnx")
    c.add_argument(
        "--report",
        type=Path,
        action="append",
        required=True,
        metavar="DIR_OR_JSON",
        help="a folder written by `maeum evaluate --out`, or its report.json (repeatable)",
    )
    c.add_argument(
        "--run", dest="run_dir", type=Path, metavar="RUN_DIR", help="the run folder of `maeum train` (config.json)"
    )
    c.add_argument("--out", type=Path, required=True, help="the Markdown file to write, e.g. CARD.md")
    c.set_defaults(run=_card)


def _card(args: argparse.Namespace) -> int:
    from maeum.classify import resolve_model
    from maeum.training.card import write_card

    output_file(args.out)
    # The card must not take the place of what it is written from: the model, a report, the run's files.
    inputs = [resolve_model(args.model), *(r / "report.json" if r.is_dir() else r for r in args.report)]
    if args.run_dir is not None:
        inputs += [args.run_dir / "config.json", args.run_dir / "summary.json"]
    refuse_overwriting([("--out", args.out)], [p for p in inputs if p.exists()])
    path = write_card(args.model, args.report, args.run_dir, out=args.out)
    log.info("model card written to %s", path)
    return EXIT_OK
