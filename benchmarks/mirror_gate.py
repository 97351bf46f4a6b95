"""Speed and accuracy of the bundled model's forms on the FER+ Test faces, measured in turns.

    python benchmarks/mirror_gate.py [--shared ../shared] [--rounds 3] [--model FILE.onnx ...] [--profile]

The forms: the bundled model as served (its mirror gate: faces it is unsure of are averaged
with their mirror image), one pass over every face (``ferplus-resnet-s-fast``), and every face
averaged with its mirror (the gate opened wide); ``--model`` adds exported files, e.g. one with
the mirror inside its graph (``maeum export --tta``). Each round measures every form once, in
turn, so a busy machine slows them alike: compare faces/s within a row, not across runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import CACHE, SHARED, cpu_description, ferplus_root, out, positive, run, table, throughput
from maeum.classify import DEFAULT_MODEL, EmotionClassifier, mirror_gate
from maeum.training import ferplus
from maeum.training.datasets import ferplus_at_input


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED)
    parser.add_argument("--rounds", type=positive(int), default=3)
    parser.add_argument("--threads", type=positive(int), default=2)
    parser.add_argument("--model", action="append", default=[], help="another .onnx to measure (repeatable)")
    parser.add_argument("--profile", action="store_true", help="also print where the bundled file's time goes")
    args = parser.parse_args()
    test = ferplus.load_split(ferplus_root(parser, args.shared), "test", CACHE / "ferplus")
    majority = test.majority()

    served = EmotionClassifier(DEFAULT_MODEL, threads=args.threads)
    every = EmotionClassifier(DEFAULT_MODEL, threads=args.threads)
    every.flip_below = 2.0  # above any probability: every face
    forms: dict[str, EmotionClassifier] = {
        f"{DEFAULT_MODEL} (mirror gate {served.flip_below:g})": served,
        "ferplus-resnet-s-fast (one pass)": EmotionClassifier("ferplus-resnet-s-fast", threads=args.threads),
        f"{DEFAULT_MODEL}, every face mirrored": every,
    }
    forms |= {Path(m).name: EmotionClassifier(m, threads=args.threads) for m in args.model}

    rows: dict[str, list[str]] = {}
    inputs = {name: ferplus_at_input(test.images, clf.info.input) for name, clf in forms.items()}
    single_pass: dict[Path, np.ndarray] = {}  # one pass per file: the forms of one file share it
    for name, clf in forms.items():
        if clf.info.mirrored:
            probs = clf.predict(inputs[name])
        else:
            if clf.path not in single_pass:
                single_pass[clf.path] = clf.predict(inputs[name], mirror=False)
            single = single_pass[clf.path]
            probs = single.copy()
            gate = mirror_gate(single, clf.flip_below)
            if gate.any():
                probs[gate] = clf.predict(inputs[name][gate], mirror=True)
        accuracy = (probs.argmax(1) == majority)[majority >= 0].mean()
        if clf.info.mirrored:
            mirrored = "100 % (in the graph)"
        elif clf.flip_below is None:
            mirrored = "0 %"
        else:
            mirrored = f"{100 * gate.mean():.1f} %"
        rows[name] = [name, f"{accuracy:.4f}", mirrored]
    for _ in range(args.rounds):
        for name, clf in forms.items():
            rows[name].append(f"{throughput(clf.predict, inputs[name]):,.0f}")

    out(f"cpu: {cpu_description()}; threads: {args.threads}; {len(test.images):,} FER+ Test faces, runs of 256\n")
    header = ["form", "FER+ Test accuracy", "faces mirrored", *(f"faces/s, round {i + 1}" for i in range(args.rounds))]
    out(table(list(rows.values()), header))
    if args.profile:
        out("\n" + profile(served, inputs[next(iter(forms))][:256], args.threads))


def profile(clf: EmotionClassifier, faces: np.ndarray, threads: int, runs: int = 5) -> str:
    """onnxruntime's profiler over ``runs`` single passes of ``faces``: each operator type's share of the
    time, and the five nodes that take most."""
    import json
    import tempfile
    from collections import defaultdict

    import onnxruntime as ort

    from maeum.preprocess import resize_crops, to_model_input

    x = to_model_input(resize_crops(faces, clf.info.input.size), clf.info.input)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.x64quantprecision", "1")  # as maeum's own sessions
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = str(Path(folder) / "ort")
        session = ort.InferenceSession(str(clf.path), options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for _ in range(runs):
            session.run(None, {name: x})
        events = json.loads(Path(session.end_profiling()).read_text())
    per_node: dict[tuple[str, str], float] = defaultdict(float)
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node[(e["args"]["op_name"], e["name"].removesuffix("_kernel_time"))] += e["dur"]
    total = sum(per_node.values())
    per_op: dict[str, float] = defaultdict(float)
    for (op, _), us in per_node.items():
        per_op[op] += us
    ops = [[op, f"{100 * us / total:.1f} %"] for op, us in sorted(per_op.items(), key=lambda kv: -kv[1])]
    top = sorted(per_node.items(), key=lambda kv: -kv[1])[:5]
    nodes = [[op, node, f"{100 * us / total:.1f} %"] for (op, node), us in top]
    return (
        f"{clf.info.name}: onnxruntime's profiler, {runs} runs of {len(x)} faces, one pass\n\n"
        + table(ops, ["operator", "share of the time"])
        + "\n\n"
        + table(nodes, ["operator", "node", "share of the time"])
    )


if __name__ == "__main__":
    run(main)
