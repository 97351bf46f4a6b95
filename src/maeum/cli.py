"""The ``maeum`` command: one entry point, one subcommand per job.

Each subcommand turns its options into library calls; the library never reads argv.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from maeum.app_cli import add_app_parser
from maeum.data.engine import ENGINES
from maeum.data_cli import add_data_parser
from maeum.detect import parse_options
from maeum.ensemble_cli import add_ensemble_parser
from maeum.errors import ImageError, MaeumError, OutputError
from maeum.evaluate_cli import add_card_parser, add_evaluate_parser
from maeum.filenames import printable
from maeum.imageio import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, OTHER_PHOTO_SUFFIXES, load_image
from maeum.inputs import expand_paths
from maeum.labels import LANGUAGES, display_name
from maeum.outpaths import TextOutput, open_text, output_file, refuse_overwriting
from maeum.progress import Progress, clear_line
from maeum.results import FaceResult
from maeum.serve_cli import add_serve_parser
from maeum.train_cli import add_train_parser
from maeum.video_cli import add_video_parser, positive_int

log = logging.getLogger("maeum")

# 1: some inputs failed, the others have their results; 2: the command itself is wrong (nothing
# was done); 3: an output could not be written (a full disk, an I/O error).
EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_WRITE_FAILED = 0, 1, 2, 3
BATCH_IMAGES, BATCH_PIXELS = 32, 64_000_000
FORMATS = ("json", "jsonl", "csv", "table")
SUFFIX_FORMATS = {".json": "json", ".jsonl": "jsonl", ".csv": "csv"}  # from -o's suffix when no --format


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handler = _BelowTheBar(sys.stderr)
    handler.setFormatter(_PrintableFormatter("maeum: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if args.command != "analyze" else logging.WARNING,
        handlers=[handler],
        force=True,
    )
    try:
        return int(args.run(args))
    except OutputError as e:  # a full disk, an I/O error: what was asked for is incomplete
        log.error("%s", e)
        try:
            sys.stdout.flush()
        except OSError:  # stdout itself failed: drop what it still holds, or Python complains at exit
            _discard_stdout()
        return EXIT_WRITE_FAILED
    except MaeumError as e:
        log.error("%s", e)
        return EXIT_USAGE
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except BrokenPipeError:
        # The reader closed the pipe (e.g. `| head`): stop quietly, and keep Python from
        # complaining again when it flushes stdout at exit.
        _discard_stdout()
        return 141


def _discard_stdout() -> None:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


class _BelowTheBar(logging.StreamHandler):  # type: ignore[type-arg]
    """Log lines on stderr that first erase a progress bar drawn there, instead of running on from its end."""

    def emit(self, record: logging.LogRecord) -> None:
        clear_line()
        super().emit(record)


class _PrintableFormatter(logging.Formatter):
    """Messages with non-UTF-8 file names escaped (``\\xbe``), as in the results."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


_VERBOSE_HELP = "log more detail to stderr"


class _SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser, which takes ``-v`` too: ``maeum analyze -v`` as well as ``maeum -v analyze``.

    Its ``-v`` defaults to SUPPRESS, so a subcommand given without it keeps what ``maeum -v`` set.
    argparse builds a subcommand's own subcommands (``maeum data prepare``) with its parser's class,
    so they take ``-v`` as well.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)

    def parse_known_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        self._argv = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        """argparse's error, with a hint where it took a negative value for an option: ``--weights -1,2``."""
        missing = re.fullmatch(r"argument (\S+): expected one argument", message)
        argv = getattr(self, "_argv", [])
        if missing:
            names = missing[1].split("/")
            for token, value in itertools.pairwise(argv):
                if token in names and re.match(r"-[\d.]", value):
                    long_name = max(names, key=len)
                    message += f" (a value starting with '-' is written {long_name}={value})"
                    break
        super().error(message)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="maeum", description="Facial emotion recognition, offline.")
    parser.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_SubcommandParser)

    a = sub.add_parser("analyze", help="emotions of the faces in images, folders and globs")
    a.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively) or globs")
    a.add_argument(
        "--format",
        choices=FORMATS,
        default=None,
        help="output format (default: the -o file's suffix, .json, .jsonl or .csv; else json)",
    )
    # --detector and --aligner default to None, so that --no-detect can tell whether they were given.
    a.add_argument("--detector", default=None, help="face detector name (see `maeum models`; default: retinaface)")
    a.add_argument(
        "--detector-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="detector option, e.g. score_threshold=0.8 or model_path=yunet.onnx (repeatable)",
    )
    a.add_argument("--model", default=None, help="emotion model name or .onnx path (default: the bundled model)")
    a.add_argument("--aligner", default=None, help="face aligner: similarity (levels the eyes; the default) or upright")
    a.add_argument(
        "--no-detect", action="store_true", help="images are pre-cropped faces: classify each one's centred square"
    )
    a.add_argument(
        "--whole-image-if-no-face",
        action="store_true",
        help="when no face is found, classify the image's centred square as one face",
    )
    a.add_argument("--lang", choices=LANGUAGES, default="en", help="label names: en or ko (한국어)")
    a.add_argument("--output", "-o", type=Path, help="write results to this file instead of stdout ('-': stdout)")
    a.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for inference (default: cores, max 4; 1 per worker with --workers or --engine ray)",
    )
    a.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes, each with its own model, the images shared out among them 16 at a time; "
        "at most one per 16 images (default 1: this process)",
    )
    a.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: --workers processes here; ray: tasks on a Ray cluster (pip install 'maeum[ray]')",
    )
    a.add_argument("--ray-address", help="Ray cluster address (default: RAY_ADDRESS, else a local cluster)")
    a.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help=f"refuse images with more pixels (default {DEFAULT_MAX_PIXELS:,})",
    )
    a.set_defaults(run=_analyze)

    add_video_parser(sub)
    add_data_parser(sub)
    add_app_parser(sub)
    add_serve_parser(sub)

    m = sub.add_parser("models", help="list face detectors and emotion models")
    m.add_argument(
        "--train", action="store_true", help="list the architectures `maeum train --model` builds (train extra)"
    )
    m.set_defaults(run=_models)

    add_train_parser(sub)

    e = sub.add_parser("export", help="export a trained checkpoint to ONNX with maeum metadata")
    e.add_argument(
        "checkpoint",
        help="best.pt from `maeum train`; or an exported .onnx file or bundled model, read back and exported "
        "again (with --data: its training data)",
    )
    e.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    e.add_argument(
        "--name",
        help="model name stored in the metadata (default: the run folder's name: aihub-48 for runs/aihub-48/best.pt)",
    )
    e.add_argument(
        "--template-samples",
        type=positive_int,
        default=1500,
        help="training crops used to measure the alignment template (default 1500)",
    )
    e.add_argument(
        "--data",
        type=Path,
        help="the run's data on this machine, when the checkpoint was trained elsewhere "
        "(default: the path it trained on); required to export an ONNX model again",
    )
    e.add_argument(
        "--tta",
        nargs="?",
        const="graph",
        choices=("graph", "gated"),
        help="flip test-time augmentation: `--tta` builds into the graph the mean over each face and its mirror "
        "(2x compute); `--tta gated` adds the mirror pass only for faces whose top probability is below a "
        "threshold, the lowest that scores on the validation split as mirroring every face",
    )
    e.add_argument(
        "--int8", action="store_true", help="quantize to int8, calibrated on the run's training crops (faster on CPUs)"
    )
    e.set_defaults(run=_export)

    add_evaluate_parser(sub)
    add_card_parser(sub)
    add_ensemble_parser(sub)
    return parser


def _analyze(args: argparse.Namespace) -> int:
    _check_no_detect(args)
    # Pillow logs some decoding errors itself, without the file's name, before load_image raises the
    # error that names it; with -v, its debug lines (a line per PNG chunk) would bury maeum's own.
    logging.getLogger("PIL").setLevel(logging.CRITICAL + 1)
    from maeum.analyzer import DEFAULT_ALIGNER, DEFAULT_DETECTOR, Analyzer
    from maeum.batch import CHUNK_IMAGES
    from maeum.classify import DEFAULT_MODEL

    to_file = args.output is not None and str(args.output) != "-"
    if args.format is None:  # `-o results.csv` writes CSV, not JSON in a file named .csv
        args.format = SUFFIX_FORMATS.get(args.output.suffix.lower(), "json") if to_file else "json"
    inputs = list(expand_paths(args.paths, IMAGE_SUFFIXES | OTHER_PHOTO_SUFFIXES))
    if to_file:  # before any work: a folder, or one of the images, is not overwritten
        output_file(args.output, "-o")
        refuse_overwriting([("-o", args.output)], [p for _, p, _ in inputs if p is not None])
    analyzer = Analyzer(
        None if args.no_detect else args.detector or DEFAULT_DETECTOR,
        args.model or DEFAULT_MODEL,
        detector_options=parse_options(args.detector_option),
        aligner=args.aligner or DEFAULT_ALIGNER,
        threads=args.threads,
        whole_image_fallback=args.whole_image_if_no_face,
    )
    target = open_text(
        args.output if to_file else "-", f"-o {args.output}", bom=args.format == "csv" and args.lang == "ko"
    )
    writer = _Writer(target, args.format, args.lang, analyzer.classifier.labels)
    # Images that fit one worker's chunk are analysed here: a worker process would load the models again.
    parallel = args.engine == "ray" or (args.workers > 1 and len(inputs) > CHUNK_IMAGES)
    progress = Progress(len(inputs) if parallel else sum(1 for _, p, _ in inputs if p is not None), "images")
    if not to_file and sys.stdout.isatty():  # the results on the terminal show the progress; a bar would cut them
        progress.enabled = False
    failed = done = read = 0
    batch: list[tuple[str, np.ndarray | None, str]] = []  # (path, image, error), in input order

    def answer(path: str, results: list[FaceResult]) -> None:
        nonlocal done
        if not results:
            log.warning(
                "%s: no face found (use --whole-image-if-no-face to classify the image's centred square, "
                "or --no-detect for pre-cropped faces)",
                path,
            )
        writer.write(path, results)
        done += 1

    def flush() -> None:
        analysed = iter(analyzer.analyze_batch([im for _, im, _ in batch if im is not None]))
        for path, image, error in batch:
            if image is None:
                writer.error(path, error)
            else:
                answer(path, next(analysed))
        batch.clear()

    try:
        for name, results in _shared_out(args, inputs) if parallel else ():
            if isinstance(results, str):
                log.error("%s", results)
                writer.error(name, results)
                failed += 1
            else:
                answer(name, results)
            read += 1
            progress.update(read, read)
        for arg, path, error in () if parallel else inputs:
            if path is None:  # a missing file, an empty folder, a glob that matches nothing
                log.error("%s", error)
                batch.append((arg, None, error))
                failed += 1
                continue
            try:
                batch.append((str(path), load_image(path, max_pixels=args.max_pixels), ""))
            except ImageError as e:
                log.error("%s", e)
                batch.append((str(path), None, str(e)))
                failed += 1
            read += 1
            progress.update(read, read)
            # Classify faces in batches, but hold at most BATCH_IMAGES images / BATCH_PIXELS pixels.
            pixels = sum(im.shape[0] * im.shape[1] for _, im, _ in batch if im is not None)
            if len(batch) >= BATCH_IMAGES or pixels >= BATCH_PIXELS:
                flush()
        flush()
        writer.close()
    finally:
        progress.close()
        if to_file and not target.file.closed:  # after a failure: the file is incomplete either way
            with contextlib.suppress(OSError):
                target.file.close()
    if failed:
        log.error("%d input(s) failed, %d analysed", failed, done)
        return EXIT_SOME_FAILED
    return EXIT_OK


def _shared_out(
    args: argparse.Namespace, inputs: list[tuple[str, Path | None, str]]
) -> Iterator[tuple[str, list[FaceResult] | str]]:
    """The inputs' answers from --workers processes or a Ray cluster, in input order."""
    from maeum.analyzer import DEFAULT_ALIGNER, DEFAULT_DETECTOR
    from maeum.batch import AnalyzerSpec, analyze_files
    from maeum.classify import DEFAULT_MODEL

    model = args.model or DEFAULT_MODEL
    if Path(model).suffix == ".onnx":  # the workers' own folder may differ (on a cluster, the file must be there too)
        model = str(Path(model).resolve())
    spec = AnalyzerSpec(
        detector=None if args.no_detect else args.detector or DEFAULT_DETECTOR,
        model=model,
        aligner=args.aligner or DEFAULT_ALIGNER,
        detector_options=tuple(parse_options(args.detector_option).items()),
        threads=args.threads or 1,
        whole_image_fallback=args.whole_image_if_no_face,
        max_pixels=args.max_pixels,
    )
    return analyze_files(spec, inputs, engine=args.engine, workers=args.workers, ray_address=args.ray_address)


def _check_no_detect(args: argparse.Namespace) -> None:
    """Refuse the options --no-detect makes meaningless, rather than ignore them (``--detector nope`` too)."""
    if not args.no_detect:
        return
    given = [
        flag
        for flag, value in (
            ("--detector", args.detector is not None),
            ("--detector-option", bool(args.detector_option)),
            ("--aligner", args.aligner is not None),
            ("--whole-image-if-no-face", args.whole_image_if_no_face),
        )
        if value
    ]
    if given:
        named = given[0] if len(given) == 1 else f"{', '.join(given[:-1])} and {given[-1]}"
        raise MaeumError(
            f"--no-detect classifies each image's centred square, without detecting or aligning faces: "
            f"{named} {'does' if len(given) == 1 else 'do'} not apply; drop {'it' if len(given) == 1 else 'them'} "
            "or --no-detect"
        )


_NO_FACE = {"en": "no face", "ko": "얼굴 없음"}  # the table's line for an image without faces, per language


class _Writer:
    """Streams results in one of FORMATS (json is written whole at the end).

    File names that are not UTF-8 are written with ``\\xNN`` escapes (``printable``); a write
    that fails raises OutputError.
    """

    def __init__(self, out: TextOutput, fmt: str, lang: str, labels: tuple[str, ...]) -> None:
        self.out, self.fmt, self.lang = out, fmt, lang
        self.json: dict[str, list[dict[str, object]]] = {}
        self.names = [display_name(label, lang) for label in labels]
        if fmt == "csv":
            self.csv = csv.writer(self.out)
            self.csv.writerow(["path", "face", "x", "y", "w", "h", "score", "label", *self.names])

    def write(self, path: str, results: list[FaceResult]) -> None:
        path = printable(path)
        faces = [r.to_dict(self.lang) for r in results]
        if self.fmt == "json":
            self.json[path] = faces
        elif self.fmt == "jsonl":
            self.out.write(json.dumps({"path": path, "faces": faces}, ensure_ascii=False) + "\n")
        elif self.fmt == "csv":
            for i, f in enumerate(faces):
                probs = f["probs"]
                assert isinstance(probs, dict)
                self.csv.writerow([path, i, *f["rect"], f["score"], f["label"], *(probs[n] for n in self.names)])  # type: ignore[misc]
        else:
            if not faces:
                self.out.write(f"{path}: {_NO_FACE[self.lang]}\n")
            for i, f in enumerate(faces):
                probs = f["probs"]
                assert isinstance(probs, dict)
                top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(probs.items(), key=lambda kv: -kv[1])[:3])
                self.out.write(f"{path} #{i} rect={f['rect']} → {f['label']} ({top})\n")
        self.out.flush()

    def error(self, path: str, message: str) -> None:
        if self.fmt == "jsonl":
            line = {"path": printable(path), "error": printable(message)}
            self.out.write(json.dumps(line, ensure_ascii=False) + "\n")
            self.out.flush()

    def close(self) -> None:
        if self.fmt == "json":  # one image per line: readable, and still one JSON document
            items = [
                f"  {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
                for k, v in self.json.items()
            ]
            self.out.write("{\n" + ",\n".join(items) + ("\n}\n" if items else "}\n"))
        self.out.close()


def _export(args: argparse.Namespace) -> int:
    from maeum.classify import BUNDLED_MODELS
    from maeum.training.recipe import export_checkpoint, reexport_onnx

    output_file(args.out)
    source = args.checkpoint
    if source in BUNDLED_MODELS or source.lower().endswith(".onnx"):
        if source not in BUNDLED_MODELS and not Path(source).is_file():
            raise MaeumError(f"{source}: no such ONNX file")
        if args.data is None:
            raise MaeumError(f"exporting {source} again needs --data: the data it was trained on (FER+: its folder)")
        reexport_onnx(source, args.out, args.data, args.name, tta=args.tta, int8=args.int8)
        return EXIT_OK
    checkpoint = Path(source)
    if checkpoint.is_dir() and (checkpoint / "best.pt").is_file():  # a run folder: its best checkpoint
        checkpoint = checkpoint / "best.pt"
    elif checkpoint.is_dir():
        raise MaeumError(f"{checkpoint} is a folder without best.pt; name a run folder or its best.pt")
    elif not checkpoint.is_file():
        raise MaeumError(f"{checkpoint}: no such checkpoint; train first with `maeum train`")
    refuse_overwriting([("--out", args.out)], [checkpoint])  # the ONNX file would replace the checkpoint
    name = args.name or checkpoint.resolve().parent.name or "model"
    export_checkpoint(
        checkpoint, args.out, name, args.template_samples, tta=args.tta, int8=args.int8, data_path=args.data
    )
    return EXIT_OK


def _models(args: argparse.Namespace) -> int:
    from maeum.align import list_aligners
    from maeum.classify import DEFAULT_MODEL, EmotionClassifier, list_models
    from maeum.detect import list_detectors

    out = sys.stdout
    if args.train:
        try:
            from maeum.training import nets, zoo
        except ImportError as e:
            raise MaeumError(
                f'listing the training architectures needs the train extra: pip install "maeum[train]" ({e})'
            ) from None
        for name in nets.list_models():
            out.write(f"{name} ({zoo.model_family(name)})\n")
        out.write(f"{nets.TIMM_PREFIX}NAME: any other timm model, e.g. {nets.TIMM_PREFIX}mobilenetv3_small_100\n")
        return EXIT_OK
    out.write("detectors: " + ", ".join(list_detectors()) + " (default: retinaface)\n")
    out.write("aligners: " + ", ".join(list_aligners()) + " (default: similarity)\n")
    for name in list_models():
        info = EmotionClassifier(name).info
        mark = " (default)" if name == DEFAULT_MODEL else ""
        spec = info.input
        form = ", each face averaged with its mirror" if info.mirrored else ""
        if info.flip_below is not None:
            form += f", faces under {info.flip_below:g} top probability averaged with their mirror"
        form += ", int8" if info.extra.get("quantization") else ""
        out.write(
            f"model {name}{mark}: {spec.size}x{spec.size} {spec.color}{form}, labels "
            f"{', '.join(info.labels)} / {', '.join(display_name(x, 'ko') for x in info.labels)}\n"
        )
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
