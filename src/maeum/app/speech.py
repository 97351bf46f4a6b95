"""Server-side text-to-speech for browsers without a Korean voice: espeak-ng, offline, as WAV."""

from __future__ import annotations

import logging
import shutil
import subprocess

from maeum.app.errors import UserError

log = logging.getLogger(__name__)

MAX_SPEECH_CHARS = 2000
VOICES = {"ko": "ko", "en": "en"}


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
