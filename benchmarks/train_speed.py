"""Training throughput of each committed recipe on this CPU, and whether data loading keeps up.

    python benchmarks/train_speed.py [--recipes recipes/*.yaml] [--batches 12] [--precision auto|bf16|fp32]

For each recipe, on FER+ training crops (needs ../shared): the loader alone (crops ->
serving's preprocessing -> augmentation, one process, as ``workers: 0`` runs it) and the
model step alone (forward, loss, backward, optimizer step on ready batches), both in images
per second with the recipe's batch size, threads and precision. The loader must be the
faster of the two, so that data loading is not what limits training. ``hog_svm`` is fitted,
not stepped: its row gives feature extraction speed only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import REPO, SHARED, cpu_description, out, positive, run, table
from maeum.preprocess import InputSpec
from maeum.training import ferplus
from maeum.training.config import load_config_file, resolve_config
from maeum.training.datasets import ferplus_at_input
from maeum.training.loader import EpochBatches
from maeum.training.runtime import cpu_computes_bfloat16
from maeum.training.trainer import _OPTIMIZERS, build_model


def images_per_s(fn, n_images: int, repeat: int) -> float:
    fn(0)  # warm-up
    t = time.perf_counter()
    for i in range(repeat):
        fn(i + 1)
    return n_images * repeat / (time.perf_counter() - t)


def measure(recipe: Path, root: Path, images: np.ndarray, repeat: int, precision: str) -> list[object]:
    cfg = resolve_config(load_config_file(recipe), {"data": str(root), "out": "unused"})
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(0)
    spec = InputSpec.from_dict(cfg.input)
    images = ferplus_at_input(images, spec)  # as training reads FER+ at the recipe's input, once
    b = cfg.batch_size
    # auto: as training decides (float32 where the CPU only emulates bfloat16); bf16 or fp32: forced
    bf16 = cfg.bf16 and cpu_computes_bfloat16() if precision == "auto" else precision == "bf16"
    targets = torch.full((len(images), 7), 1 / 7)
    order = np.random.default_rng(0).permutation(len(images))
    batches = EpochBatches(images, targets, order, b, spec, cfg.seed, 0, mixup=cfg.mixup, cutmix=cfg.cutmix)
    loader = images_per_s(lambda i: batches[i], b, repeat)

    fmt = torch.channels_last if bf16 else torch.contiguous_format
    model = build_model(cfg.model, ferplus.FERPLUS7, spec).to(memory_format=fmt)
    params = sum(p.numel() for p in model.parameters())
    ready = [batches[i] for i in range(min(4, len(batches)))]
    opt = _OPTIMIZERS[cfg.optimizer]([{"params": list(model.parameters())}], cfg)
    fitted = cfg.model == "hog_svm"  # fitted in one pass, not stepped: time its features only

    def step(i: int) -> None:
        x, y = ready[i % len(ready)]
        x = x.contiguous(memory_format=fmt)
        if fitted:
            with torch.no_grad():
                model(x)
            return
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = -(y * F.log_softmax(logits.float(), 1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    model.train(not fitted)
    model_rate = images_per_s(step, b, repeat)
    kind = "features" if fitted else "train step"
    epoch_s = f"{len(images) / min(loader, model_rate):.0f}" if not fitted else "-"
    out(f"{recipe.name}: loader {loader:,.0f} img/s, {kind} {model_rate:,.0f} img/s")
    return [recipe.name, cfg.model, f"{params:,}", b, "bf16" if bf16 else "fp32", f"{loader:,.0f}",
            f"{model_rate:,.0f} ({kind})", f"{loader / model_rate:.1f}x", epoch_s]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", type=Path, default=sorted((REPO / "recipes").glob("*.yaml")))
    parser.add_argument("--batches", type=positive(int), default=12, help="timed batches per measurement")
    parser.add_argument(
        "--precision", choices=("auto", "bf16", "fp32"), default="auto", help="auto: each recipe's, as training runs it"
    )
    args = parser.parse_args()
    root = SHARED / "data" / "ferplus"
    if not (root / "fer2013new.csv").is_file():
        out(f"FER+ not found at {root} (set MAEUM_SHARED)")
        return 1
    images = ferplus.load_split(root, "train", Path.home() / ".cache" / "maeum").images
    rows = [measure(recipe, root, images, args.batches, args.precision) for recipe in args.recipes]
    out()
    out(f"FER+ train, {len(images):,} crops of 48x48 at each recipe's input; torch {torch.__version__}")
    out(cpu_description())
    header = ["recipe", "model", "parameters", "batch", "precision", "loader img/s", "model img/s",
              "loader / model", "s per epoch (est.)"]  # fmt: skip
    out(table(rows, header))
    slow = [r[0] for r in rows if float(r[7][:-1]) < 1]
    out("loader faster than the model step for every recipe" if not slow else f"loader is the bottleneck: {slow}")
    return 0


if __name__ == "__main__":
    run(main)
