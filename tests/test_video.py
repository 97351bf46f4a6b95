"""maeum.video and ``maeum video`` on clips made from real face photos (no network, no ffmpeg binary).

Clips are written with OpenCV; rotation metadata and a variable frame rate are set by editing the
MP4 boxes (``tkhd`` matrix, ``stts`` table) the way phones and screen recorders write them.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import ASTRONAUT_FACE, HOPPER_FACE, unprivileged
from maeum.analyzer import Analyzer
from maeum.cli import main
from maeum.labels import FERPLUS7, display_name
from maeum.results import Box, Emotion, Face
from maeum.video import (
    Frame,
    FrameResult,
    TimelinePlot,
    TrackedFace,
    VideoAnalyzer,
    VideoError,
    frames_from_arrays,
    open_camera,
    open_video,
)
from maeum.video.sources import _CaptureSource

REPO = Path(__file__).resolve().parents[1]

# --------------------------------------------------------------------------------------------
# Clips


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    fourcc = "MJPG" if path.suffix == ".avi" else "mp4v"
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _mp4_boxes(data: bytes, start: int, end: int, parents: tuple[int, ...] = ()) -> Iterator[tuple[str, int, tuple]]:
    """(type, offset, offsets of the enclosing boxes) for the boxes on the path to the sample tables."""
    while start < end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        yield kind.decode(), start, parents
        if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
            yield from _mp4_boxes(data, start + 8, start + size, (*parents, start))
        start += size


def rotate_mp4(path: Path) -> None:
    """Give the video track a 90° display matrix, as a phone held upright writes it."""
    data = bytearray(path.read_bytes())
    for kind, off, _ in _mp4_boxes(data, 0, len(data)):
        if kind == "tkhd":
            matrix = off + 12 + (32 if data[off + 8] == 1 else 20) + 16  # after version, times, ids, layer, volume
            data[matrix : matrix + 36] = struct.pack(">9i", 0, 1 << 16, 0, -(1 << 16), 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))


def retime_mp4(path: Path, runs: list[tuple[int, int]]) -> None:
    """Replace the sample durations (``stts``) by ``runs`` of (frames, ticks each): a variable frame rate.

    The moov box comes after the media data in OpenCV's files, so growing it moves no sample.
    """
    data = bytearray(path.read_bytes())
    _, off, parents = next(b for b in _mp4_boxes(data, 0, len(data)) if b[0] == "stts")
    old = struct.unpack(">I", data[off : off + 4])[0]
    new = struct.pack(">I4sII", 16 + 8 * len(runs), b"stts", 0, len(runs))
    new += b"".join(struct.pack(">II", n, d) for n, d in runs)
    for p in parents:
        data[p : p + 4] = struct.pack(">I", struct.unpack(">I", data[p : p + 4])[0] + len(new) - old)
    data[off : off + old] = new
    path.write_bytes(bytes(data))


def face_crop(image: np.ndarray, box: Box, size: tuple[int, int] = (200, 240)) -> np.ndarray:
    """The face with a margin, resized to ``size`` (w, h), so different photos share one face position."""
    cx, cy, half = box.x + box.w / 2, box.y + box.h / 2, max(box.w, box.h) * 0.9
    h, w = image.shape[:2]
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half * 1.1))
    x1, y1 = int(min(w, cx + half)), int(min(h, cy + half * 1.1))
    return cv2.resize(image[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)


def place(canvas_hw: tuple[int, int], *items: tuple[np.ndarray, int, int]) -> np.ndarray:
    canvas = np.full((*canvas_hw, 3), 90, np.uint8)
    for image, x, y in items:
        h, w = image.shape[:2]
        canvas[y : y + h, x : x + w] = image
    return canvas


@pytest.fixture(scope="module")
def faces(astronaut: np.ndarray, hopper: np.ndarray) -> dict[str, np.ndarray]:
    return {"astronaut": face_crop(astronaut, ASTRONAUT_FACE), "hopper": face_crop(hopper, HOPPER_FACE)}


@pytest.fixture(scope="module")
def one_face_frames(faces: dict[str, np.ndarray]) -> list[np.ndarray]:
    """30 frames, 640x360: the astronaut's face panning right 8 px a frame."""
    return [place((360, 640), (faces["astronaut"], 60 + 8 * k, 60)) for k in range(30)]


@pytest.fixture(scope="module")
def one_face_mp4(tmp_path_factory: pytest.TempPathFactory, one_face_frames: list[np.ndarray]) -> Path:
    return write_clip(tmp_path_factory.mktemp("clips") / "one_face.mp4", one_face_frames)


@pytest.fixture(scope="module")
def video_analyzer(analyzer: Analyzer) -> VideoAnalyzer:
    return VideoAnalyzer(analyzer, detect_every=3, smoothing=5)


def video_cli(*argv: str) -> int:
    """``maeum video ...`` through the real entry point."""
    return main(["video", *argv])


def frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    while cap.grab():
        n += 1
    cap.release()
    return n


# --------------------------------------------------------------------------------------------
# Tracking and smoothing


def test_one_face_keeps_one_id_and_flow_follows_it(
    video_analyzer: VideoAnalyzer, analyzer: Analyzer, one_face_mp4: Path
) -> None:
    with open_video(one_face_mp4) as source:
        assert (source.fps, source.frame_count) == (30.0, 30)
        results = list(video_analyzer.run_with_frames(source))
    assert len(results) == 30
    assert [len(r.faces) for _, r in results] == [1] * 30
    assert {r.faces[0].track_id for _, r in results} == {0}
    assert [r.detected for _, r in results] == [k % 3 == 0 for k in range(30)]
    for frame, r in results:
        face = r.faces[0]
        assert face.tracked is not r.detected
        assert face.emotion.label == "happiness" and face.smoothed.label == "happiness"
        assert tuple(face.smoothed.scores) == FERPLUS7
        # Between detections the box moved with the face (by optical flow): it matches a fresh detection
        # of that frame (IoU 0.93 or more; holding the last box gives 0.68 at 8 px a frame).
        assert face.face.box.iou(analyzer.detect(frame.image)[0].box) > 0.85


def test_two_faces_get_two_stable_ids(video_analyzer: VideoAnalyzer, faces: dict[str, np.ndarray]) -> None:
    frames = [
        place((360, 640), (faces["astronaut"], 20 + 3 * k, 60), (faces["hopper"], 400 - 3 * k, 80)) for k in range(20)
    ]
    results = list(video_analyzer.run(frames_from_arrays(frames, fps=25)))
    assert all(len(r.faces) == 2 for r in results)
    left = {min(r.faces, key=lambda f: f.face.box.x).track_id for r in results}
    right = {max(r.faces, key=lambda f: f.face.box.x).track_id for r in results}
    assert len(left) == len(right) == 1 and left != right


def test_a_lost_face_keeps_its_id_briefly_then_gets_a_new_one(analyzer: Analyzer, faces: dict[str, np.ndarray]) -> None:
    face = place((360, 480), (faces["astronaut"], 100, 60))
    empty = place((360, 480))
    # detect every 2 frames, tracks live through 1 missed detection: a 2-frame gap keeps the id, 8 frames do not
    frames = [face] * 4 + [empty] * 2 + [face] * 4 + [empty] * 8 + [face] * 4
    video = VideoAnalyzer(analyzer, detect_every=2, smoothing=3, max_missed=1)
    ids = [[f.track_id for f in r.faces] for r in video.run(frames_from_arrays(frames, fps=10))]
    assert ids[:4] == [[0]] * 4 and ids[4:6] == [[], []] and ids[6:10] == [[0]] * 4
    assert ids[10:18] == [[]] * 8 and ids[18:] == [[1]] * 4


def test_smoothing_reduces_label_changes(analyzer: Analyzer, faces: dict[str, np.ndarray]) -> None:
    # The same place shows the smiling astronaut, and every fourth frame Grace Hopper's calm face:
    # single-frame outliers like those a real classifier gives on blur or a blink.
    frames = [place((360, 480), (faces["hopper" if k % 4 == 3 else "astronaut"], 140, 60)) for k in range(40)]

    def changes(smoothing: int) -> tuple[int, set[int]]:
        video = VideoAnalyzer(analyzer, detect_every=1, smoothing=smoothing)
        results = list(video.run(frames_from_arrays(frames, fps=30)))
        labels = [r.faces[0].smoothed.label for r in results]
        ids = {f.track_id for r in results for f in r.faces}
        return sum(a != b for a, b in itertools.pairwise(labels)), ids

    raw, raw_ids = changes(1)
    smooth, smooth_ids = changes(5)
    assert raw >= 15  # the outliers flip the raw label twice each
    assert smooth <= 2 and smooth < raw / 5
    assert raw_ids == smooth_ids == {0}


# --------------------------------------------------------------------------------------------
# Sources: sampling, timing, rotation, arrays


def test_every_and_fps_sampling(one_face_mp4: Path) -> None:
    with open_video(one_face_mp4, every=3) as source:
        assert [f.index for f in source] == list(range(0, 30, 3))
        assert source.output_fps == pytest.approx(10)
    with open_video(one_face_mp4, sample_fps=7.5) as source:
        frames = list(source)
    assert [f.index for f in frames] == list(range(0, 30, 4))
    assert np.diff([f.time_s for f in frames]) == pytest.approx(4 / 30)
    assert all(f.image.shape == (360, 640, 3) and f.image.dtype == np.uint8 for f in frames)


def test_variable_frame_rate_keeps_real_timestamps(tmp_path: Path, one_face_frames: list[np.ndarray]) -> None:
    path = write_clip(tmp_path / "vfr.mp4", one_face_frames, fps=30)
    # OpenCV writes 1/15360 s ticks: 10 frames at 20 frames/s, then 20 at 40 frames/s (1 s in all).
    retime_mp4(path, [(10, 768), (20, 384)])
    with open_video(path) as source:
        times = [f.time_s for f in source]
    assert times == pytest.approx([k * 0.05 for k in range(10)] + [0.5 + k * 0.025 for k in range(20)])
    with open_video(path, sample_fps=20) as source:
        kept = [f.time_s for f in source]
    assert kept == pytest.approx([k * 0.05 for k in range(20)])  # the fast half is thinned by time, not by count
    # The annotated copy is constant-rate: slow frames are repeated and fast ones dropped, so it lasts 1 s too.
    assert video_cli(str(path), "--out", str(tmp_path / "out.mp4")) == 0
    assert abs(frame_count(tmp_path / "out.mp4") - 30) <= 1


def test_rotated_phone_video_comes_out_upright(
    tmp_path: Path, analyzer: Analyzer, one_face_frames: list[np.ndarray]
) -> None:
    upright = one_face_frames[:5]
    sideways = [cv2.rotate(f, cv2.ROTATE_90_COUNTERCLOCKWISE) for f in upright]  # the sensor's orientation
    path = write_clip(tmp_path / "phone.mp4", sideways)
    rotate_mp4(path)
    with open_video(path) as source:
        frames = list(source)
    assert [f.image.shape for f in frames] == [(360, 640, 3)] * 5
    assert np.abs(frames[0].image.astype(int) - upright[0]).mean() < 8  # mp4v loss only
    (face,) = analyzer.detect(frames[0].image)
    (rx, ry), (lx, ly), (_, nose_y) = face.landmarks[:3]
    assert abs(ry - ly) < 0.2 * abs(rx - lx) and max(ry, ly) < nose_y  # eyes level, above the nose


def test_numpy_generator_source(video_analyzer: VideoAnalyzer, one_face_frames: list[np.ndarray]) -> None:
    closed = []

    def generate() -> Iterator[np.ndarray]:
        try:
            yield from one_face_frames
        finally:
            closed.append(True)

    source = frames_from_arrays(generate(), fps=12.5, every=2)
    assert source.frame_count is None and source.output_fps == pytest.approx(6.25)
    with source:
        results = list(video_analyzer.run(source))
    assert [(r.index, r.time_s) for r in results] == [(k, k / 12.5) for k in range(0, 30, 2)]
    assert all(len(r.faces) == 1 for r in results)
    gray = frames_from_arrays([cv2.cvtColor(one_face_frames[0], cv2.COLOR_RGB2GRAY)])
    assert next(iter(gray)).image.shape == (360, 640, 3)
    source = frames_from_arrays(generate())
    next(iter(source))
    source.close()
    assert closed == [True, True]


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".png", ".tiff"])
def test_animated_images_play_every_frame_at_its_time(
    tmp_path: Path, faces: dict[str, np.ndarray], suffix: str
) -> None:
    # OpenCV's FFmpeg reads an animated WebP as no frame at all and a TIFF's pages as one; GIF and
    # APNG depend on its build.
    frames = [place((240, 320), (faces[name], 60, 0)) for name in ("astronaut", "hopper", "astronaut", "hopper")]
    path = tmp_path / f"faces{suffix}"
    first, *rest = (Image.fromarray(f) for f in frames)
    first.save(path, save_all=True, append_images=rest, duration=[100, 250, 100, 100], loop=0)
    times = [0.0, 0.1, 0.2, 0.3] if suffix == ".tiff" else [0.0, 0.1, 0.35, 0.45]  # TIFF pages: 0.1 s each
    with open_video(path) as source:
        assert source.frame_count == 4 and source.duration_s == pytest.approx(times[-1] + 0.1)
        got = list(source)
    assert [f.index for f in got] == [0, 1, 2, 3]
    assert [f.time_s for f in got] == pytest.approx(times)
    for frame, made in zip(got, frames, strict=True):  # each frame its own picture, up to GIF's palette
        assert frame.image.shape == (240, 320, 3) and np.abs(frame.image.astype(int) - made).mean() < 8
    with open_video(path, every=2) as source:
        assert [f.index for f in source] == [0, 2]
    timeline = tmp_path / "t.csv"
    assert video_cli(str(path), "--detect-every", "1", "--csv", str(timeline)) == 0
    rows = list(csv.DictReader(timeline.open()))
    assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3]  # one face in each
    assert [float(r["time"]) for r in rows] == pytest.approx(times)


# --------------------------------------------------------------------------------------------
# Bad input


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory: pytest.TempPathFactory, one_face_mp4: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad_videos")
    (d / "empty.mp4").write_bytes(b"")
    (d / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes())
    (d / "text.mp4").write_text("not a video\n")
    with wave.open(str(d / "audio.wav"), "wb") as w:  # a file with no video stream
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)
    data = one_face_mp4.read_bytes()
    (d / "cut.mp4").write_bytes(data[: len(data) // 2])  # MP4 index at the end: nothing is readable
    (d / "folder.mp4").mkdir()
    writer = cv2.VideoWriter(str(d / "zero.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (320, 240))
    writer.release()  # a valid file that holds no frame
    return {p.stem: p for p in d.iterdir()} | {"missing": d / "missing.mp4"}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing", "no such file"),
        ("empty", "empty file"),
        ("folder", "is a folder"),
        ("random", "not a video"),
        ("text", "not a video"),
        ("audio", "not a video"),
        ("cut", "not a video"),
        ("zero", "has no frames"),
    ],
)
def test_bad_video_files(bad_videos: dict[str, Path], name: str, message: str, tmp_path: Path) -> None:
    path = bad_videos[name]
    with pytest.raises(VideoError, match=message) as e:
        open_video(path)
    assert str(path) in str(e.value)
    assert video_cli(str(path), "--csv", str(tmp_path / "t.csv")) == 1


def test_stream_that_does_not_open_hides_the_password() -> None:
    with pytest.raises(VideoError, match="cannot open the stream") as e:
        open_video("rtsp://user:secret@127.0.0.1:9/live")  # nothing listens on the discard port
    assert "secret" not in str(e.value) and "rtsp://***@127.0.0.1:9/live" in str(e.value)


def test_camera_that_does_not_open(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="camera 99 could not be opened"):
        open_camera(99)
    assert video_cli("--camera", "99", "--csv", str(tmp_path / "t.csv")) == 1


def test_truncated_file_keeps_the_frames_before_the_damage(
    tmp_path: Path, video_analyzer: VideoAnalyzer, one_face_frames: list[np.ndarray]
) -> None:
    path = write_clip(tmp_path / "clip.avi", one_face_frames)  # AVI: readable up to the cut
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    got: list[FrameResult] = []
    with pytest.raises(VideoError, match="truncated or corrupt"), open_video(path) as source:
        got.extend(video_analyzer.run(source))
    assert 5 <= len(got) < 30 and all(len(r.faces) == 1 for r in got)
    out = tmp_path / "t.csv"
    assert video_cli(str(path), "--csv", str(out)) == 1
    assert len(list(csv.DictReader(out.open()))) == len(got)


def test_a_camera_that_stops_mid_run_keeps_the_frames_so_far(one_face_mp4: Path) -> None:
    # The camera code path fed from a file: its end is what a camera's disconnect looks like.
    source = _CaptureSource(
        cv2.VideoCapture(str(one_face_mp4)), "camera 0", live=True, camera=True, every=1, sample_fps=None
    )
    frames = []
    with pytest.raises(VideoError, match="camera 0 stopped delivering frames after 30"), source:
        frames.extend(source)
    assert len(frames) == 30
    assert all(b.time_s > a.time_s for a, b in itertools.pairwise(frames))


# --------------------------------------------------------------------------------------------
# CLI outputs


def test_a_hard_cut_gives_the_face_after_it_a_new_id(
    analyzer: Analyzer, faces: dict[str, np.ndarray], astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    """Two shots with a face at the same place: the box matches across the cut, the person does not."""
    shots = []
    for name, photo in (("astronaut", astronaut), ("hopper", hopper)):
        backdrop = cv2.resize(photo, (640, 360), interpolation=cv2.INTER_AREA)
        backdrop[60:300, 220:420] = faces[name]
        shots += [backdrop] * 7
    frames = frames_from_arrays(shots, fps=10)
    results = list(VideoAnalyzer(analyzer, detect_every=3, smoothing=5).run(frames))
    ids = [[f.track_id for f in r.faces] for r in results]
    assert ids == [[0]] * 7 + [[1]] * 7
    assert results[7].detected  # the cut frame is detected anew, off the every-3rd schedule
    assert results[7].faces[0].smoothed == results[7].faces[0].emotion  # no history from the face before the cut
    # Without cut detection, the hopper shot inherits the astronaut's id and smoothing.
    frames = frames_from_arrays(shots, fps=10)
    merged = list(VideoAnalyzer(analyzer, detect_every=3, smoothing=5, cut_difference=None).run(frames))
    assert {f.track_id for r in merged for f in r.faces} == {0}


def test_annotated_webm_for_web_browsers_holds_every_frame_in_vp8(
    tmp_path: Path, one_face_mp4: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "annotated.webm"
    assert video_cli(str(one_face_mp4), "--out", str(out), "--every", "3") == 0
    assert "not supported" not in capfd.readouterr().err  # OpenCV's note on WebM's missing codec tag is held back
    cap = cv2.VideoCapture(str(out), cv2.CAP_FFMPEG)
    codec = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode("ascii", "replace")
    cap.release()
    assert out.read_bytes()[:4] == b"\x1a\x45\xdf\xa3"  # the Matroska/WebM header
    assert codec == "VP80" and frame_count(out) == 10  # every analysed frame of the 1 s clip


def test_cli_writes_timeline_annotated_video_and_plot(tmp_path: Path, one_face_mp4: Path) -> None:
    out = {k: tmp_path / f"t.{k}" for k in ("csv", "jsonl", "mp4", "png")}
    code = video_cli(
        str(one_face_mp4), "--csv", str(out["csv"]), "--jsonl", str(out["jsonl"]), "--out", str(out["mp4"]),
        "--plot", str(out["png"]), "--every", "2",
    )  # fmt: skip
    assert code == 0
    rows = list(csv.DictReader(out["csv"].open(encoding="utf-8")))
    assert len(rows) == 15
    assert list(rows[0]) == [
        "frame",
        "time",
        "face",
        "x",
        "y",
        "w",
        "h",
        "score",
        "label",
        "raw_label",
        "tracked",
        *FERPLUS7,
    ]
    assert [int(r["frame"]) for r in rows] == list(range(0, 30, 2))
    assert float(rows[1]["time"]) == pytest.approx(2 / 30, abs=1e-3)
    assert {r["face"] for r in rows} == {"0"} and {r["label"] for r in rows} == {"happiness"}
    assert sum(float(rows[0][k]) for k in FERPLUS7) == pytest.approx(1, abs=1e-3)

    lines = [json.loads(line) for line in out["jsonl"].read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 15 and set(lines[0]) == {"frame", "time", "detected", "faces"}
    face = lines[0]["faces"][0]
    assert set(face) >= {
        "id",
        "rect",
        "label",
        "probs",
        "raw_label",
        "raw_probs",
        "box",
        "score",
        "landmarks",
        "tracked",
    }
    assert list(face["probs"]) == list(FERPLUS7)

    assert frame_count(out["mp4"]) == 15  # every 2nd frame of 30, at 15 frames/s
    cap = cv2.VideoCapture(str(out["mp4"]))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(15)
    assert out["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_korean_labels_and_default_stdout(
    tmp_path: Path, one_face_mp4: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert video_cli(str(one_face_mp4), "--lang", "ko", "--fps", "5") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 5  # 1 s at 5 frames/s, on stdout when no output is named
    assert lines[0]["faces"][0]["label"] == display_name("happiness", "ko")
    assert video_cli(str(one_face_mp4), "--lang", "ko", "--csv", "-", "--plot", str(tmp_path / "p.png")) == 0
    header = capsys.readouterr().out.splitlines()[0].split(",")
    assert header[-7:] == [display_name(k, "ko") for k in FERPLUS7]
    assert (tmp_path / "p.png").stat().st_size > 1000  # drawn with English labels when no Hangul font exists


def test_show_without_a_display_runs_headless(
    one_face_mp4: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert video_cli(str(one_face_mp4), "--show", "--csv", str(tmp_path / "t.csv")) == 0
    assert "running headless" in capsys.readouterr().err
    assert len((tmp_path / "t.csv").read_text().splitlines()) == 31


def test_cli_usage_errors(tmp_path: Path, one_face_mp4: Path) -> None:
    for argv in (["--every", "0"], ["--camera", "0"], ["--smoothing", "-1"], ["--fps", "0"], ["--threads", "0"]):
        with pytest.raises(SystemExit) as e:
            video_cli(str(one_face_mp4), *argv)
        assert e.value.code == 2
    assert video_cli(str(one_face_mp4), "--out", str(tmp_path / "a.gif")) == 2
    assert video_cli(str(one_face_mp4), "--out", str(tmp_path / "no" / "a.mp4")) == 2
    assert video_cli(str(one_face_mp4), "--plot", str(tmp_path / "p.xyz")) == 2
    assert video_cli(str(one_face_mp4), "--plot", str(tmp_path / "no" / "p.png")) == 2
    assert video_cli(str(one_face_mp4), "--csv", str(tmp_path / "no" / "t.csv")) == 2
    assert video_cli(str(one_face_mp4), "--detector", "nope") == 2
    assert video_cli(str(one_face_mp4), "--aligner", "nope") == 2
    assert video_cli(str(one_face_mp4), "--detector-option", "score_threshold=5") == 2


def test_cli_detector_options_reach_the_detector(one_face_mp4: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert video_cli(str(one_face_mp4), "--fps", "5", "--detector-option", "min_face=20") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(len(json.loads(line)["faces"]) == 1 for line in lines)
    # A smallest face larger than the frame: the option reached the detector, which finds none.
    assert video_cli(str(one_face_mp4), "--fps", "5", "--detector-option", "min_face=5000") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(json.loads(line)["faces"] == [] for line in lines)


def test_plot_memory_is_bounded(tmp_path: Path) -> None:
    plot = TimelinePlot(tmp_path / "unused.png", FERPLUS7, max_bins=10)
    e = Emotion.from_probs(FERPLUS7, [1.0, 0, 0, 0, 0, 0, 0])
    f = Face(Box(0, 0, 10, 10), 1.0, ((0.0, 0.0),) * 5)  # type: ignore[arg-type]
    frame = Frame(0, 0.0, np.zeros((1, 1, 3), np.uint8))
    for k in range(1000):  # 1000 s, one face
        plot.write(frame, FrameResult(k, float(k), [TrackedFace(0, f, e, e, False)], True))
    assert len(plot.bins[0]) <= 10 and plot.bin_s == 128


def test_ctrl_c_while_a_frame_is_written_waits_for_its_last_output() -> None:
    """Ctrl-C between two sinks' writes of a frame would leave the video a frame ahead of the CSV."""
    from maeum.video_cli import _interrupt_after

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in `maeum video` from a terminal
    try:
        written = []
        with pytest.raises(KeyboardInterrupt), _interrupt_after():
            written.append("video")
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here, between the two writes
            written.append("csv")
        assert written == ["video", "csv"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with pytest.raises(KeyboardInterrupt):  # outside the block, Ctrl-C is at once again
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_leaves_valid_partial_outputs(tmp_path: Path, long_mp4: Path) -> None:
    out_csv, out_mp4 = tmp_path / "t.csv", tmp_path / "t.mp4"
    argv = ["video", str(long_mp4), "--csv", str(out_csv), "--out", str(out_mp4), "--detect-every", "1"]
    code, err = _ctrl_c([*argv, "--threads", "1"], lambda: out_csv.exists() and out_csv.read_text().count("\n") > 20)
    assert code == 130, err
    assert "interrupted" in err
    rows = list(csv.DictReader(out_csv.open()))
    assert 20 <= len(rows) < 1500 and all(r[FERPLUS7[-1]] for r in rows)  # whole rows only
    assert frame_count(out_mp4) == len({r["frame"] for r in rows})  # a playable file holding every frame analysed


# --------------------------------------------------------------------------------------------
# Outputs and inputs that must not lose data or crash


def test_outputs_that_would_overwrite_the_input_or_each_other_are_refused(tmp_path: Path, one_face_mp4: Path) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(one_face_mp4.read_bytes())
    data = clip.read_bytes()
    for argv in (
        ["--out", str(clip)],
        ["--csv", str(clip)],
        ["--plot", str(tmp_path / ".." / tmp_path.name / "clip.mp4")],
        ["--csv", str(tmp_path / "t.csv"), "--jsonl", str(tmp_path / "t.csv")],
        ["--out", str(tmp_path / "x.mp4"), "--csv", str(tmp_path / "x.mp4")],
    ):
        assert video_cli(str(clip), *argv) == 2, argv
    assert clip.read_bytes() == data and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_plot_that_cannot_be_written_is_refused_before_the_first_frame(
    tmp_path: Path, one_face_mp4: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "dir.png").mkdir()
    csv_path = tmp_path / "t.csv"
    for plot in (tmp_path / "dir.png", Path("/proc/x.png")):
        assert video_cli(str(one_face_mp4), "--csv", str(csv_path), "--plot", str(plot)) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and f"--plot {plot}: " in err[0]
        assert not csv_path.exists()  # no frame was analysed
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o555)
    done = subprocess.run(
        unprivileged([sys.executable, "-m", "maeum.cli", "video", str(one_face_mp4), "--plot", str(locked / "p.png")]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "--plot" in done.stderr and "Permission denied" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_a_file_name_that_is_not_utf8_plays(tmp_path: Path, one_face_mp4: Path) -> None:
    # 얼굴.mp4 in EUC-KR, as a Korean Windows zip stores it: OpenCV alone crashes on such a name.
    clip = os.fsdecode(bytes(tmp_path) + b"/\xbe\xf3\xb1\xbc.mp4")
    Path(clip).write_bytes(one_face_mp4.read_bytes())
    done = subprocess.run(
        [sys.executable, "-m", "maeum.cli", "video", clip, "--fps", "5", "--csv", str(tmp_path / "t.csv")],
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert len(list(csv.DictReader((tmp_path / "t.csv").open()))) == 5
    with open_video(clip) as source:
        assert source.frame_count == 30 and len(list(source)) == 30
    out = os.fsdecode(bytes(tmp_path) + b"/\xbe\xf3.mp4")  # an output OpenCV cannot be given: refused
    assert video_cli(str(one_face_mp4), "--out", out) == 2


def test_unreadable_video_files_say_permission_denied(tmp_path: Path, one_face_mp4: Path) -> None:
    locked, noperm = tmp_path / "locked", tmp_path / "noperm.mp4"
    locked.mkdir()
    noperm.write_bytes(one_face_mp4.read_bytes())
    noperm.chmod(0)
    for clip in (locked / "x.mp4", noperm):
        locked.chmod(0)
        try:
            done = subprocess.run(
                unprivileged([sys.executable, "-m", "maeum.cli", "video", str(clip)]),
                capture_output=True,
                text=True,
                timeout=300,
            )
        finally:
            locked.chmod(0o755)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert f"{clip}: permission denied" in done.stderr


def test_thin_frames_have_no_face(video_analyzer: VideoAnalyzer, one_face_frames: list[np.ndarray]) -> None:
    strip = cv2.resize(one_face_frames[0], (4000, 1), interpolation=cv2.INTER_AREA)
    results = list(video_analyzer.run(frames_from_arrays([strip] * 3 + one_face_frames[:3], fps=10)))
    assert [len(r.faces) for r in results] == [0, 0, 0, 1, 1, 1]  # detected on frames 0 and 3


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_a_one_line_error_with_its_own_exit_code(
    one_face_mp4: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert video_cli(str(one_face_mp4), "--csv", "/dev/full") == 3
    assert capsys.readouterr().err.splitlines() == ["maeum: cannot write /dev/full: No space left on device"]
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "maeum.cli", "video", str(one_face_mp4), "--fps", "5"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    assert done.returncode == 3 and done.stderr.splitlines() == ["maeum: cannot write stdout: No space left on device"]


def test_korean_csv_files_start_with_a_bom(tmp_path: Path, one_face_mp4: Path) -> None:
    assert video_cli(str(one_face_mp4), "--fps", "5", "--lang", "ko", "--csv", str(tmp_path / "t.csv")) == 0
    rows = list(csv.DictReader((tmp_path / "t.csv").open(encoding="utf-8-sig")))
    assert (tmp_path / "t.csv").read_bytes().startswith(b"\xef\xbb\xbfframe,") and rows[0]["label"] == "기쁨"


def test_usage_errors_name_no_internal_function(one_face_mp4: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--camera", "abc"], [str(one_face_mp4), "--fps", "abc"], [str(one_face_mp4), "--every", "x"]):
        with pytest.raises(SystemExit) as e:
            video_cli(*argv)
        err = capsys.readouterr().err
        assert e.value.code == 2 and "must be" in err and "invalid" not in err, err  # not "invalid _natural value"


# --------------------------------------------------------------------------------------------
# Found by trying `maeum video` as a user would


def test_a_file_url_is_the_file_it_names(tmp_path: Path, one_face_mp4: Path) -> None:
    """``file://`` input: played like the path, and an --out onto it is refused, not written over it."""
    clip = tmp_path / "내 영상.mp4"  # Hangul and a space, percent-encoded in the URL
    clip.write_bytes(one_face_mp4.read_bytes())
    url = clip.as_uri()
    with open_video(url) as source:
        assert source.frame_count == 30 and len(list(source)) == 30
    assert video_cli(url, "--fps", "5", "--csv", str(tmp_path / "t.csv")) == 0
    assert len(list(csv.DictReader((tmp_path / "t.csv").open()))) == 5
    assert video_cli(url, "--out", str(clip)) == 2
    assert clip.read_bytes() == one_face_mp4.read_bytes()


def test_korean_folder_with_spaces_holds_every_output(tmp_path: Path, one_face_mp4: Path) -> None:
    folder = tmp_path / "한글 폴더"
    folder.mkdir()
    clip = folder / "내 영상.mp4"
    clip.write_bytes(one_face_mp4.read_bytes())
    out = {k: folder / f"결과 {k}" for k in ("영상.mp4", "표.csv", "그림.png")}
    argv = ["--every", "3", "--lang", "ko", "--out", str(out["영상.mp4"]), "--csv", str(out["표.csv"])]
    assert video_cli(str(clip), *argv, "--plot", str(out["그림.png"])) == 0
    assert frame_count(out["영상.mp4"]) == 10
    assert len(list(csv.DictReader(out["표.csv"].open(encoding="utf-8-sig")))) == 10
    assert out["그림.png"].read_bytes()[:4] == b"\x89PNG"


def test_a_wrong_output_suffix_is_refused_before_anything_is_opened_or_written(
    tmp_path: Path, one_face_mp4: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad --plot or --out suffix used to be found after the CSV was opened: an existing CSV was
    replaced by a header-only file although nothing ran."""
    kept = tmp_path / "kept.csv"
    kept.write_text("an earlier timeline\n")
    for argv in (["--plot", str(tmp_path / "p.xyz")], ["--out", str(tmp_path / "annotated")]):
        assert video_cli(str(one_face_mp4), "--csv", str(kept), "--jsonl", str(tmp_path / "t.jsonl"), *argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"maeum: {argv[0]} {argv[1]}: "), err
        # Found before the input is opened: a usage error (2) even with a missing input.
        assert video_cli(str(tmp_path / "missing.mp4"), *argv) == 2
        capsys.readouterr()
    assert kept.read_text() == "an earlier timeline\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.csv"]


def test_a_source_is_read_once(one_face_mp4: Path, one_face_frames: list[np.ndarray]) -> None:
    """A second pass used to end at once with "the file looks truncated", and one after close()
    with "frame at 0.00 s could not be decoded"."""
    with open_video(one_face_mp4) as source:
        assert len(list(source)) == 30
        with pytest.raises(VideoError, match="read once; open the video again"):
            list(source)
    with pytest.raises(VideoError, match="closed"):
        list(source)
    source.close()  # again: nothing
    arrays = frames_from_arrays(one_face_frames[:3])
    arrays.close()
    with pytest.raises(VideoError, match="closed"):
        list(arrays)


def test_a_stream_that_never_answers_fails_within_its_timeout() -> None:
    """A server that accepts the connection and then says nothing: FFmpeg alone waits 30 s."""
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"rtsp://127.0.0.1:{server.getsockname()[1]}/live"
        started = time.monotonic()
        with pytest.raises(VideoError, match=r"no answer within 1 s"):
            open_video(url, timeout_s=1)
        assert time.monotonic() - started < 5


def _ctrl_c(argv: list[str], ready: Callable[[], bool], second_after: float | None = None) -> tuple[int, str]:
    """Run ``maeum ARGV``, press Ctrl-C once ``ready()`` (and again ``second_after`` s later)."""
    # SIGINT back to its default in the child: a shell that starts the tests in the background
    # ignores it, and a child that starts with it ignored never sees Ctrl-C.
    proc = subprocess.Popen(
        [sys.executable, "-m", "maeum.cli", *argv],
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not ready():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    if second_after is not None:
        time.sleep(second_after)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


@pytest.fixture(scope="module")
def long_mp4(tmp_path_factory: pytest.TempPathFactory, faces: dict[str, np.ndarray]) -> Path:
    """1,500 frames (50 s), 320x240: long enough that no run ends before Ctrl-C."""
    frames = [place((240, 320), (faces["astronaut"], k % 100, 0)) for k in range(1500)]
    return write_clip(tmp_path_factory.mktemp("long") / "long.mp4", frames)


def test_a_second_ctrl_c_while_the_outputs_are_finished_does_not_break_them(tmp_path: Path, long_mp4: Path) -> None:
    """Users press Ctrl-C twice. The second one used to land while the plot was drawn (or the video's
    index written), and the plot was never written although the message said the outputs were kept."""
    out = {k: tmp_path / f"t.{k}" for k in ("csv", "mp4", "png")}
    argv = ["video", str(long_mp4), "--csv", str(out["csv"]), "--out", str(out["mp4"]), "--plot", str(out["png"])]

    def ready() -> bool:
        return out["csv"].exists() and out["csv"].read_text().count("\n") > 10

    code, err = _ctrl_c([*argv, "--threads", "1"], ready, second_after=0.1)
    assert code == 130, err
    rows = list(csv.DictReader(out["csv"].open()))
    assert f"interrupted after {len(rows)} frames" in err  # the count is the frames the outputs hold
    assert frame_count(out["mp4"]) == len(rows)
    assert out["png"].read_bytes()[:4] == b"\x89PNG"
    assert "Traceback" not in err


def test_no_progress_bar_inside_a_timeline_on_the_terminal(one_face_mp4: Path) -> None:
    """With the timeline on a terminal (the default output), the bar used to be drawn into its lines."""
    import pty

    def run(*argv: str) -> str:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "maeum.cli", "video", str(one_face_mp4), "--detect-every", "1", *argv],
            stdout=follower,
            stderr=follower,
        )
        os.close(follower)
        chunks = []  # read as it comes: a terminal holds only a few kB unread, then the writer waits
        with contextlib.suppress(OSError):  # EIO once the child has closed the terminal
            while chunk := os.read(leader, 65536):
                chunks.append(chunk)
        os.close(leader)
        assert proc.wait(timeout=300) == 0
        return b"".join(chunks).decode()

    lines = [line for line in run().replace("\r\n", "\n").split("\n") if line.startswith(("{", "["))]
    assert len(lines) == 30 and all(json.loads(line)["faces"] for line in lines), lines[:3]
    # Into a file, the bar is drawn on the terminal as before.
    with tempfile.TemporaryDirectory() as folder:
        assert "frames/s" in run("--csv", str(Path(folder) / "t.csv"))


def test_a_still_photo_is_one_frame_with_a_hint(
    tmp_path: Path, faces: dict[str, np.ndarray], caplog: pytest.LogCaptureFixture
) -> None:
    photo = tmp_path / "selfie.jpg"
    Image.fromarray(place((240, 320), (faces["astronaut"], 60, 0))).save(photo)
    with caplog.at_level("WARNING"), open_video(photo) as source:
        assert len(list(source)) == 1
    assert "selfie.jpg is a still JPEG image, read as a one-frame video; `maeum analyze`" in caplog.text


def test_stream_timeout_is_an_option_and_ctrl_c_stops_the_connect() -> None:
    """FFmpeg's connect cannot be interrupted; Ctrl-C used to wait for the whole timeout."""
    import select
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        url = f"rtsp://127.0.0.1:{server.getsockname()[1]}/live"
        assert video_cli(url, "--timeout", "1") == 1
        with contextlib.suppress(BlockingIOError):  # the connection that run left
            server.setblocking(False)
            server.accept()[0].close()

        def connected() -> bool:
            return bool(select.select([server], [], [], 0)[0])

        started = time.monotonic()
        code, err = _ctrl_c(["video", url, "--timeout", "300"], connected)
        assert code == 130 and "interrupted" in err and "Traceback" not in err
        assert time.monotonic() - started < 120  # not the 300 s timeout


def test_ctrl_c_stops_a_stream_whose_reads_stall(tmp_path: Path) -> None:
    """A stream that stops sending but keeps the connection: Ctrl-C used to wait for the read timeout."""
    import socket
    import threading

    frames = [np.full((120, 160, 3), 2 * k, np.uint8) for k in range(100)]
    data = write_clip(tmp_path / "clip.avi", frames, fps=10).read_bytes()
    stalled, done = threading.Event(), threading.Event()
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(data))
            conn.sendall(data[: len(data) // 2])  # half the frames, then nothing more
            stalled.set()
            done.wait(120)

    threading.Thread(target=serve, daemon=True).start()
    url = f"http://127.0.0.1:{server.getsockname()[1]}/clip.avi"
    since: list[float] = []

    def ready() -> bool:  # the half sent and a moment to read it: the next read waits
        if stalled.is_set() and not since:
            since.append(time.monotonic())
        return bool(since) and time.monotonic() - since[0] > 2

    try:
        started = time.monotonic()
        code, err = _ctrl_c(["video", url, "--timeout", "300", "--csv", str(tmp_path / "t.csv")], ready)
        assert code == 130 and "interrupted after" in err and "Traceback" not in err, err
        assert time.monotonic() - started < 60  # not the 300 s timeout
        assert int(re.search(r"interrupted after (\d+) frames", err)[1]) > 10  # the frames before the stall
    finally:
        done.set()
        server.close()
