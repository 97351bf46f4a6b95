"""Video: frame sources, face tracking with smoothed emotions, and streaming outputs.

>>> with Analyzer() as analyzer, open_video("clip.mp4", every=2) as source:
...     for result in VideoAnalyzer(analyzer).run(source):
...         for f in result.faces:
...             print(result.time_s, f.track_id, f.smoothed.label)

Everything streams: a source holds one decoded frame, the tracker a few per-face windows and the
outputs write as they go, so a two-hour file needs the memory of a two-minute one.
"""

from maeum.errors import VideoError
from maeum.video.sinks import AnnotatedVideo, CsvTimeline, JsonlTimeline, LiveWindow, Sink, TimelinePlot, draw_faces
from maeum.video.sources import Frame, FrameSource, frames_from_arrays, open_camera, open_video
from maeum.video.tracking import FrameResult, TrackedFace, VideoAnalyzer

__all__ = [
    "AnnotatedVideo",
    "CsvTimeline",
    "Frame",
    "FrameResult",
    "FrameSource",
    "JsonlTimeline",
    "LiveWindow",
    "Sink",
    "TimelinePlot",
    "TrackedFace",
    "VideoAnalyzer",
    "VideoError",
    "draw_faces",
    "frames_from_arrays",
    "open_camera",
    "open_video",
]
