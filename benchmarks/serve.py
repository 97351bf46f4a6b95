"""The inference API server: what HTTP costs over analysing in this process, one client and several.

    python benchmarks/serve.py [--seconds 10] [--clients 4] [--threads 2]

Starts ``maeum serve`` as a subprocess on loopback and sends it the README's photo
(examples/astronaut.jpg, 512x512, one face) as JPEG bytes, again and again for ``--seconds`` each:

- in this process: ``load_image(bytes)`` then ``Analyzer.analyze``, the floor the server adds to;
- ``POST /v1/analyze``, one client on a keep-alive connection, then ``--clients`` clients at once;
- ``POST /v1/analyze/batch`` with 16 copies a request, one client.

It prints images per second and the median and 95th-percentile time per request. Each answer is
checked to hold the one face, with the label the in-process run gives. The server and this client
share the machine's cores, so the client's own work is part of the numbers.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import REPO, cpu_description, out, positive, run, table

PHOTO = REPO / "examples" / "astronaut.jpg"
BATCH = 16


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=positive(float), default=10.0, help="time per measure (default 10)")
    p.add_argument("--clients", type=positive(int), default=4, help="clients at once in the concurrent row (default 4)")
    p.add_argument("--threads", type=positive(int), default=2, help="onnxruntime threads, here and in the server")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    from maeum import Analyzer, load_image

    photo = PHOTO.read_bytes()
    with Analyzer(threads=args.threads) as analyzer:
        expected = analyzer.analyze(load_image(photo))[0].emotion.label
        here = _measure(lambda: _one_face(analyzer.analyze(load_image(photo)), expected), args.seconds, 1)
    rows = [["in this process (decode + analyze)", *_row(here, 1)]]
    with _server(args.threads) as base, httpx.Client(base_url=base, timeout=60) as client:

        def post() -> None:
            reply = client.post("/v1/analyze", content=photo)
            reply.raise_for_status()
            faces = reply.json()
            assert len(faces) == 1 and faces[0]["label"] == expected, faces

        rows.append(["POST /v1/analyze, 1 client", *_row(_measure(post, args.seconds, 1), 1)])
        clients = [httpx.Client(base_url=base, timeout=60) for _ in range(args.clients)]
        local = threading.local()
        pool = iter(clients)
        lock = threading.Lock()

        def post_from_own_client() -> None:
            if not hasattr(local, "client"):
                with lock:
                    local.client = next(pool)
            reply = local.client.post("/v1/analyze", content=photo)
            reply.raise_for_status()
            assert reply.json()[0]["label"] == expected

        try:
            timings = _measure(post_from_own_client, args.seconds, args.clients)
        finally:
            for c in clients:
                c.close()
        rows.append([f"POST /v1/analyze, {args.clients} clients at once", *_row(timings, 1)])
        files = [("images", (f"{k}.jpg", photo, "image/jpeg")) for k in range(BATCH)]

        def post_batch() -> None:
            reply = client.post("/v1/analyze/batch", files=files)
            reply.raise_for_status()
            answers = reply.json()
            assert len(answers) == BATCH and all(a["faces"][0]["label"] == expected for a in answers)

        rows.append(
            [f"POST /v1/analyze/batch, {BATCH} images a request", *_row(_measure(post_batch, args.seconds, 1), BATCH)]
        )
    out(f"CPU: {cpu_description()}; {args.threads} onnxruntime threads; photo {PHOTO.name}, label {expected}")
    out()
    out(table(rows, ["way", "images/s", "median ms a request", "p95 ms a request"]))


def _one_face(results: list, expected: str) -> None:
    assert len(results) == 1 and results[0].emotion.label == expected


def _measure(call: Callable[[], None], seconds: float, parallel: int) -> tuple[list[float], float]:
    """Each call's time, over ``seconds`` of ``parallel`` threads calling (after one untimed call each), and
    the wall time."""
    times: list[float] = []
    stop = time.perf_counter() + seconds

    def loop() -> None:
        call()  # warm: each thread's first call opens its connection
        while time.perf_counter() < stop:
            t = time.perf_counter()
            call()
            times.append(time.perf_counter() - t)

    start = time.perf_counter()
    threads = [threading.Thread(target=loop) for _ in range(parallel)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, time.perf_counter() - start


def _row(measured: tuple[list[float], float], images_each: int) -> list[str]:
    times, wall = measured
    p95 = sorted(times)[max(0, round(0.95 * len(times)) - 1)]
    return [f"{len(times) * images_each / wall:,.1f}", f"{statistics.median(times) * 1000:.1f}", f"{p95 * 1000:.1f}"]


class _server:
    """``maeum serve`` on a free loopback port, stopped with Ctrl-C at the end."""

    def __init__(self, threads: int) -> None:
        self.threads = threads

    def __enter__(self) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        cmd = [sys.executable, "-m", "maeum", "serve", "--port", str(port), "--threads", str(self.threads)]
        env = {k: v for k, v in os.environ.items() if k != "MAEUM_SERVE_API_KEY"}
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=2).raise_for_status()
                return base
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.__exit__()
                    raise SystemExit(f"maeum serve did not start: {' '.join(cmd)}") from None
                time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


if __name__ == "__main__":
    run(main)
