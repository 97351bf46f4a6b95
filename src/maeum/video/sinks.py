"""Outputs for video results: each writes as frames arrive and holds a bounded amount of data."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from maeum.errors import OutputError, VideoError
from maeum.filenames import is_utf8, printable
from maeum.fonts import INSTALL_HINT, hangul_font
from maeum.labels import display_name
from maeum.outpaths import open_text
from maeum.video.sources import Frame
from maeum.video.tracking import FrameResult, TrackedFace

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where frame results go: written one frame at a time, closed once (also after Ctrl-C)."""

    def write(self, frame: Frame, result: FrameResult) -> None: ...

    def close(self) -> None: ...


class CsvTimeline:
    """One row per face per analysed frame: time, track id, box, smoothed label and scores, raw label.

    With Korean labels a file starts with a UTF-8 byte order mark, so that Excel reads the Hangul.
    """

    def __init__(self, path: str | Path, labels: tuple[str, ...], lang: str = "en") -> None:
        self.out = open_text(path, str(path), VideoError, bom=lang == "ko")
        self.lang, self.labels = lang, labels
        self.csv = csv.writer(self.out)
        names = [display_name(label, lang) for label in labels]
        header = ["frame", "time", "face", "x", "y", "w", "h", "score", "label", "raw_label", "tracked"]
        self.csv.writerow([*header, *names])

    def write(self, frame: Frame, result: FrameResult) -> None:
        for f in result.faces:
            b = f.face.box
            self.csv.writerow(
                [
                    result.index,
                    round(result.time_s, 3),
                    f.track_id,
                    *(round(v) for v in (b.x, b.y, b.w, b.h)),
                    round(f.face.score, 4),
                    display_name(f.smoothed.label, self.lang),
                    display_name(f.emotion.label, self.lang),
                    int(f.tracked),
                    *(round(f.smoothed.scores[k], 4) for k in self.labels),
                ]
            )
        self.out.flush()  # an interrupted run keeps every row written so far

    def close(self) -> None:
        self.out.close()


class JsonlTimeline:
    """One JSON line per analysed frame (``FrameResult.to_dict``), frames without faces included."""

    def __init__(self, path: str | Path, lang: str = "en") -> None:
        self.out, self.lang = open_text(path, str(path), VideoError), lang

    def write(self, frame: Frame, result: FrameResult) -> None:
        self.out.write(json.dumps(result.to_dict(self.lang), ensure_ascii=False) + "\n")
        self.out.flush()

    def close(self) -> None:
        self.out.close()


# Output container -> FourCC that OpenCV's bundled FFmpeg encodes. Browsers play WebM (VP8) but
# not MPEG-4 Part 2 (mp4v); VP8 encodes several times slower (benchmarks/video.py prints both).
_FOURCC: dict[str, str] = {
    ".mp4": "mp4v",
    ".m4v": "mp4v",
    ".mov": "mp4v",
    ".mkv": "mp4v",
    ".avi": "MJPG",
    ".webm": "VP80",
}


def check_video_path(path: str | Path) -> str:
    """The FourCC to write ``path`` in, from its suffix; VideoError, naming the suffixes, for any other."""
    fourcc = _FOURCC.get(Path(path).suffix.lower())
    if fourcc is None:
        raise VideoError(f"{path}: cannot write this kind of video; use one of {', '.join(sorted(_FOURCC))}")
    return fourcc


def check_plot_path(path: str | Path) -> None:
    """VideoError unless matplotlib is installed and writes ``path``'s image format."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise VideoError(f"{path}: the timeline plot needs matplotlib: pip install 'maeum[plot]'") from None
    formats = FigureCanvasAgg(Figure()).get_supported_filetypes()
    if Path(path).suffix.lower().lstrip(".") not in formats:
        raise VideoError(f"{path}: plot format not supported; use one of .{', .'.join(sorted(formats))}")


# Box colours (BGR) by label; unknown labels are gray.
_COLOURS: dict[str, tuple[int, int, int]] = {
    "neutral": (200, 200, 200),
    "happiness": (0, 200, 255),
    "surprise": (255, 200, 0),
    "sadness": (255, 80, 0),
    "anger": (0, 0, 230),
    "disgust": (0, 160, 60),
    "fear": (200, 0, 200),
}


def draw_faces(bgr: np.ndarray, faces: Iterable[TrackedFace]) -> np.ndarray:
    """Draw each face's box, track id, smoothed label and score on a BGR image, in place.

    Labels are English: OpenCV's Hershey fonts have no Hangul glyphs.
    """
    for f in faces:
        b, e = f.face.box, f.smoothed
        colour = _COLOURS.get(e.label, (160, 160, 160))
        p1, p2 = (round(b.x), round(b.y)), (round(b.x + b.w), round(b.y + b.h))
        thick = max(1, round(b.w / 80))
        cv2.rectangle(bgr, p1, p2, colour, thick)
        text = f"#{f.track_id} {e.label} {e.scores[e.label]:.2f}"
        scale = max(0.4, min(0.8, b.w / 200))
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x = max(0, min(p1[0], bgr.shape[1] - tw))  # keep the label inside the frame
        y = max(th + base, p1[1] - 4)
        cv2.rectangle(bgr, (x, y - th - base), (x + tw, y + base - 2), colour, -1)
        cv2.putText(bgr, text, (x, y - 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return bgr


class AnnotatedVideo:
    """The frames with boxes, ids, labels and scores drawn, at ``fps`` frames/s.

    Frames are placed by their timestamps (repeated across gaps of up to ``max_gap_s``), so
    variable-frame-rate input and slow live capture keep their real timing in the output.
    """

    def __init__(self, path: str | Path, fps: float, max_gap_s: float = 2.0) -> None:
        self.path = Path(path)
        fourcc = check_video_path(path)
        if not self.path.parent.is_dir():
            raise VideoError(f"{path}: folder {self.path.parent} does not exist")
        if not is_utf8(self.path):  # OpenCV would crash on it
            raise VideoError(f"{printable(str(path))}: the file name is not valid UTF-8, which OpenCV cannot write")
        self.fourcc, self.fps, self.max_gap = fourcc, fps, round(max_gap_s * fps)
        self._writer: cv2.VideoWriter | None = None
        self._size: tuple[int, int] = (0, 0)
        self._t0 = 0.0
        self.written = 0

    def write(self, frame: Frame, result: FrameResult) -> None:
        if self._writer is None:
            self._open(frame)
        bgr = draw_faces(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR), result.faces)
        if (bgr.shape[1], bgr.shape[0]) != self._size:  # a stream that changes size mid-way
            bgr = cv2.resize(bgr, self._size)
        slot = round((frame.time_s - self._t0) * self.fps)  # where this frame belongs in the output
        if slot - self.written > self.max_gap:  # a long gap (a stalled stream): skip it, do not fill it
            self._t0, slot = frame.time_s - self.written / self.fps, self.written
        repeats = max(0, slot - self.written + 1)  # 0: a frame faster than the output rate is dropped
        assert self._writer is not None
        for _ in range(repeats):
            self._writer.write(bgr)
        self.written += repeats

    def _open(self, frame: Frame) -> None:
        h, w = frame.image.shape[:2]
        self._size, self._t0 = (w, h), frame.time_s
        fourcc = cv2.VideoWriter_fourcc(*self.fourcc)
        if (
            self.fourcc == "VP80"
        ):  # FFmpeg's WebM has no codec tags: OpenCV prints that "VP80" is unsupported, then writes VP8
            with _stderr_silenced():
                self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
        else:
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
        if not self._writer.isOpened():
            raise VideoError(f"{self.path}: OpenCV cannot write {self.fourcc} video here")

    def close(self) -> None:
        """Finish the file (the container index is written here, so always close, even on Ctrl-C)."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """The process's standard error (file descriptor 2, where OpenCV's C++ code prints) goes nowhere meanwhile."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class LiveWindow:
    """Shows the annotated frames in a window; ``stop_requested`` turns True on q or Esc."""

    def __init__(self, title: str = "maeum") -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise VideoError("no display (DISPLAY is not set)")
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise VideoError("this OpenCV has no GUI (opencv-python-headless); pip install opencv-python") from None
        self.title, self.stop_requested = title, False

    def write(self, frame: Frame, result: FrameResult) -> None:
        cv2.imshow(self.title, draw_faces(cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR), result.faces))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.stop_requested = True

    def close(self) -> None:
        cv2.destroyWindow(self.title)


class TimelinePlot:
    """An emotion-over-time chart per face, drawn on ``close()`` with matplotlib (the ``plot`` extra).

    Holds per-track averages of the smoothed scores in time bins that double in width whenever a
    track has more than ``max_bins``, so memory stays bounded however long the video.
    """

    def __init__(
        self, path: str | Path, labels: tuple[str, ...], lang: str = "en", max_tracks: int = 6, max_bins: int = 1000
    ) -> None:
        self.path, self.labels, self.lang = Path(path), labels, lang
        check_plot_path(path)  # now, not after a two-hour run: matplotlib, the image format and the folder
        if not self.path.parent.is_dir():
            raise VideoError(f"{path}: folder {self.path.parent} does not exist")
        self.max_tracks, self.max_bins = max_tracks, max_bins
        self.bin_s = 1.0
        self.bins: dict[int, dict[int, np.ndarray]] = {}  # track -> bin -> (K + 1,) score sums and count

    def write(self, frame: Frame, result: FrameResult) -> None:
        for f in result.faces:
            track = self.bins.setdefault(f.track_id, {})
            acc = track.setdefault(int(result.time_s // self.bin_s), np.zeros(len(self.labels) + 1))
            acc[:-1] += [f.smoothed.scores[k] for k in self.labels]
            acc[-1] += 1
            if len(track) > self.max_bins:
                self._coarsen()

    def _coarsen(self) -> None:
        self.bin_s *= 2
        for tid, track in self.bins.items():
            merged: dict[int, np.ndarray] = {}
            for b, acc in track.items():
                merged[b // 2] = merged.get(b // 2, 0) + acc
            self.bins[tid] = merged

    def close(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        font, names = self._font()
        tracks = sorted(self.bins, key=lambda t: -sum(a[-1] for a in self.bins[t].values()))[: self.max_tracks]
        fig = Figure(figsize=(10, 1.2 + 2.2 * max(1, len(tracks))))
        FigureCanvasAgg(fig)
        axes = fig.subplots(max(1, len(tracks)), 1, sharex=True, squeeze=False)[:, 0]
        for ax, tid in zip(axes, sorted(tracks), strict=False):
            items = sorted(self.bins[tid].items())
            t = np.array([(b + 0.5) * self.bin_s for b, _ in items])
            mean = np.array([acc[:-1] / acc[-1] for _, acc in items])  # (T, K)
            for k, name in enumerate(names):
                colour = np.array(_COLOURS.get(self.labels[k], (160, 160, 160))[::-1]) / 255
                ax.plot(t, mean[:, k], label=name, color=colour, lw=1.5, marker="." if len(t) < 30 else None)
            ax.set_ylim(0, 1)
            ax.set_ylabel(f"face #{tid}")
        if not tracks:
            axes[0].text(0.5, 0.5, "no face found", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=len(names), prop=font, frameon=False)
        axes[-1].set_xlabel(f"time (s), {self.bin_s:g}-s averages of smoothed scores")
        fig.tight_layout()
        try:
            fig.savefig(self.path, dpi=100)
        except OSError as e:
            raise OutputError(f"cannot write {self.path}: {e.strerror or e}") from None

    def _font(self) -> tuple[object, list[str]]:
        """Font properties and label names; English when Korean is asked for but no Hangul font exists."""
        from matplotlib import font_manager

        if self.lang == "ko":
            hangul = hangul_font()
            if hangul is not None:
                names = [display_name(k, "ko") if hangul.draws(display_name(k, "ko")) else k for k in self.labels]
                return hangul.sized(8), names
            log.warning("no Hangul font for the plot (e.g. %s); plot labels in English", INSTALL_HINT)
        return font_manager.FontProperties(size=8), list(self.labels)
