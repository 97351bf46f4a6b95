"""The benchmark scripts as a user runs them with a wrong option: one line and a non-zero exit, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def bench(*argv: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["accuracy.py", "--shared", "no-shared"], 2, "no FER+ data at no-shared/data/ferplus"),
        (["mirror_gate.py", "--shared", "no-shared"], 2, "no FER+ data at no-shared/data/ferplus"),
        (["speed.py", "--threads", "0"], 2, "argument --threads: 0 must be above 0"),
        (["data_prep.py", "--sizes", "1000,x"], 2, "argument --sizes: 'x' is not a whole number"),
        (["speed.py", "--model", "no-such-model"], 1, "speed.py: error: unknown model 'no-such-model'"),
        (["video.py", "--model", "missing.onnx"], 1, "video.py: error: model file missing.onnx not found"),
        (["serve.py", "--seconds", "0"], 2, "argument --seconds: 0 must be above 0"),
        (["batch.py", "--images", "-3"], 2, "argument --images: -3 must be above 0"),
    ],
)
def test_a_wrong_option_is_one_line(tmp_path: Path, argv: list[str], code: int, message: str) -> None:
    done = bench(*argv, tmp_path=tmp_path)
    assert done.returncode == code, done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
