"""Dictation transcribed on the server: Korean speech (spoken by espeak-ng) recorded as WAV or as the
WebM/Opus a browser's MediaRecorder makes, turned into words by the packaged Whisper base; and the
refusals: no login, a forged token, no audio, unreadable audio, too large, too long, no model.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import wave
from collections.abc import Iterator

import numpy as np
import pytest

from maeum.app.errors import UserError
from maeum.app.speech import SAMPLE_RATE, Recognizer, _packaged_whisper, decode_audio
from maeum.errors import MaeumError
from test_app_api import Visitor

# espeak-ng's Korean voice is barely intelligible: "행복해요" was heard as "행보여" or "행복해요" depending on
# the CPU's int8 kernels. This phrase was heard exactly with int8 and float32, 1 and 2 threads, WAV and WebM.
SPOKEN = "사랑해요. 고마워요."
HEARD = ("사랑해요", "고마워요")
# Through Chromium's microphone (tests/test_app_browser.py) the recording is resampled and re-encoded, and
# there "사랑해요" came back as "사과한 채요" while "행복해요" was heard.
BROWSER_SPOKEN = "행복해요. 고마워요."
BROWSER_HEARD = "행복해요"
MAX_SECONDS = 10.0
MAX_BYTES = 1024 * 1024


def speak(text: str) -> bytes:
    """``text`` read by espeak-ng's Korean voice, as a 22.05 kHz WAV."""
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng is not installed (tools/test_services.sh installs it)")
    done = subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "--stdout", text], capture_output=True, check=True)
    return done.stdout


def wav_of(samples: np.ndarray, rate: int = SAMPLE_RATE) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype(np.int16).tobytes())
    return buffer.getvalue()


def samples_of(wav: bytes) -> tuple[int, np.ndarray]:
    """The sample rate and 16-bit mono samples of a WAV, read to its end (espeak-ng streams a header
    without lengths)."""
    with wave.open(io.BytesIO(wav)) as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), np.int16)


def webm_opus(wav: bytes) -> bytes:
    """The WAV re-encoded the way Chromium's MediaRecorder records: Opus at 48 kHz in WebM."""
    import av

    rate, pcm = samples_of(wav)
    out = io.BytesIO()
    with av.open(out, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=48_000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
        for piece in [*resampler.resample(frame), *resampler.resample(None), None]:
            for packet in stream.encode(piece):
                container.mux(packet)
    return out.getvalue()


@pytest.fixture(scope="module")
def speech() -> bytes:
    return speak(SPOKEN)


@pytest.fixture(scope="module")
def app(analyzer, tmp_path_factory) -> Iterator:
    """One diary on SQLite for the module, so the model loads once."""
    from maeum.app.settings import AppSettings
    from maeum.app.web import create_app

    data = tmp_path_factory.mktemp("dictation")
    settings = AppSettings(
        data_dir=data,
        database_url=f"sqlite:///{data / 'diary.db'}",
        max_audio_seconds=MAX_SECONDS,
        max_audio_bytes=MAX_BYTES,
    )
    app = create_app(settings, analyzer)
    yield app
    app.state.diary.close()


@pytest.fixture(scope="module")
def visitor(app) -> Visitor:
    v = Visitor(app)
    v.signup("dictator")
    return v


def dictate(v: Visitor, audio: bytes | None, csrf: str | None = None, name: str = "dictation.webm", **form: str):
    files = {"audio": (name, audio, "audio/webm")} if audio is not None else None
    data = {"csrf": v.csrf() if csrf is None else csrf, "lang": "ko", **form}
    return v.client.post("/api/dictation", data=data, files=files)


@pytest.mark.parametrize("container", ["wav", "webm"])
def test_korean_speech_becomes_words(visitor, speech, container) -> None:
    audio = speech if container == "wav" else webm_opus(speech)
    r = dictate(visitor, audio)
    assert r.status_code == 200, r.text
    text = r.json()["text"]
    assert all(word in text for word in HEARD), text


def test_the_new_entry_page_offers_the_server(visitor) -> None:
    page = visitor.client.get("/posts/new").text
    assert 'data-server="1"' in page and f'data-max-seconds="{int(MAX_SECONDS)}"' in page


def test_silence_gives_no_words(visitor) -> None:
    r = dictate(visitor, wav_of(np.zeros(3 * SAMPLE_RATE)))
    assert r.status_code == 200 and r.json() == {"text": ""}


def test_bad_recordings_are_refused_with_a_reason(app, visitor, speech, selfie_jpeg) -> None:
    cases = {
        "no file": (None, 400, "audio_unreadable"),
        "empty": (b"", 400, "audio_unreadable"),
        "not audio": (b"PK\x03\x04 this is a zip, not a recording", 400, "audio_unreadable"),
        "truncated header": (webm_opus(speech)[:40], 400, "audio_unreadable"),
        "a photo": (selfie_jpeg, 400, "audio_unreadable"),
        "too long": (wav_of(np.zeros(int(MAX_SECONDS + 2) * SAMPLE_RATE)), 413, "audio_too_long"),
        "too large": (b"\0" * (MAX_BYTES + 1), 413, "audio_too_large"),
    }
    for case, (audio, status, key) in cases.items():
        r = dictate(visitor, audio)
        assert (r.status_code, r.json()["error"]) == (status, key), case
    assert "초까지" in dictate(visitor, cases["too long"][0]).json()["message"]  # Korean, for the page


def test_dictation_needs_a_login_and_the_page_token(app, visitor, speech) -> None:
    assert Visitor(app).client.post("/api/dictation", files={"audio": ("a.wav", speech)}).status_code == 401
    r = dictate(visitor, speech, csrf="forged")
    assert r.status_code == 403 and r.json()["error"] == "csrf_failed"


def test_a_server_without_the_speech_extra_says_so(analyzer, tmp_path, monkeypatch) -> None:
    """As when faster-whisper is not installed: the page offers no server, the API answers 503."""
    from maeum.app.settings import AppSettings
    from maeum.app.web import create_app

    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # how Python marks a module as not importable
    app = create_app(AppSettings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'd.db'}"), analyzer)
    try:
        v = Visitor(app)
        v.signup("nomodel")
        assert 'data-server=""' in v.client.get("/posts/new").text
        r = dictate(v, wav_of(np.zeros(SAMPLE_RATE)))
        assert r.status_code == 503 and r.json()["error"] == "dictation_unavailable"
    finally:
        app.state.diary.close()


def test_a_whisper_folder_can_replace_the_packaged_model(tmp_path, speech) -> None:
    for name, data in _packaged_whisper().items():
        (tmp_path / name).write_bytes(data)
    assert Recognizer(tmp_path).transcribe(speech).split() == list(HEARD)
    (tmp_path / "model.bin").write_bytes(b"half a model")  # damaged: refused when it loads, as unavailable
    with pytest.raises(UserError) as refused:
        Recognizer(tmp_path).transcribe(speech)
    assert (refused.value.key, refused.value.status) == ("dictation_unavailable", 503)
    (tmp_path / "tokenizer.json").unlink()
    with pytest.raises(MaeumError, match=r"not a CTranslate2 Whisper folder: it has no tokenizer\.json"):
        Recognizer(tmp_path)
    with pytest.raises(MaeumError, match=r"compute type 'float64' is not one of int8, int8_float32, int16, float32"):
        Recognizer(compute_type="float64")


def test_the_app_refuses_a_speech_model_that_is_not_one(analyzer, tmp_path) -> None:
    from maeum.app.settings import AppSettings
    from maeum.app.web import create_app

    settings = AppSettings(data_dir=tmp_path, speech_model=tmp_path / "photos")
    with pytest.raises(MaeumError, match=r"it has no model\.bin, tokenizer\.json"):
        create_app(settings, analyzer)


def test_decoding_stops_at_the_limit() -> None:
    long = wav_of(np.zeros(5 * SAMPLE_RATE))
    assert decode_audio(long, 6.0).shape == (5 * SAMPLE_RATE,)
    with pytest.raises(UserError) as refused:
        decode_audio(long, 2.0)
    assert refused.value.status == 413
    stereo_44k = io.BytesIO()
    with wave.open(stereo_44k, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(44_100)
        w.writeframes(np.zeros((44_100, 2), np.int16).tobytes())
    assert decode_audio(stereo_44k.getvalue(), 6.0).shape == (SAMPLE_RATE,)  # 1 s, mono, 16 kHz
