"""``maeum video``: emotions of the faces in a video file, stream or camera, over time.

Options become a FrameSource, a VideoAnalyzer and a list of sinks from ``maeum.video``; the
loop here only moves frames between them, draws progress and keeps outputs valid on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from maeum.errors import ConfigError, OutputError
from maeum.filenames import printable
from maeum.labels import LANGUAGES
from maeum.outpaths import refuse_overwriting, writable_file
from maeum.progress import Progress

if TYPE_CHECKING:  # maeum.video imports OpenCV: only when the subcommand runs
    from maeum.video import Sink

log = logging.getLogger("maeum")

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130  # usage errors (2) are cli.main's


def add_video_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``video`` subcommand on the ``maeum`` parser's subparsers."""
    v = sub.add_parser(
        "video",
        help="emotions over time in a video file, stream URL or camera",
        description="Track faces through a video and classify their emotions, smoothed over time. "
        "Without --out/--csv/--jsonl/--plot the timeline is written to stdout as JSON lines.",
    )
    src = v.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "input",
        nargs="?",
        metavar="INPUT",
        help="video file (mp4, avi, mov, webm, animated GIF ...) or stream URL (rtsp://, http:// ...)",
    )
    src.add_argument("--camera", type=natural, metavar="N", help="read camera N (0 is the first) instead")
    v.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write the annotated video (.mp4, .m4v, .mov, .mkv, .avi; .webm plays in web browsers, encodes slower)",
    )
    v.add_argument("--csv", metavar="FILE", help="timeline, one row per face per frame ('-': stdout)")
    v.add_argument("--jsonl", metavar="FILE", help="timeline, one JSON line per frame ('-': stdout)")
    v.add_argument(
        "--plot", type=Path, metavar="FILE", help="emotion-over-time chart per face (.png; needs matplotlib)"
    )
    v.add_argument("--every", type=positive_int, default=1, metavar="N", help="analyse every Nth frame (default 1)")
    v.add_argument("--fps", type=positive_float, metavar="F", help="analyse at most F frames per second of video")
    v.add_argument(
        "--detect-every",
        type=positive_int,
        default=3,
        metavar="N",
        help="run the detector on every Nth analysed frame, track faces in between (default 3; 1: detect every frame)",
    )
    v.add_argument(
        "--smoothing",
        type=positive_int,
        default=5,
        metavar="N",
        help="average each face's scores over its last N analysed frames (default 5; 1: no smoothing)",
    )
    v.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="stream URLs: seconds to wait for the connection, and later for each frame (default 10)",
    )
    v.add_argument("--lang", choices=LANGUAGES, default="en", help="label names in the timeline and plot: en or ko")
    v.add_argument(
        "--show",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="live window (needs a display and opencv-python); default: on for --camera when possible",
    )
    v.add_argument("--detector", default="retinaface", help="face detector name (see `maeum models`)")
    v.add_argument(
        "--detector-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="detector option, e.g. score_threshold=0.8 or model_path=yunet.onnx (repeatable)",
    )
    v.add_argument("--aligner", default="similarity", help="face aligner: similarity (levels the eyes) or upright")
    v.add_argument("--model", default=None, help="emotion model name or .onnx path (default: the bundled model)")
    v.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="CPU threads for inference (default: cores, max 4)",
    )
    v.set_defaults(run=run_video)


def run_video(args: argparse.Namespace) -> int:
    """Analyse the video; exit 0, 1 when the input failed or ended early, 130 on Ctrl-C."""
    from maeum.analyzer import Analyzer
    from maeum.classify import DEFAULT_MODEL
    from maeum.detect import parse_options
    from maeum.video import LiveWindow, VideoAnalyzer, VideoError, open_camera, open_video

    if not getattr(args, "verbose", False):
        _quiet_opencv()
    _check_outputs(args)
    try:
        if args.camera is not None:
            source = open_camera(args.camera, every=args.every, sample_fps=args.fps)
        else:
            source = open_video(args.input, every=args.every, sample_fps=args.fps, timeout_s=args.timeout)
    except VideoError as e:
        log.error("%s", e)
        return EXIT_FAILED
    with source:
        analyzer = Analyzer(
            args.detector,
            args.model or DEFAULT_MODEL,
            detector_options=parse_options(args.detector_option),
            aligner=args.aligner,
            threads=args.threads,
        )
        video = VideoAnalyzer(analyzer, detect_every=args.detect_every, smoothing=args.smoothing)
        sinks = _sinks(args, source.output_fps, video.labels)
        progress = Progress(source.duration_s, "frames", clock=True)
        if _timeline_on_terminal(sinks):  # the bar would break into the lines; they show the progress
            progress.enabled = False
        window = next((s for s in sinks if isinstance(s, LiveWindow)), None)
        frames = faces = 0
        code = EXIT_OK
        try:
            for frame, result in video.run_with_frames(source):
                with _interrupt_after():  # a frame reaches every output or none, and is counted
                    for sink in sinks:
                        sink.write(frame, result)
                    frames += 1
                    faces += len(result.faces)
                progress.update(result.time_s, frames)
                if window is not None and window.stop_requested:
                    log.info("stopped from the window")
                    break
        except VideoError as e:  # the input failed mid-way: keep what was written
            log.error("%s", e)
            code = EXIT_FAILED
        except KeyboardInterrupt:
            log.error("interrupted after %d frames; the outputs hold everything up to there", frames)
            code = EXIT_INTERRUPTED
        finally:
            progress.close()
            # A second Ctrl-C while the video's index or the plot is written would leave them
            # broken or missing: closing is not interrupted.
            with _interrupts_held() as held:
                _close_all(sinks)
        if held:
            log.error("interrupted; the outputs were finished first")
            code = EXIT_INTERRUPTED
    log.info("%d frames analysed, %d faces", frames, faces)
    return code


def _timeline_on_terminal(sinks: list[Sink]) -> bool:
    """Whether a timeline is written to stdout and stdout is a terminal."""
    from maeum.video import CsvTimeline, JsonlTimeline

    return sys.stdout.isatty() and any(
        isinstance(s, CsvTimeline | JsonlTimeline) and s.out.file is sys.stdout for s in sinks
    )


@contextlib.contextmanager
def _interrupts_held() -> Iterator[list[int]]:
    """Hold Ctrl-C until the block ends; yields the list of the signals held meanwhile.

    Only where Python's own handler is in place (the main thread, SIGINT not ignored).
    """
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield held
        return
    signal.signal(signal.SIGINT, lambda signum, _frame: held.append(signum))
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextlib.contextmanager
def _interrupt_after() -> Iterator[None]:
    """Hold Ctrl-C until the block ends, then raise it: the outputs never disagree on the last frame."""
    with _interrupts_held() as held:
        yield
    if held:
        raise KeyboardInterrupt


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, an output that would overwrite the input or another output, that
    cannot be written (a folder, a folder without write permission) or not in its format (a suffix)."""
    from maeum.video import VideoError
    from maeum.video.sinks import check_plot_path, check_video_path
    from maeum.video.sources import local_file

    if "-" in (args.csv, args.jsonl) and args.csv == args.jsonl:
        raise ConfigError("--csv - and --jsonl - cannot both write to stdout")
    outputs = [("--out", args.out), ("--csv", args.csv), ("--jsonl", args.jsonl), ("--plot", args.plot)]
    for flag, path, check in (("--out", args.out, check_video_path), ("--plot", args.plot, check_plot_path)):
        if path is not None:
            try:
                check(path)
            except VideoError as e:
                raise ConfigError(f"{flag} {e}") from None
    try:
        local_input = None if args.input is None else local_file(args.input)  # a file:// URL is a file too
    except VideoError:  # a file:// URL of another host: open_video says so
        local_input = None
    refuse_overwriting(outputs, [local_input] if local_input is not None else [])
    for flag, path in outputs:
        if path is not None and str(path) != "-":
            writable_file(path, flag)


def _close_all(sinks: list[Sink]) -> None:
    """Close every sink, even after one fails to (a full disk); then raise the first failure."""
    failure: OutputError | None = None
    for sink in sinks:
        try:
            sink.close()
        except OutputError as e:
            failure = failure or e
    if failure is not None:
        raise failure


def _sinks(args: argparse.Namespace, fps: float | None, labels: tuple[str, ...]) -> list[Sink]:
    """The outputs asked for, opened before the first frame so a bad path fails at once."""
    from maeum.video import AnnotatedVideo, CsvTimeline, JsonlTimeline, LiveWindow, TimelinePlot, VideoError

    sinks: list[Sink] = []
    try:
        if args.out:
            sinks.append(AnnotatedVideo(args.out, fps or 30.0))
        if args.plot:
            sinks.append(TimelinePlot(args.plot, labels, args.lang))
        # The text files last: opening one truncates it, so it must not happen before a failure above.
        if args.csv:
            sinks.append(CsvTimeline(args.csv, labels, args.lang))
        if args.jsonl:
            sinks.append(JsonlTimeline(args.jsonl, args.lang))
    except VideoError:
        _close_all(sinks)
        raise
    # Asked for: a window or a warning. By default a camera gets one when it can, silently otherwise.
    if args.show or (args.show is None and args.camera is not None):
        try:
            name = printable(args.input) if args.camera is None else f"camera {args.camera}"
            sinks.append(LiveWindow(f"maeum: {name}"))
        except VideoError as e:
            (log.warning if args.show else log.info)("no live window: %s; running headless", e)
    if not sinks:
        sinks.append(JsonlTimeline("-", args.lang))
    return sinks


def _quiet_opencv() -> None:
    """Leave error reporting to maeum's one-line messages: OpenCV and FFmpeg print their own otherwise."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; read when FFmpeg is first used


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    value = _whole(text, "1 or more")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def natural(text: str) -> int:
    """An argparse type: a whole number of 0 or more."""
    value = _whole(text, "0 or more")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return value


def _whole(text: str, must: str) -> int:
    # argparse would otherwise report "invalid positive_int value", naming this module's function
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of {must}, got {text!r}") from None
