"""Frame sources: video files, streams, cameras, animated images and numpy generators, read one frame at a time.

Sampling (every Nth frame, or a target rate by timestamp) happens here, so skipped frames are
never converted. Timestamps come from the container, so variable frame rates keep their timing.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from maeum.errors import VideoError
from maeum.filenames import is_utf8, opencv_readable, printable
from maeum.imageio import as_rgb_array, check_file, pil_to_rgb

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame: its index in the source, its timestamp and the RGB uint8 (H, W, 3) pixels."""

    index: int
    time_s: float
    image: np.ndarray


class FrameSource(ABC):
    """Frames from a file, stream, camera or arrays, sampled by ``every`` and ``sample_fps``.

    Iterate once (a second pass, or one after ``close()``, raises VideoError: open the video
    again); ``close()`` (or ``with``) releases the device or file. ``fps`` and ``frame_count``
    are None when the source does not know them.
    """

    def __init__(
        self, name: str, fps: float | None, frame_count: int | None, every: int = 1, sample_fps: float | None = None
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        if sample_fps is not None and sample_fps <= 0:
            raise ValueError(f"sample_fps must be > 0, got {sample_fps}")
        self.name, self.fps, self.frame_count = name, fps, frame_count
        self.every, self.sample_fps = every, sample_fps
        self._read = self._closed = False

    @property
    def duration_s(self) -> float | None:
        return self.frame_count / self.fps if self.frame_count and self.fps else None

    @property
    def output_fps(self) -> float | None:
        """The rate of the frames this source yields after sampling (None when unknown)."""
        rate = self.fps / self.every if self.fps else None
        if self.sample_fps is not None:
            rate = min(rate, self.sample_fps) if rate else self.sample_fps
        return rate

    def __iter__(self) -> Iterator[Frame]:
        # Without these checks a second pass finds no frame and a file "looks truncated".
        if self._closed:
            raise VideoError(f"{self.name}: the source is closed; open the video again to read it")
        if self._read:
            raise VideoError(f"{self.name}: a source is read once; open the video again to read it again")
        self._read = True
        keep = _sampler(self.every, self.sample_fps)
        count = 0
        while (t := self._grab(count)) is not None:
            if keep(count, t):
                yield Frame(count, t, self._retrieve())
            count += 1
        self._finish(count)

    @abstractmethod
    def _grab(self, index: int) -> float | None:
        """Advance to frame ``index``; its timestamp in seconds, or None at the end."""

    @abstractmethod
    def _retrieve(self) -> np.ndarray:
        """The pixels of the frame last grabbed (decoding is skipped for frames nobody keeps)."""

    def _finish(self, count: int) -> None:
        """Called at the end of the stream with the number of frames read; raises if it ended too early."""
        return None

    def close(self) -> None:
        """Release the file or device (closing again does nothing)."""
        if not self._closed:
            self._closed = True
            self._release()

    @abstractmethod
    def _release(self) -> None:
        """Release what the source holds; called once."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sampler(every: int, sample_fps: float | None) -> Callable[[int, float], bool]:
    """A stateful predicate keeping every Nth frame and, by timestamp, at most ``sample_fps`` frames/s."""
    period = 1.0 / sample_fps if sample_fps else 0.0
    due: float | None = None

    def keep(index: int, t: float) -> bool:
        nonlocal due
        if index % every:
            return False
        if not period:
            return True
        if due is not None and t < due - 1e-3:  # 1 ms slack: container timestamps are rounded
            return False
        due = t + period if due is None or due + period <= t else due + period  # after a gap, restart the grid
        return True

    return keep


class _CaptureSource(FrameSource):
    """An OpenCV VideoCapture: a file, a stream URL or a camera.

    ``live`` sources (cameras, RTSP ...) have no end: running out of frames means they failed.
    Cameras are timed by the wall clock (their driver timestamps differ by platform), the rest by
    the container's timestamps.
    """

    def __init__(
        self,
        cap: cv2.VideoCapture,
        name: str,
        *,
        live: bool,
        camera: bool,
        every: int,
        sample_fps: float | None,
        network: bool = False,
    ) -> None:
        fps = cap.get(cv2.CAP_PROP_FPS)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        super().__init__(name, fps if fps > 0 else None, count if count > 0 and not live else None, every, sample_fps)
        self._cap, self._live, self._camera = cap, live, camera
        self._started = time.monotonic()
        self._last_t = -1.0
        self._primed = False
        # A network stream's read can stall until its timeout, deaf to Ctrl-C: it runs in a helper thread.
        self._waiter = _Waiter(f"maeum-stream-read ({name})") if network else None

    def _grab_once(self) -> bool:
        if self._waiter is None:
            return bool(self._cap.grab())
        return bool(self._waiter.run(self._cap.grab))

    def prime(self) -> None:
        """Read the first frame now, so a file without a decodable video stream fails at open."""
        if not self._grab_once():
            self.close()
            if self._live:
                raise VideoError(f"{self.name} opened but gives no frames; check that no other program uses it")
            raise VideoError(
                f"{self.name}: no video frame could be decoded; the file has no frames, is corrupt or has no video"
            )
        self._primed = True

    def _grab(self, index: int) -> float | None:
        if self._primed:
            self._primed = False
        elif not self._grab_once():
            return None
        if self._camera:
            t = time.monotonic() - self._started
        else:
            t = self._cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            if t <= self._last_t:  # missing or repeated timestamps: step by the nominal rate
                t = self._last_t + 1.0 / (self.fps or 30.0)
        self._last_t = t
        return t

    def _retrieve(self) -> np.ndarray:
        ok, bgr = self._cap.retrieve()
        if not ok:
            raise VideoError(f"{self.name}: frame at {self._last_t:.2f} s could not be decoded")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _finish(self, count: int) -> None:
        if self._live:
            raise VideoError(f"{self.name} stopped delivering frames after {count} (disconnected?); results kept")
        expected = self.frame_count
        # Containers without a frame count give an estimate from duration x rate: allow 10 %.
        if expected and count < 0.9 * expected and expected - count >= 3:
            raise VideoError(
                f"{self.name}: the video ended after {count} of {expected} frames ({self._last_t:.1f} s); "
                "the file looks truncated or corrupt; results up to there are kept"
            )

    def _release(self) -> None:
        if self._waiter is not None and self._waiter.busy:
            # Ctrl-C during a read: the helper thread is still inside FFmpeg, and releasing the capture
            # under it could crash the process; it ends with the process, or by the stream's timeout.
            log.debug("%s: left open, a read is still waiting", self.name)
            return
        self._cap.release()


class _Waiter:
    """Runs blocking calls in a helper thread and waits for each in short joins, so that Ctrl-C, which
    Python handles only between bytecodes of the main thread, stops the wait at once."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        """Whether a call is still running (the wait for it was interrupted)."""
        return self._thread is not None and self._thread.is_alive()

    def run(self, call: Callable[[], object]) -> object:
        if self.busy:
            raise VideoError(f"{self._name}: the previous read is still waiting")
        result: list[object] = []
        failure: list[BaseException] = []

        def target() -> None:
            try:
                result.append(call())
            except Exception as e:  # handed to the waiting thread
                failure.append(e)

        self._thread = threading.Thread(target=target, name=self._name, daemon=True)
        self._thread.start()
        while self._thread.is_alive():
            self._thread.join(0.1)
        if failure:
            raise failure[0]
        return result[0]


class _ArraySource(FrameSource):
    """Frames from any iterable of RGB uint8 arrays, timed at ``fps``."""

    def __init__(self, arrays: Iterable[np.ndarray], fps: float, every: int, sample_fps: float | None) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        count = len(arrays) if hasattr(arrays, "__len__") else None  # type: ignore[arg-type]
        super().__init__("<arrays>", fps, count, every, sample_fps)
        self._arrays = iter(arrays)
        self._current: np.ndarray | None = None

    def _grab(self, index: int) -> float | None:
        self._current = next(self._arrays, None)
        return None if self._current is None else index / (self.fps or 1.0)

    def _retrieve(self) -> np.ndarray:
        assert self._current is not None
        return as_rgb_array(self._current)

    def _release(self) -> None:
        close = getattr(self._arrays, "close", None)  # a generator: run its cleanup
        if close is not None:
            close()


class _AnimatedImageSource(FrameSource):
    """The frames of an animated or multi-page image (GIF, WebP, APNG, TIFF), decoded by Pillow.

    OpenCV's FFmpeg reads animated WebP as no frame at all and TIFF pages as one, and its GIF and
    APNG support depends on the build. Each frame starts where the one before it ends; a frame
    without a duration, or of 10 ms or less, lasts 0.1 s, as browsers play it.
    """

    def __init__(self, image: Image.Image, name: str, every: int, sample_fps: float | None) -> None:
        self._image, self.name = image, name
        # Durations are known only frame by frame, so one pass decodes them all up front: the
        # rate of the whole animation, not of its first frame, sets the annotated video's rate.
        self._starts_ms = self._scan()  # each frame's start, then the end of the last one
        count = len(self._starts_ms) - 1
        super().__init__(name, 1000.0 * count / self._starts_ms[-1], count, every, sample_fps)

    def _scan(self) -> list[float]:
        starts = [0.0]
        while True:
            index = len(starts) - 1
            try:
                if not self._load(index):
                    return starts
            except VideoError as e:
                if index == 0:
                    raise
                log.warning("%s; playing the %d frames before it", e, index)
                return starts
            starts.append(starts[-1] + self._duration_ms())

    def _load(self, index: int) -> bool:
        """Decode frame ``index``; False past the last one."""
        try:
            self._image.seek(index)
            self._image.load()
        except EOFError:
            return False
        except (OSError, SyntaxError, ValueError) as e:
            raise VideoError(f"{self.name}: frame {index} could not be decoded ({e}); the file is corrupt") from None
        return True

    def _duration_ms(self) -> float:
        ms = self._image.info.get("duration") or 0  # set once the frame is loaded (WebP)
        return float(ms) if ms > 10 else 100.0

    def _grab(self, index: int) -> float | None:
        if index >= len(self._starts_ms) - 1 or not self._load(index):
            return None
        return self._starts_ms[index] / 1000.0

    def _retrieve(self) -> np.ndarray:
        return pil_to_rgb(self._image)

    def _release(self) -> None:
        self._image.close()


# The image formats that animate (or hold pages) which Pillow reads frame by frame. Not MPO: a
# phone's JPEG with a second picture (a preview or depth map) is one photo, not two frames.
_ANIMATED_FORMATS = frozenset({"GIF", "PNG", "WEBP", "TIFF"})


def _open_animated(path: str, every: int, sample_fps: float | None) -> FrameSource | None:
    """``path`` as a FrameSource if it is an image of several frames; None otherwise (a video, a still image)."""
    try:
        image = Image.open(path)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):  # not an image: FFmpeg's to read
        return None
    try:
        animated = image.format in _ANIMATED_FORMATS and getattr(image, "is_animated", False)
    except (OSError, SyntaxError, ValueError):  # damaged after its first frame: FFmpeg's to judge
        animated = False
    if not animated:
        log.warning(
            "%s is a still %s image, read as a one-frame video; `maeum analyze` is the command for photos",
            printable(path),
            image.format,
        )
        image.close()
        return None
    try:
        return _AnimatedImageSource(image, path, every, sample_fps)
    except BaseException:
        image.close()
        raise


# Stream protocols without an end: when they stop, the connection failed.
_LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "rtp", "udp", "tcp", "srt"})


def local_file(source: str | Path) -> str | None:
    """The file a path or ``file://`` URL names; None for a network URL (``rtsp://``, ``http://`` ...)."""
    text = str(source)
    if "://" not in text:
        return text
    parts = urllib.parse.urlsplit(text)
    if parts.scheme.lower() != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise VideoError(f"{text}: a file:// URL on another host; mount it and pass the file's path")
    return urllib.request.url2pathname(parts.path)


def open_video(
    source: str | Path, every: int = 1, sample_fps: float | None = None, *, timeout_s: float = 10.0
) -> FrameSource:
    """A video file, animated image (GIF, WebP, APNG) or stream URL (``rtsp://``, ``http://`` ...) as a FrameSource.

    Frames come out upright (rotation metadata of phone videos is applied) with their real
    timestamps, so variable-frame-rate files keep their timing. Raises VideoError when the
    input is missing, is not a video, or has no decodable video stream, and when a stream does
    not answer within ``timeout_s`` seconds (to connect, and later between two frames).
    A ``file://`` URL is read as the file it names.
    """
    path = local_file(source)
    if path is None:
        return _open_stream(str(source), every, sample_fps, timeout_s)
    check_file(Path(path), "a video file", VideoError)
    if (animated := _open_animated(path, every, sample_fps)) is not None:
        return animated
    with opencv_readable(path, VideoError) as readable:  # a non-UTF-8 name would crash OpenCV
        cap = cv2.VideoCapture(readable, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise VideoError(
            f"{path}: not a video OpenCV/FFmpeg can read (corrupt, audio only, or not a video at all); "
            "pass a video file such as mp4, avi, mov, mkv or webm"
        )
    return _started(cap, path, live=False, every=every, sample_fps=sample_fps)


def _open_stream(url: str, every: int, sample_fps: float | None, timeout_s: float) -> FrameSource:
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    name = re.sub(r"://[^/@]*@", "://***@", url)  # no passwords in messages and logs
    if not is_utf8(url):
        raise VideoError(f"{printable(name)}: the URL is not valid UTF-8; percent-encode it")
    # FFmpeg's own default waits 30 s for a server that accepts the connection but never answers,
    # deaf to Ctrl-C meanwhile, so the wait is bounded here and said, and made in another thread.
    ms = round(timeout_s * 1000)
    log.info("%s: connecting (waiting up to %g s)", name, timeout_s)
    started = time.monotonic()
    cap = _connect(url, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms])
    if cap is None or not cap.isOpened():
        if cap is not None:
            cap.release()
        if time.monotonic() - started >= 0.9 * timeout_s:
            raise VideoError(
                f"{name}: no answer within {timeout_s:g} s; check the URL, the port and that the stream is running"
            )
        raise VideoError(f"{name}: cannot open the stream; check the URL, the network and the credentials")
    live = url.split("://", 1)[0].lower() in _LIVE_SCHEMES
    return _started(cap, name, live=live, every=every, sample_fps=sample_fps, network=True)


def _connect(url: str, params: list[int]) -> cv2.VideoCapture | None:
    """``cv2.VideoCapture(url)``, opened in a helper thread: FFmpeg's connect ignores Ctrl-C, and the
    main thread, waiting here, stops at once on it. None if OpenCV raised."""
    try:
        cap = _Waiter("maeum-stream-connect").run(lambda: cv2.VideoCapture(url, cv2.CAP_FFMPEG, params))
    except cv2.error as e:  # the URL stays out of the log: it may hold a password
        log.debug("opening the stream failed: %s", e)
        return None
    return cap if isinstance(cap, cv2.VideoCapture) else None


def _started(
    cap: cv2.VideoCapture, name: str, *, live: bool, every: int, sample_fps: float | None, network: bool = False
) -> FrameSource:
    """An opened file or stream capture, upright and with its first frame read (or VideoError)."""
    cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)  # OpenCV's default for FFmpeg, stated so it cannot drift
    rotation = cap.get(cv2.CAP_PROP_ORIENTATION_META)
    if rotation:
        log.info("%s: rotated %d° per its metadata", name, int(rotation))
    src = _CaptureSource(cap, name, live=live, camera=False, every=every, sample_fps=sample_fps, network=network)
    src.prime()
    return src


def open_camera(index: int = 0, every: int = 1, sample_fps: float | None = None) -> FrameSource:
    """Camera ``index`` as a FrameSource timed by the wall clock; VideoError if it does not open."""
    cap = cv2.VideoCapture(index)
    name = f"camera {index}"
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{name} could not be opened; check that it is connected, allowed and not in use")
    src = _CaptureSource(cap, name, live=True, camera=True, every=every, sample_fps=sample_fps)
    src.prime()
    return src


def frames_from_arrays(
    arrays: Iterable[np.ndarray], fps: float = 30.0, every: int = 1, sample_fps: float | None = None
) -> FrameSource:
    """Any iterable of RGB uint8 (H, W, 3) arrays (a list, a numpy generator) as a FrameSource at ``fps``."""
    return _ArraySource(arrays, fps, every, sample_fps)
