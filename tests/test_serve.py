"""``maeum serve``: the inference API over real photos, its refusals, and the command as users start it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

import maeum.serve
from conftest import ASTRONAUT_FACE, HOPPER_FACE, jpeg_bytes
from maeum.analyzer import Analyzer
from maeum.serve import ServeLimits, create_server

KEY = "sk-test-key"


@pytest.fixture(scope="module")
def client(analyzer: Analyzer) -> Iterator[TestClient]:
    with TestClient(create_server(analyzer)) as c:
        yield c


def small(analyzer: Analyzer, **limits: int) -> TestClient:
    return TestClient(create_server(analyzer, ServeLimits(**limits)))


def concurrently(app, scenario):  # type: ignore[no-untyped-def]
    """Run ``scenario(client)``, a coroutine sending requests at once to ``app`` in one event loop."""

    async def run():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://maeum") as c:
            return await scenario(c)

    # In a thread of its own: after the browser tests, Playwright's loop may still run in this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def test_an_image_gets_the_faces_maeum_analyze_finds(client, analyzer, two_faces_jpeg) -> None:
    reply = client.post("/v1/analyze", content=two_faces_jpeg, headers={"Content-Type": "image/jpeg"})
    assert reply.status_code == 200
    faces = reply.json()
    from maeum.imageio import load_image

    expected = [face.to_dict() for face in analyzer.analyze(load_image(two_faces_jpeg))]
    assert faces == expected and len(faces) == 2
    assert {face["label"] for face in faces} <= set(analyzer.classifier.labels)
    for face in faces:
        assert set(face) >= {"rect", "label", "probs"} and abs(sum(face["probs"].values()) - 1) < 1e-3


def test_korean_labels_and_a_face_found_where_it_is(client, hopper) -> None:
    faces = client.post("/v1/analyze?lang=ko", content=jpeg_bytes(hopper)).json()
    assert len(faces) == 1
    x, y, w, _ = faces[0]["rect"]
    assert abs(x - HOPPER_FACE.x) < 25 and abs(y - HOPPER_FACE.y) < 25 and abs(w - HOPPER_FACE.w) < 40
    assert faces[0]["label"] in {"중립", "기쁨", "놀람", "슬픔", "분노", "혐오", "공포"}
    assert set(faces[0]["probs"]) == {"중립", "기쁨", "놀람", "슬픔", "분노", "혐오", "공포"}


def test_a_photo_without_a_face_gets_an_empty_list(client, no_face_jpeg) -> None:
    reply = client.post("/v1/analyze", content=no_face_jpeg)
    assert reply.status_code == 200 and reply.json() == []


def test_a_cropped_face_is_classified_whole(client, astronaut) -> None:
    f = ASTRONAUT_FACE
    crop = np.ascontiguousarray(astronaut[int(f.y) : int(f.y + f.h), int(f.x) : int(f.x + f.w)])
    faces = client.post("/v1/analyze?cropped=true", content=jpeg_bytes(crop)).json()
    assert len(faces) == 1 and faces[0]["detected"] is False and faces[0]["label"] == "happiness"
    x, y, w, h = faces[0]["rect"]  # the crop's centred square
    assert (x, w, h) == (0, crop.shape[1], crop.shape[1]) and abs(y - (crop.shape[0] - crop.shape[1]) / 2) <= 1


def test_a_batch_answers_each_image_in_order_and_a_bad_one_alone(client, selfie_jpeg, no_face_jpeg) -> None:
    files = [
        ("images", ("selfie.jpg", selfie_jpeg, "image/jpeg")),
        ("images", ("notes.jpg", b"this is not an image\n", "image/jpeg")),
        ("images", ("coffee.jpg", no_face_jpeg, "image/jpeg")),
        ("images", ("half.jpg", selfie_jpeg[: len(selfie_jpeg) // 3], "image/jpeg")),
    ]
    reply = client.post("/v1/analyze/batch?lang=ko", files=files)
    assert reply.status_code == 200
    answers = reply.json()
    assert [a["name"] for a in answers] == ["selfie.jpg", "notes.jpg", "coffee.jpg", "half.jpg"]
    single = client.post("/v1/analyze?lang=ko", content=selfie_jpeg).json()
    assert answers[0]["faces"] == single and single[0]["label"] == "기쁨"
    assert (
        answers[1]["error"]["error"] == "bad_image" and "notes.jpg: not an image file" in answers[1]["error"]["message"]
    )
    assert answers[2] == {"name": "coffee.jpg", "faces": []}
    assert answers[3]["error"]["error"] == "bad_image" and "corrupt or truncated" in answers[3]["error"]["message"]


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        (b"", 400, "no_image", "send an image file"),
        (b"this is not an image\n", 400, "bad_image", "the request body: not an image file"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 40, 400, "bad_image", "the request body:"),
    ],
)
def test_an_unreadable_body_is_refused_with_what_is_wrong(client, body, status, code, words) -> None:
    reply = client.post("/v1/analyze", content=body)
    assert reply.status_code == status, reply.text
    assert reply.json()["error"] == code and words in reply.json()["message"]


def test_a_body_over_the_limit_is_refused_declared_or_streamed(analyzer, selfie_jpeg) -> None:
    limit = len(selfie_jpeg) - 1
    with small(analyzer, max_bytes=limit) as c:
        declared = c.post("/v1/analyze", content=selfie_jpeg)
        assert declared.status_code == 413 and declared.json()["error"] == "too_large"
        assert f"{len(selfie_jpeg):,} bytes" in declared.json()["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
            for start in range(0, len(selfie_jpeg), 4096):
                yield selfie_jpeg[start : start + 4096]

        streamed = c.post("/v1/analyze", content=chunks())
        assert streamed.status_code == 413 and f"limit of {limit:,} bytes" in streamed.json()["message"]
        batch = c.post("/v1/analyze/batch", files=[("images", ("a.jpg", selfie_jpeg, "image/jpeg"))])
        assert batch.status_code == 413
    with small(analyzer, max_bytes=len(selfie_jpeg)) as c:  # at the limit: read
        assert c.post("/v1/analyze", content=selfie_jpeg).status_code == 200


def test_too_many_pixels_is_refused_before_decoding(analyzer, bad_files, selfie_jpeg) -> None:
    with small(analyzer, max_pixels=100_000) as c:
        reply = c.post("/v1/analyze", content=selfie_jpeg)
        assert reply.status_code == 413 and "(512x512 pixels, limit 100,000)" in reply.json()["message"]
    with small(analyzer, max_pixels=1_000_000) as c:
        reply = c.post("/v1/analyze", content=bad_files["bomb"].read_bytes())
        assert reply.status_code == 413 and reply.json()["error"] == "too_many_pixels"
        assert "image too large" in reply.json()["message"] and "limit 1,000,000" in reply.json()["message"]
        batch = c.post("/v1/analyze/batch", files=[("images", ("big.png", bad_files["bomb"].read_bytes()))])
        assert batch.status_code == 200 and batch.json()[0]["error"]["error"] == "too_many_pixels"


def test_a_batch_form_is_checked(analyzer, selfie_jpeg) -> None:
    with small(analyzer, max_images=2) as c:
        three = [("images", (f"{k}.jpg", selfie_jpeg, "image/jpeg")) for k in range(3)]
        too_many = c.post("/v1/analyze/batch", files=three)
        assert too_many.status_code == 400 and too_many.json()["error"] == "bad_form"
        assert "at most 2 images" in too_many.json()["message"]
        raw = c.post("/v1/analyze/batch", content=selfie_jpeg, headers={"Content-Type": "image/jpeg"})
        assert raw.status_code == 400 and raw.json()["error"] == "not_multipart"
        other = c.post("/v1/analyze/batch", files=[("image", ("a.jpg", selfie_jpeg, "image/jpeg"))])
        assert other.status_code == 400 and "unknown form field(s) image" in other.json()["message"]
        text = c.post("/v1/analyze/batch", files={"images": (None, "selfie.jpg")})
        assert text.status_code == 400 and "is text, not a file" in text.json()["message"]
        empty = c.post("/v1/analyze/batch", files=[("images", ("a.jpg", b"", "image/jpeg"))])
        assert empty.status_code == 200 and empty.json()[0]["error"]["message"] == "a.jpg: empty file"
        # the form's type is matched whole, and its other faults are named without the image count
        odd = c.post("/v1/analyze/batch", content=b"x", headers={"Content-Type": "multipart/form-dataX; boundary=b"})
        assert odd.status_code == 400 and odd.json()["error"] == "not_multipart"
        unbounded = c.post("/v1/analyze/batch", content=b"x", headers={"Content-Type": "multipart/form-data"})
        assert unbounded.status_code == 400 and "no boundary=" in unbounded.json()["message"]
        assert "at most" not in unbounded.json()["message"]
        part = b'--b\r\nContent-Disposition: form-data; name="images"; filename="a.jpg"\r\n\r\n' + selfie_jpeg
        unended = c.post(
            "/v1/analyze/batch",
            content=part + b"\r\n--c--\r\n",
            headers={"Content-Type": "multipart/form-data; boundary=b"},
        )
        assert unended.status_code == 400 and "closing boundary" in unended.json()["message"]


@pytest.mark.parametrize(
    ("query", "code"), [("lang=fr", "bad_lang"), ("cropped=maybe", "bad_cropped"), ("lang=", "bad_lang")]
)
def test_a_bad_option_is_refused(client, selfie_jpeg, query, code) -> None:
    reply = client.post(f"/v1/analyze?{query}", content=selfie_jpeg)
    assert reply.status_code == 400 and reply.json()["error"] == code


def test_unknown_paths_and_methods_answer_in_the_same_shape(client) -> None:
    missing = client.get("/v1/analyse")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = client.get("/v1/analyze")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    assert wrong.headers["allow"] == "POST"
    head = client.head("/healthz")  # what some load balancers' health checks send
    assert head.status_code == 200 and head.content == b""


def test_postscript_is_refused_without_running_ghostscript(client, monkeypatch) -> None:
    from PIL import EpsImagePlugin

    ran = []

    def ghostscript(*args: object, **kwargs: object) -> None:
        ran.append(args)
        raise OSError("Ghostscript ran")

    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: True)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", ghostscript)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
    reply = client.post("/v1/analyze", content=eps)
    assert reply.status_code == 400 and reply.json()["error"] == "bad_image"
    assert "PostScript (EPS) is not accepted" in reply.json()["message"]
    batch = client.post("/v1/analyze/batch", files=[("images", ("page.eps", eps))])
    assert batch.json()[0]["error"]["message"].startswith("page.eps: PostScript")
    assert ran == []


def test_a_busy_server_answers_503_and_stays_healthy(analyzer, monkeypatch, selfie_jpeg) -> None:
    entered, release = threading.Event(), threading.Event()
    analyze_batch = analyzer.analyze_batch

    def held(images):  # type: ignore[no-untyped-def]
        entered.set()
        release.wait(10)
        return analyze_batch(images)

    monkeypatch.setattr(analyzer, "analyze_batch", held)

    async def scenario(c: httpx.AsyncClient):  # type: ignore[no-untyped-def]
        first = asyncio.create_task(c.post("/v1/analyze", content=selfie_jpeg))
        while not entered.is_set():
            await asyncio.sleep(0.01)
        try:
            busy = await c.post("/v1/analyze/batch", files=[("images", ("a.jpg", selfie_jpeg))])
            health, model = await c.get("/healthz"), await c.get("/v1/model")
        finally:
            release.set()
        return await first, busy, health, model

    first, busy, health, model = concurrently(create_server(analyzer, ServeLimits(max_concurrent=1)), scenario)
    assert first.status_code == 200 and first.json()[0]["label"] == "happiness"
    assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
    assert busy.json() == {"error": "busy", "message": "the server has 1 requests in hand; retry in a moment"}
    assert health.status_code == 200 and model.status_code == 200


def test_a_body_sent_too_slowly_is_answered_408(analyzer, selfie_jpeg) -> None:
    async def trickle():  # type: ignore[no-untyped-def]
        yield selfie_jpeg[:100]
        await asyncio.sleep(30)  # a client that stalls: its place is given up after body_seconds
        yield selfie_jpeg[100:]

    async def scenario(c: httpx.AsyncClient):  # type: ignore[no-untyped-def]
        started = time.monotonic()
        reply = await c.post("/v1/analyze", content=trickle())
        return reply, time.monotonic() - started

    reply, took = concurrently(create_server(analyzer, ServeLimits(body_seconds=0.3)), scenario)
    assert reply.status_code == 408 and reply.json()["error"] == "timeout" and took < 5
    assert "did not arrive within 0.3 s" in reply.json()["message"]


def test_decoding_leaves_the_server_free_to_answer(analyzer, monkeypatch, selfie_jpeg) -> None:
    started, answered, seen = threading.Event(), threading.Event(), []
    load_image = maeum.serve.load_image

    def slow_load(*args, **kwargs):  # type: ignore[no-untyped-def]
        started.set()
        seen.append(answered.wait(5))  # a 100-megapixel PNG takes seconds to decode
        return load_image(*args, **kwargs)

    monkeypatch.setattr(maeum.serve, "load_image", slow_load)

    async def scenario(c: httpx.AsyncClient):  # type: ignore[no-untyped-def]
        analysis = asyncio.create_task(c.post("/v1/analyze", content=selfie_jpeg))
        while not started.is_set():
            await asyncio.sleep(0.01)
        health = await c.get("/healthz")
        answered.set()
        return health, await analysis

    health, analysis = concurrently(create_server(analyzer), scenario)
    assert health.status_code == 200 and analysis.status_code == 200
    assert seen == [True], "/healthz waited for the decoding"


def test_a_batch_is_decoded_and_analysed_a_group_at_a_time(analyzer, client, monkeypatch, selfie_jpeg) -> None:
    monkeypatch.setattr(maeum.serve, "_GROUP_PIXELS", 300_000)  # about one 512x512 photo
    calls: list[list[int]] = []
    analyze_batch = analyzer.analyze_batch

    def counted(images):  # type: ignore[no-untyped-def]
        calls.append([im.shape[0] * im.shape[1] for im in images])
        return analyze_batch(images)

    monkeypatch.setattr(analyzer, "analyze_batch", counted)
    files = [("images", (f"{k}.jpg", selfie_jpeg, "image/jpeg")) for k in range(5)]
    files.insert(2, ("images", ("bad.jpg", b"not an image", "image/jpeg")))
    answers = client.post("/v1/analyze/batch", files=files).json()
    assert [a["name"] for a in answers] == ["0.jpg", "1.jpg", "bad.jpg", "2.jpg", "3.jpg", "4.jpg"]
    assert answers[2]["error"]["error"] == "bad_image"
    single = client.post("/v1/analyze", content=selfie_jpeg).json()
    assert all(a["faces"] == single for k, a in enumerate(answers) if k != 2)
    assert calls[:-1] == [[512 * 512] * 2, [512 * 512] * 2, [512 * 512]], calls  # never all five at once


def test_the_model_endpoint_describes_what_answers(client) -> None:
    model = client.get("/v1/model").json()
    assert model["model"] == "ferplus-resnet-s" and model["detector"] == "retinaface"
    assert model["aligner"] == "similarity" and model["input"] == {"size": 64, "color": "gray"}
    assert model["labels"][:2] == ["neutral", "happiness"] and model["labels_ko"][:2] == ["중립", "기쁨"]
    assert model["limits"]["max_images"] == 32


def test_an_api_key_of_any_characters_matches_as_curl_sends_it(analyzer) -> None:
    key = "우리 집 열쇠 key"  # curl sends it as UTF-8; HTTP servers read header bytes as Latin-1
    with TestClient(create_server(analyzer, api_key=key)) as c:
        assert c.get("/v1/model", headers={"Authorization": f"Bearer {key}".encode()}).status_code == 200
        assert c.get("/v1/model", headers={"Authorization": "Bearer 우리 집 열쇠".encode()}).status_code == 401
        latin1 = f"Bearer {key}".encode().decode("latin-1").encode()  # the decoded text, re-encoded: not the key
        assert c.get("/v1/model", headers={"Authorization": latin1}).status_code == 401


def test_an_api_key_is_needed_when_set(analyzer, selfie_jpeg) -> None:
    with TestClient(create_server(analyzer, api_key=KEY)) as c:
        assert c.get("/healthz").json() == {"ok": True}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            reply = c.post("/v1/analyze", content=selfie_jpeg, headers=headers)
            assert reply.status_code == 401 and reply.headers["www-authenticate"] == "Bearer"
            assert reply.json()["error"] == "unauthorized"
        assert c.get("/v1/model").status_code == 401
        ok = c.post("/v1/analyze", content=selfie_jpeg, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and ok.json()[0]["label"] == "happiness"


def test_web_pages_named_may_call_it(analyzer) -> None:
    with TestClient(create_server(analyzer, allow_origins=("https://diary.example",))) as c:
        asked = {"Origin": "https://diary.example", "Access-Control-Request-Method": "POST"}
        preflight = c.options("/v1/analyze", headers=asked)
        assert preflight.headers["access-control-allow-origin"] == "https://diary.example"
        other = c.options("/v1/analyze", headers=asked | {"Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in other.headers
    with TestClient(create_server(analyzer)) as c:  # none named: no page's script may read the answers
        reply = c.get("/healthz", headers={"Origin": "https://diary.example"})
        assert "access-control-allow-origin" not in reply.headers


# ------------------------------------------------------------------------------------------------
# the command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_maeum_serve_answers_over_http_and_stops_on_ctrl_c(tmp_path, selfie_jpeg) -> None:
    port = free_port()
    (tmp_path / "key").write_text(KEY + "\n")
    env = {k: v for k, v in os.environ.items() if k != "MAEUM_SERVE_API_KEY"}
    cmd = [sys.executable, "-m", "maeum", "serve", "--port", str(port), "--api-key-file", str(tmp_path / "key")]
    limits = ["--max-concurrent", "2", "--shutdown-timeout", "1"]
    server = subprocess.Popen([*cmd, "--threads", "2", *limits], env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    sockets: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5) as r:
                    assert json.load(r) == {"ok": True}
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "the server did not start within 60 s"
                time.sleep(0.3)
        ask = urllib.request.Request(f"{base}/v1/analyze?lang=ko", data=selfie_jpeg, method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(ask, timeout=30)
        assert refused.value.code == 401
        ask.add_header("Authorization", f"Bearer {KEY}")
        with urllib.request.urlopen(ask, timeout=30) as r:
            faces = json.load(r)
        assert len(faces) == 1 and faces[0]["label"] == "기쁨"
        # Idle keep-alive connections, more than --max-concurrent, are not requests: no 503.
        sockets += [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        time.sleep(0.2)
        with urllib.request.urlopen(ask, timeout=30) as r:
            assert r.status == 200
        # A client sending its body a byte a second: Ctrl-C waits --shutdown-timeout for it, not for ever.
        slow = socket.create_connection(("127.0.0.1", port))
        sockets.append(slow)
        head = f"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: 99\r\n\r\n"
        slow.sendall(head.encode() + b"\xff")
        time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGINT)
        stopping = time.monotonic()
        try:
            code = server.wait(timeout=30)
        finally:
            server.kill()
            for s in sockets:
                s.close()
    stopped = time.monotonic() - stopping
    err = server.stderr.read() if server.stderr else ""
    assert code == 0, err
    assert stopped < 15, f"Ctrl-C took {stopped:.0f} s"
    assert f"maeum serve on http://127.0.0.1:{port} (model ferplus-resnet-s" in err
    assert "without an API key" not in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--api-key-file", "{tmp}/empty"], "is empty; write the key in it"),
        (["--api-key-file", "{tmp}/two-lines"], "holds a line break or control character"),
        (["--api-key-file", "{tmp}/none"], "cannot read it"),
        (["--model", "{tmp}/none.onnx"], "none.onnx"),
        (["--detector", "nope"], "unknown detector 'nope'"),
    ],
)
def test_the_command_refuses_bad_settings_in_one_line(capsys, tmp_path, options, message) -> None:
    from maeum.cli import main

    (tmp_path / "empty").write_text("\n")
    (tmp_path / "two-lines").write_text("first half\nsecond half\n")
    options = [o.replace("{tmp}", str(tmp_path)) for o in options]
    assert main(["serve", "--port", str(free_port()), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith("maeum: ") and err.count("\n") == 1 and message in err, err


def test_the_command_refuses_a_port_in_use(capsys) -> None:
    from maeum.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1 port {port}" in capsys.readouterr().err
