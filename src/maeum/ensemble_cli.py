"""``maeum ensemble``: average several emotion models into one ONNX file that serves like any model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from maeum.errors import MaeumError
from maeum.outpaths import output_file

log = logging.getLogger("maeum")

EXIT_OK = 0  # usage errors (2) are cli.main's


def add_ensemble_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``ensemble`` subcommand on the ``maeum`` parser's subparsers."""
    e = sub.add_parser(
        "ensemble",
        help="average two or more emotion models into one .onnx (needs onnx)",
        description="Write one ONNX model whose probabilities are the weighted average of its members'. "
        "Members must share one label set; each gets the face converted, resized and normalised as it "
        "expects. Use the result with `maeum analyze --model` or `maeum evaluate`.",
    )
    e.add_argument(
        "models", nargs="+", metavar="MODEL", help="two or more model names (see `maeum models`) or .onnx files"
    )
    e.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    e.add_argument("--weights", help="comma-separated non-negative weights, one per model (default: equal)")
    e.add_argument("--name", help="model name stored in the metadata (default: the members' names joined by +)")
    e.set_defaults(run=_ensemble)


def _parse_weights(text: str | None, n: int) -> list[float] | None:
    if text is None:
        return None
    try:
        weights = [float(v) for v in text.split(",")]
    except ValueError:
        raise MaeumError(f"--weights {text!r}: write numbers separated by commas, e.g. --weights 2,1") from None
    if len(weights) != n:
        raise MaeumError(f"--weights {text!r} gives {len(weights)} weights for {n} models; give one per model")
    return weights


def _ensemble(args: argparse.Namespace) -> int:
    if len(args.models) < 2:
        raise MaeumError(f"an ensemble needs at least two models, got {len(args.models)}; name two or more")
    weights = _parse_weights(args.weights, len(args.models))
    output_file(args.out)
    try:
        from maeum.training.ensemble import build_ensemble
    except ImportError as e:
        raise MaeumError(f"`maeum ensemble` needs the onnx package ({e}); pip install 'maeum[train]'") from None

    info = build_ensemble(args.models, args.out, weights, args.name)
    members = info.extra["members"]
    assert isinstance(members, list)
    spec = info.input
    log.info("ensemble %s: %d members", info.name, len(members))
    for m in members:
        assert isinstance(m, dict)
        log.info("  member %s (%s), weight %.3f", m["name"], m["file"], m["weight"])
    log.info("  labels: %s", ", ".join(info.labels))
    log.info("  input: %dx%d %s, mean %s, std %s", spec.size, spec.size, spec.color, spec.mean, spec.std)
    return EXIT_OK
