"""Analysing many images over worker processes or a Ray cluster (``maeum analyze --workers/--engine``).

This process reads the files and sends their bytes, a chunk at a time, to workers that each hold
one Analyzer; so a Ray cluster's machines need no access to the files. Answers come back as
chunks finish and are put back in input order. At most two chunks per worker are in flight
(``maeum.data.engine``), so memory does not grow with the number of images. What the workers log
(a decoder's warning about an image) comes back with their answers and is logged here, where the
command's log handler writes it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from maeum.analyzer import Analyzer
from maeum.errors import ImageError
from maeum.imageio import DEFAULT_MAX_PIXELS, check_file, load_image
from maeum.results import FaceResult

CHUNK_IMAGES, CHUNK_BYTES = 16, 32 * 1024 * 1024

# One input's answer: its name, and its faces or the message of what went wrong.
Answer = tuple[str, list[FaceResult] | str]
# A log record of a worker's: its logger's name, level and message.
Logged = tuple[str, int, str]


@dataclass(frozen=True)
class AnalyzerSpec:
    """How each worker builds its Analyzer (the arguments of ``Analyzer``), and the pixel limit."""

    detector: str | None
    model: str
    aligner: str
    detector_options: tuple[tuple[str, object], ...] = field(default_factory=tuple)
    threads: int | None = 1
    whole_image_fallback: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS


def analyze_files(
    spec: AnalyzerSpec,
    inputs: Iterable[tuple[str, Path | None, str]],
    *,
    engine: str = "local",
    workers: int = 2,
    ray_address: str | None = None,
) -> Iterator[Answer]:
    """Yield ``(name, faces or error)`` for every input of ``expand_paths`` (``(arg, path, error)``;
    a None path is an input that failed to expand), in input order. No more local worker processes
    start than there are chunks (one chunk is analysed in this process): each would load the models
    for nothing."""
    from maeum.data.engine import run_jobs

    inputs = list(inputs)
    if engine == "local":
        workers = min(workers, math.ceil(len(inputs) / CHUNK_IMAGES))
    done: dict[int, tuple[list[Answer], list[Logged]]] = {}
    following = 0
    for index, answers, logged in run_jobs(analyze_chunk, _chunks(spec, inputs), engine, workers, ray_address):
        done[index] = answers, logged
        while following in done:
            answers, logged = done.pop(following)
            for name, level, message in logged:
                logging.getLogger(name).log(level, "%s", message)
            yield from answers
            following += 1


def _chunks(
    spec: AnalyzerSpec, inputs: Iterable[tuple[str, Path | None, str]]
) -> Iterator[tuple[AnalyzerSpec, int, list[tuple[str, bytes, str]]]]:
    """Jobs of up to CHUNK_IMAGES files (CHUNK_BYTES bytes): ``(spec, index, [(name, data, error)])``."""
    chunk: list[tuple[str, bytes, str]] = []
    size = index = 0
    for arg, path, error in inputs:
        if path is None:
            chunk.append((arg, b"", error))
        else:
            try:
                data = check_file(path, "an image file", ImageError).read_bytes()
                chunk.append((str(path), data, ""))
                size += len(data)
            except ImageError as e:
                chunk.append((str(path), b"", str(e)))
            except OSError as e:
                chunk.append((str(path), b"", f"{path}: cannot read it ({e.strerror or e})"))
        if len(chunk) >= CHUNK_IMAGES or size >= CHUNK_BYTES:
            yield spec, index, chunk
            chunk, size, index = [], 0, index + 1
    if chunk:
        yield spec, index, chunk


def analyze_chunk(
    job: tuple[AnalyzerSpec, int, list[tuple[str, bytes, str]]],
) -> tuple[int, list[Answer], list[Logged]]:
    """A worker's job: decode a chunk's images and analyse them in one batch. Returns the chunk's
    index, its answers, and what maeum logged meanwhile (to be logged by the process that asked)."""
    spec, index, items = job
    with _kept_logs() as logged:
        analyzer = _analyzer(spec)
        answers: list[Answer] = []
        images = []
        for name, data, error in items:
            if error:
                answers.append((name, error))
                continue
            try:
                images.append(load_image(data, max_pixels=spec.max_pixels, name=name))
                answers.append((name, []))
            except ImageError as e:
                answers.append((name, str(e)))
        found = iter(analyzer.analyze_batch(images) if images else [])
        answers = [(name, next(found) if isinstance(faces, list) else faces) for name, faces in answers]
    return index, answers, logged


class _Keeper(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[Logged] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.name, record.levelno, record.getMessage()))


@contextlib.contextmanager
def _kept_logs() -> Iterator[list[Logged]]:
    """maeum's log records, kept instead of written: a worker process has no log handler of its own
    (Python's last resort would print them bare on stderr, through any progress bar; Ray's are not
    shown at all)."""
    logger = logging.getLogger("maeum")
    keeper = _Keeper()
    level, propagate = logger.level, logger.propagate
    logger.addHandler(keeper)
    logger.setLevel(logging.DEBUG)  # the asking process's level decides what is shown
    logger.propagate = False
    try:
        yield keeper.records
    finally:
        logger.removeHandler(keeper)
        logger.setLevel(level)
        logger.propagate = propagate


@functools.cache
def _analyzer(spec: AnalyzerSpec) -> Analyzer:
    """The worker process's Analyzer for ``spec``, built once."""
    return Analyzer(
        spec.detector,
        spec.model,
        aligner=spec.aligner,
        detector_options=dict(spec.detector_options),
        threads=spec.threads,
        whole_image_fallback=spec.whole_image_fallback,
    )
