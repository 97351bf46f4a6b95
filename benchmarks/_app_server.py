"""Shared helpers for the diary app benchmarks: the server as a subprocess, a throwaway
PostgreSQL database, signing up, and a real one-face selfie as JPEG bytes."""

from __future__ import annotations

import argparse
import io
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')
POST_URL = re.compile(r"^/posts/(\d+)\?new=1$")
PASSWORD = "bench-password-1"


def add_database_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--database-url",
        help="SQLAlchemy URL the server uses as is (default: SQLite in the server's temporary data folder)",
    )
    group.add_argument(
        "--postgres-admin-url",
        help="PostgreSQL URL of a role allowed to CREATE DATABASE (e.g. $MAEUM_TEST_POSTGRES_URL from "
        "tools/test_services.sh): the benchmark creates a fresh database there and drops it at the end",
    )


@contextmanager
def database_url(args: argparse.Namespace) -> Iterator[str | None]:
    """The URL the server should use: ``--database-url``, a fresh database on ``--postgres-admin-url``,
    or None (the server's default SQLite file)."""
    if args.postgres_admin_url:
        with fresh_postgres_database(args.postgres_admin_url) as url:
            yield url
    else:
        yield args.database_url


def database_kind(url: str | None) -> str:
    if not url:
        return "SQLite (default file in the data folder)"
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return f"{u.get_backend_name()} ({u.host or ''}{':' + str(u.port) if u.port else ''}/{u.database})"


@contextmanager
def fresh_postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``admin_url``; dropped (with its connections) at the end."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"maeum_bench_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        log.info("created database %s", name)
        try:
            yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as c:
                c.execute(
                    text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
                )
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            log.info("dropped database %s", name)
    finally:
        admin.dispose()


class CpuUse:
    """CPU time spent on this machine from creation to ``report``: by the server process, by
    this benchmark process and by everything else (other processes compete for the same cores and
    slow the server; a PostgreSQL server counts as "other"). Linux only (/proc); elsewhere empty."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.tick = os.sysconf("SC_CLK_TCK")
        self.cores = os.cpu_count() or 1
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float, float] | None:
        """(wall, machine busy, server, this process) in seconds."""
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
            stat = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        busy = (user + nice + system + irq + softirq + steal) / self.tick
        server = (int(stat[11]) + int(stat[12])) / self.tick
        me = os.times()
        return time.perf_counter(), busy, server, me.user + me.system

    def report(self) -> str:
        """One line saying how the cores were used since creation; a warning is logged when other
        processes used more than a tenth of them."""
        end = self._sample()
        if self._start is None or end is None:
            return "CPU use: not measured (no /proc)"
        wall, busy, server, me = (b - a for a, b in zip(self._start, end, strict=True))
        other = max(0.0, busy - server - me)
        if other > 0.1 * self.cores * wall:
            log.warning(
                "other processes used %.1f of %.1f core-seconds: timings are slower than alone",
                other,
                wall * self.cores,
            )
        return (
            f"CPU over the timed part: {self.cores} cores x {wall:.1f} s; busy {busy:.1f} core-s: "
            f"server {server:.1f}, this client {me:.1f}, other processes {other:.1f}"
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DiaryServer:
    """``maeum app`` in a subprocess on loopback with a temporary data folder, removed on exit.

    The server's log (uvicorn's access lines included) goes to a file in that folder; its tail
    is logged when the server fails to start or exits with an error.
    """

    def __init__(self, database_url: str | None = None, start_timeout_s: float = 180.0) -> None:
        self.database_url = database_url
        self.start_timeout_s = start_timeout_s
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.tmp = Path(tempfile.mkdtemp(prefix="maeum-bench-"))
        self.log_path = self.tmp / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def __enter__(self) -> DiaryServer:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self) -> None:
        cmd = [sys.executable, "-m", "maeum.cli", "app", "--data-dir", str(self.tmp / "data"), "--port", str(self.port)]
        if self.database_url:
            cmd += ["--database-url", self.database_url]
        with open(self.log_path, "wb") as f:
            self.proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        t = time.perf_counter()
        deadline = t + self.start_timeout_s
        with httpx.Client(base_url=self.base_url, timeout=5) as client:
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    if client.get("/healthz").status_code == 200:
                        log.info("server up on %s in %.1f s (pid %d)", self.base_url, time.perf_counter() - t, self.pid)
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.2)
        raise RuntimeError(
            f"the server did not answer /healthz within {self.start_timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def error_lines(self) -> list[str]:
        """Lines of the server log that report an error or traceback (uvicorn's access lines excluded)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if re.search(r"Traceback|ERROR|Error:|failed", line)]

    def stop(self) -> None:
        """Stop the server (SIGINT like Ctrl-C, then SIGKILL after 20 s) and remove its data folder."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                log.warning("server pid %d did not stop on SIGINT; killing it", self.proc.pid)
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.returncode not in (0, -signal.SIGINT, 130):
            log.warning("server exited with %s:\n%s", self.proc.returncode, self.log_tail())
        shutil.rmtree(self.tmp, ignore_errors=True)


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    if not m:
        raise RuntimeError("no CSRF token on the page")
    return m.group(1)


def sign_up(client: httpx.Client, username: str) -> str:
    """Create ``username`` (logged in on ``client`` afterwards); the CSRF token for its post form."""
    page = client.get("/signup")
    page.raise_for_status()
    form = {
        "username": username,
        "password": PASSWORD,
        "password2": PASSWORD,
        "name": f"Bench {username}",
        "intro": "",
        "csrf": csrf_of(page.text),
    }
    r = client.post("/signup", data=form)
    if r.status_code != 303 or "maeum_session" not in client.cookies:
        raise RuntimeError(f"signing up {username} answered {r.status_code}: {r.text[:300]}")
    new = client.get("/posts/new")
    new.raise_for_status()
    return csrf_of(new.text)


def post_photo(client: httpx.Client, jpeg: bytes, text: str, csrf: str, day: str = "") -> httpx.Response:
    """POST /posts with one photo; the response is not followed."""
    return client.post(
        "/posts",
        data={"day": day, "text": text, "csrf": csrf},
        files={"photo": ("selfie.jpg", jpeg, "image/jpeg")},
    )


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


def parse_size(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)[xX](\d+)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not WIDTHxHEIGHT: {text!r}")
    return int(m.group(1)), int(m.group(2))


def selfie_jpeg(width: int, height: int, quality: int = 92, noise: float = 0.0, seed: int = 0) -> bytes:
    """scikit-image's astronaut (a real photo, one face) as a ``width`` x ``height`` JPEG.

    The 512x512 photo is scaled to cover the frame (bicubic) and cropped from the top so the face
    stays in view. ``noise`` adds Gaussian sensor-like noise (standard deviation in grey levels):
    an upscaled photo is much smoother than a camera's, so it compresses to a smaller file than a
    real phone picture of the same size would.
    """
    from skimage import data

    im = Image.fromarray(data.astronaut())
    side = max(width, height)
    im = im.resize((side, side), Image.Resampling.BICUBIC)
    left = (side - width) // 2
    rgb = np.asarray(im.crop((left, 0, left + width, height)))
    if noise > 0:
        rng = np.random.default_rng(seed)
        rgb = np.clip(rgb + rng.normal(0, noise, rgb.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()
