"""Parallel cropping: Ctrl-C during a real multi-worker run ends it at once, leaving no process behind."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aihub_fixture import build_scaled
from maeum.data.engine import run_jobs
from maeum.data.prepare import PrepareConfig, prepare

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds child processes in /proc")


def _square(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative: {x}")
    return x * x


def test_local_workers_give_every_result_and_pass_errors_on() -> None:
    assert sorted(run_jobs(_square, range(20), workers=3)) == [x * x for x in range(20)]
    with pytest.raises(ValueError, match="negative: -1"):
        list(run_jobs(_square, [1, 2, -1, 3], workers=2))


def _group(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


def _digest(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and ".work" not in p.parts
    }


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory):
    return build_scaled(tmp_path_factory.mktemp("scaled"), 160, size=(900, 1200))


@pytest.fixture(scope="module")
def reference(scaled, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    prepare(PrepareConfig("aihub", scaled.root, out, workers=1, shard_size=4, report=False))
    return out


@pytest.mark.parametrize("delay", [None, 0.3, 1.5])
def test_ctrl_c_with_two_workers_exits_130_at_once_and_leaves_no_process(
    scaled, reference: Path, tmp_path: Path, delay: float | None
) -> None:
    out = tmp_path / "out"
    args = [sys.executable, "-m", "maeum.cli", "data", "prepare", "aihub", str(scaled.root), "--out", str(out),
            "--workers", "2", "--shard-size", "4", "--no-report"]  # fmt: skip
    log = tmp_path / "stderr.txt"
    with log.open("w") as err:
        # A process group of its own, which Ctrl-C is sent to as a terminal sends it (the main
        # process and its workers alike); SIGINT's default action restored in case pytest ignores it.
        proc = subprocess.Popen(
            args, stderr=err, stdout=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while "cropping" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if delay is None:  # as the first worker starts (it imports for a second or more)
            while len(_group(proc.pid)) < 2 and proc.poll() is None:
                time.sleep(0.005)
        else:  # while the workers crop
            time.sleep(delay)
        seen = _group(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            pytest.fail(f"still running 30 s after Ctrl-C:\n{log.read_text()}")
    stderr = log.read_text()
    assert code == 130, stderr
    assert time.monotonic() - sent < 10
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert len(seen) >= 2, "no worker was running when Ctrl-C came"
    left = _group(proc.pid)
    for _ in range(20):  # the resource tracker ends once it reads the end of its pipe
        if not left:
            break
        time.sleep(0.1)
        left = _group(proc.pid)
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    assert left == [], "processes left behind"
    # The same command finishes the run, as if it had never been interrupted.
    subprocess.run(args, check=True, stderr=subprocess.DEVNULL)
    assert _digest(out) == _digest(reference)
