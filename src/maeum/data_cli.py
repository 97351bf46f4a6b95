"""``maeum data``: prepare datasets for training (``prepare``) and describe them (``report``)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from maeum.errors import MaeumError, OutputError
from maeum.outpaths import output_folder

log = logging.getLogger("maeum")

EXIT_OK, EXIT_WITH_ERRORS = 0, 1  # 1: the run is unfinished, run it again (after freeing space, re-downloading)


def add_data_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``maeum data prepare`` and ``maeum data report``."""
    # Only the option lists: the pipeline itself is imported when the command runs.
    from maeum.data.crop import COLORS, CROP_MODES, IMAGE_FORMATS
    from maeum.data.engine import ENGINES
    from maeum.data.policy import POLICIES
    from maeum.data.sources import list_sources

    d = sub.add_parser("data", help="prepare datasets (AI Hub, FER2013, FER+, folders) for training")
    dsub = d.add_subparsers(dest="data_command", required=True)
    p = dsub.add_parser(
        "prepare",
        help="crops, a Parquet manifest, an errors file and a report from a dataset download",
        description="Read a dataset as downloaded (zips or folders; nothing is extracted), resolve labels, "
        "split by person, cut face crops. Re-running with the same --out resumes where it stopped; after "
        "the source changed (parts added or downloaded again), it crops only the new and changed images.",
    )
    p.add_argument("kind", choices=list_sources(), help="dataset kind")
    p.add_argument("source", type=Path, help="the download: a folder, zip, TSV (AI Hub layout B) or CSV (FER2013)")
    p.add_argument(
        "--out", type=Path, required=True,
        help="output folder: new, empty or an earlier run's, outside the source (resumes an unfinished run)",
    )  # fmt: skip
    p.add_argument(
        "--policy", choices=POLICIES, default="majority",
        help="label policy (default: majority): majority, unanimous, uploader or tiebreak for AI Hub; "
        "majority or soft for FER+; FER2013 and folders give their labels (majority only)",
    )  # fmt: skip
    p.add_argument(
        "--tiebreak",
        default="uploader,A,B,C",
        help="with --policy tiebreak: where to take the label when all annotators differ (default: uploader,A,B,C)",
    )
    p.add_argument("--crop", choices=CROP_MODES, help="box: annotators' mean box; detect: re-detect and align; "
                   "whole: whole image (default: box for AI Hub, whole for the others)")  # fmt: skip
    p.add_argument("--size", type=int, help="crop size in pixels, 8 to 1024 (default: 48 for FER, 224 for the others)")
    p.add_argument("--color", choices=COLORS, help="colour mode (default: gray for FER, rgb for the others)")
    p.add_argument("--margin", type=float, default=0.2, help="box mode: margin on each side, share of the box")
    p.add_argument("--format", dest="image_format", choices=IMAGE_FORMATS, default="png", help="crop file format")
    p.add_argument(
        "--split", default="0.8,0.1,0.1",
        help="train,val,test fractions of persons' images (default: 0.8,0.1,0.1; FER2013/FER+: with --resplit)",
    )  # fmt: skip
    p.add_argument("--resplit", action="store_true", help="ignore the source's own splits (FER) and split anew")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the cap (default: 0)")
    p.add_argument("--cap", type=int, help="keep at most N images per class")
    p.add_argument("--detector", help="with --crop detect: the face detector (default: retinaface)")
    p.add_argument("--aligner", help="with --crop detect: the aligner (default: similarity)")
    p.add_argument("--full-decode", action="store_true", help="decode JPEGs at full size (slower; for comparison)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    p.add_argument("--engine", choices=ENGINES, default="local", help="local processes or a Ray cluster")
    p.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)")
    p.add_argument("--shard-size", type=int, default=128, help="images per unit of work and of resumption")
    p.add_argument("--no-report", action="store_true", help="skip report.md and its charts")
    p.set_defaults(run=_prepare)

    r = dsub.add_parser("report", help="(re)write report.md and its charts for a prepared folder")
    r.add_argument("folder", type=Path, help="a folder written by `maeum data prepare`")
    r.set_defaults(run=_report)


def _prepare(args: argparse.Namespace) -> int:
    from maeum.data.prepare import PrepareConfig, prepare

    output_folder(args.out)
    try:
        fractions = tuple(float(v) for v in args.split.split(","))
    except ValueError:
        raise MaeumError(f"--split {args.split!r}: give three fractions such as 0.8,0.1,0.1") from None
    if len(fractions) != 3 or not all(0 <= f <= 1 for f in fractions) or abs(sum(fractions) - 1) > 1e-3:
        raise MaeumError(f"--split {args.split!r}: give three non-negative fractions summing to 1")
    given = [name for name, value in (("--detector", args.detector), ("--aligner", args.aligner)) if value is not None]
    if given and args.crop != "detect":
        verb, it = ("applies", "it") if len(given) == 1 else ("apply", "them")
        raise MaeumError(f"{' and '.join(given)} {verb} to --crop detect only; add --crop detect or leave {it} out")
    cfg = PrepareConfig(
        kind=args.kind,
        source=args.source,
        out=args.out,
        policy=args.policy,
        tiebreak=tuple(s.strip() for s in args.tiebreak.split(",") if s.strip()),
        crop=args.crop,
        size=args.size,
        color=args.color,
        margin=args.margin,
        image_format=args.image_format,
        fractions=fractions,  # type: ignore[arg-type]
        resplit=args.resplit,
        seed=args.seed,
        cap=args.cap,
        detector=PrepareConfig.detector if args.detector is None else args.detector,
        aligner=PrepareConfig.aligner if args.aligner is None else args.aligner,
        reduced_decode=not args.full_decode,
        workers=args.workers,
        engine=args.engine,
        ray_address=args.ray_address,
        shard_size=args.shard_size,
        report=not args.no_report,
    )
    summary = prepare(cfg)
    # Bad records are expected in real downloads and only logged; crops that could not be
    # written (a full disk) and zips that could not be read (a download cut short) leave the
    # run unfinished: the same command finishes it once they are fixed.
    unfinished = summary["errors"].get("write_failed") or summary["errors"].get("corrupt_archive")
    return EXIT_WITH_ERRORS if unfinished else EXIT_OK


def _report(args: argparse.Namespace) -> int:
    import json

    from maeum.data.prepare import SUMMARY_NAME
    from maeum.data.report import write_report

    summary_file = args.folder / SUMMARY_NAME
    summary = None
    if summary_file.is_file():
        try:
            summary = json.loads(summary_file.read_text(encoding="utf-8"))
            if not isinstance(summary, dict):
                raise ValueError(f"a JSON {type(summary).__name__}, not an object")
        except (OSError, ValueError) as e:  # ValueError: not JSON, not UTF-8
            log.warning("%s is unreadable (%s): the report leaves out the counts only it holds", summary_file, e)
            summary = None
    try:
        write_report(args.folder, summary)
    except OSError as e:
        raise OutputError(f"cannot write the report into {args.folder}: {e.strerror or e}") from None
    return EXIT_OK
