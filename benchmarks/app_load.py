"""Diary app under load: concurrent users posting for a while lose no post and see no error.

    python benchmarks/app_load.py [--users 20] [--duration 60] [--size 1280x960]
    python benchmarks/app_load.py --postgres-admin-url "$MAEUM_TEST_POSTGRES_URL"  # after tools/test_services.sh

Starts ``maeum app`` as a subprocess on loopback (temporary data folder; SQLite unless
``--database-url`` or ``--postgres-admin-url`` is given) and signs up ``--users`` users. Then one
thread per user, each with its own HTTP client (cookies, one keep-alive connection), posts the
same real one-face photo (scikit-image's astronaut as a ``--size`` JPEG) again and again for
``--duration`` seconds, each post with its own text ("load worker 7 post 12"); a request started
before the deadline runs to its end. A request counts as saved when it is answered 303 to
/posts/{id}; anything else (another status, a redirect elsewhere, a timeout after ``--timeout``
seconds, a dropped connection) is an error. Afterwards every user's GET /api/posts must hold each
saved post exactly once, under the id it was answered with and with its text, and nothing else.
PASS: no errors, no lost posts, no duplicates, no unexpected posts; the exit code is 1 otherwise.

The line before the verdict splits the machine's CPU time over the timed part between the server,
this client and other processes: the server shares the cores with everything else running, so a
run where other processes used much of them (a warning is logged) is slower than the app alone.
"""

from __future__ import annotations

import argparse
import html
import logging
import re
import secrets
import statistics
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _app_server import (
    POST_URL,
    CpuUse,
    DiaryServer,
    add_database_options,
    database_kind,
    database_url,
    parse_size,
    percentile,
    post_photo,
    selfie_jpeg,
    sign_up,
)
from _common import at_least_zero, out, positive, run, table

log = logging.getLogger("app_load")

ERROR_TEXT = re.compile(r'<p class="error"[^>]*>([^<]*)</p>')
LATENCY = (statistics.median, lambda v: percentile(v, 90), max)


@dataclass
class Attempt:
    worker: int
    text: str
    seconds: float
    post_id: int | None = None  # set when the post was answered 303 to /posts/{id}
    error: str = ""


@dataclass
class Check:
    lost: list[str]  # saved attempts missing from /api/posts (or under another id or text)
    duplicates: list[str]  # texts stored more than once
    unexpected: list[str]  # stored posts no saved attempt accounts for (e.g. saved after a timeout)
    stored: int


def describe(r: httpx.Response) -> str:
    """An answer other than 303 to /posts/{id}: its status, where it redirects, or the page's error message."""
    if r.is_redirect:
        return f"HTTP {r.status_code} -> {r.headers.get('location', '').split('?')[0].rsplit('/', 1)[0]}/..."
    m = ERROR_TEXT.search(r.text)
    return f"HTTP {r.status_code}" + (f": {html.unescape(m.group(1)).strip()}" if m else "")


class Worker(threading.Thread):
    """One user: its own client (cookies, one keep-alive connection), posting until ``deadline``."""

    run_id = secrets.token_hex(4)  # usernames stay unique when --database-url is reused

    def __init__(self, index: int, base_url: str, jpeg: bytes, timeout_s: float, gate: threading.Event) -> None:
        super().__init__(name=f"load-worker-{index}", daemon=True)
        self.index, self.jpeg, self.gate = index, jpeg, gate
        self.client = httpx.Client(base_url=base_url, timeout=timeout_s)
        self.csrf = ""
        self.attempts: list[Attempt] = []
        self.deadline = 0.0

    def sign_up(self) -> None:
        self.csrf = sign_up(self.client, f"load-{self.index:03d}-{self.run_id}")

    def run(self) -> None:
        self.gate.wait()
        n = 0
        while time.perf_counter() < self.deadline:
            text = f"load worker {self.index} post {n}"
            n += 1
            t = time.perf_counter()
            try:
                r = post_photo(self.client, self.jpeg, text, self.csrf)
            except Exception as e:  # a timeout or a dropped connection is a result here, not a crash
                self.attempts.append(
                    Attempt(self.index, text, time.perf_counter() - t, error=f"{type(e).__name__}: {e}")
                )
                continue
            seconds = time.perf_counter() - t
            m = POST_URL.match(r.headers.get("location", ""))
            if r.status_code == 303 and m:
                self.attempts.append(Attempt(self.index, text, seconds, post_id=int(m.group(1))))
            else:
                self.attempts.append(Attempt(self.index, text, seconds, error=describe(r)))

    def check(self) -> Check:
        """Compare what this user's client believes it saved with what /api/posts holds."""
        r = self.client.get("/api/posts")
        r.raise_for_status()
        stored = r.json()
        texts = Counter(p["text"] for p in stored)
        by_id = {p["id"]: p["text"] for p in stored}
        saved = {a.text: a.post_id for a in self.attempts if a.post_id is not None}
        lost = [f"{t} (id {i})" for t, i in saved.items() if by_id.get(i) != t]
        duplicates = [f"{t} x{n}" for t, n in texts.items() if n > 1]
        unexpected = [f"{p['text']} (id {p['id']})" for p in stored if saved.get(p["text"]) != p["id"]]
        return Check(lost, duplicates, unexpected, len(stored))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--users", type=positive(int), default=20, help="concurrent users, one thread each (default: 20)"
    )
    parser.add_argument("--duration", type=positive(float), default=60.0, help="seconds of posting (default: 60)")
    parser.add_argument("--size", type=parse_size, default=(1280, 960), help="photo size (default: 1280x960)")
    parser.add_argument("--quality", type=int, default=92, help="JPEG quality (default: 92)")
    parser.add_argument(
        "--noise", type=at_least_zero(float), default=5.0, help="sensor-like noise, grey levels (default: 5)"
    )
    parser.add_argument("--timeout", type=positive(float), default=60.0, help="seconds before a request is an error")
    add_database_options(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="app_load: %(message)s")
    for name in ("httpx", "httpcore", "PIL"):
        logging.getLogger(name).setLevel(logging.WARNING)

    w, h = args.size
    jpeg = selfie_jpeg(w, h, args.quality, args.noise)
    with database_url(args) as url, DiaryServer(url) as server:
        gate = threading.Event()
        workers = [Worker(i, server.base_url, jpeg, args.timeout, gate) for i in range(args.users)]
        try:
            t = time.perf_counter()
            for worker in workers:
                worker.sign_up()
            log.info(
                "signed up %d users in %.1f s; posting for %g s", args.users, time.perf_counter() - t, args.duration
            )
            for worker in workers:
                worker.start()
            cpu = CpuUse(server.pid)
            start = time.perf_counter()
            for worker in workers:
                worker.deadline = start + args.duration
            gate.set()
            for worker in workers:
                worker.join()
            elapsed = time.perf_counter() - start
            cpu_line = cpu.report()
            log.info("posting done in %.1f s; checking every user's posts", elapsed)
            checks = [worker.check() for worker in workers]
        finally:
            for worker in workers:
                worker.client.close()
        server_errors = server.error_lines()
        db = database_kind(url)

    attempts = [a for worker in workers for a in worker.attempts]
    saved = [a for a in attempts if a.post_id is not None]
    errors = [a for a in attempts if a.post_id is None]
    lost = [x for c in checks for x in c.lost]
    duplicates = [x for c in checks for x in c.duplicates]
    unexpected = [x for c in checks for x in c.unexpected]
    latency = [a.seconds for a in saved] or [float("nan")]
    per_user = [len(worker.attempts) for worker in workers]
    passed = bool(saved) and not errors and not lost and not duplicates and not unexpected

    out(f"database: {db}")
    out(f"photo: {w}x{h} JPEG, {len(jpeg) / 1e6:.2f} MB; request timeout {args.timeout:g} s\n")
    rows = [
        ["users (concurrent)", args.users],
        ["posting for (s, until the last request ended)", f"{args.duration:g} ({elapsed:.1f})"],
        ["posts attempted", len(attempts)],
        ["saved (303 -> /posts/{id})", len(saved)],
        ["request errors", len(errors)],
        ["lost posts", len(lost)],
        ["duplicate posts", len(duplicates)],
        ["unexpected posts (stored, not answered as saved)", len(unexpected)],
        ["posts stored (all users, /api/posts)", sum(c.stored for c in checks)],
        ["throughput (saved posts/s)", f"{len(saved) / elapsed:.2f}"],
        ["latency of saved posts, median / p90 / max (s)", " / ".join(f"{f(latency):.2f}" for f in LATENCY)],
        ["posts per user, min / max", f"{min(per_user)} / {max(per_user)}"],
        ["error or traceback lines in the server log", len(server_errors)],
    ]
    out(table(rows, ["measure", "value"]))
    details = {
        "errors": [a.error for a in errors],
        "lost": lost,
        "duplicates": duplicates,
        "unexpected": unexpected,
        "server log": server_errors,
    }
    for what, items in details.items():
        if items:
            out(f"\n{what} ({len(items)}):")
            for item, n in Counter(items).most_common(10):
                out(f"  {n} x {item}")
    out(f"\n{cpu_line}")
    verdict = "PASS" if passed else "FAIL"
    out(
        f"\n{verdict}: {args.users} concurrent users posting for {args.duration:g} s: {len(errors)} request errors, "
        f"{len(lost)} lost, {len(duplicates)} duplicated, {len(unexpected)} unexpected posts"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    run(main)
