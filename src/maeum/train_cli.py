"""``maeum train``: settings from a recipe file, command-line flags and ``--set``, then the trainer.

Precedence, lowest first: ``TrainConfig``'s defaults, ``--config FILE``, the flags given
explicitly, ``--set KEY=VALUE``. Only flags the user typed override the file, so every flag
defaults to None here and the real defaults live in one place, ``TrainConfig``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from maeum.errors import MaeumError
from maeum.training.config import CHOICES, TrainConfig

log = logging.getLogger("maeum")

EXIT_OK, EXIT_INTERRUPTED = 0, 130  # usage errors (2) are cli.main's
_DEFAULTS = TrainConfig.__dataclass_fields__  # for the help texts only
# Flags whose destination is a TrainConfig field of the same name.
_FIELD_FLAGS = (
    "data", "out", "model", "labels", "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
    "schedule", "warmup_epochs", "early_stopping", "class_weights", "sampler", "seed", "threads", "workers",
    "device", "gpu", "bf16", "tensorboard", "svm_c", "init", "teacher", "teacher_weight", "teacher_temperature",
    "teacher_mode", "ema", "label_smoothing", "mixup", "cutmix", "sam",
)  # fmt: skip


def add_train_parser(sub: argparse._SubParsersAction) -> None:
    """Register the ``train`` subcommand on the ``maeum`` parser's subparsers."""
    t = sub.add_parser(
        "train",
        help="train an emotion classifier (needs the train extra)",
        description="Train an emotion classifier. Settings come from TrainConfig's defaults, then --config, "
        "then the flags given, then --set. Re-running the same command resumes from OUT/last.pt. "
        "For several processes (GPUs, or CPU processes with gloo): torchrun --nproc-per-node N -m maeum train ...",
    )
    t.add_argument(
        "--config",
        metavar="FILE",
        help="a YAML or JSON recipe of settings (e.g. recipes/ferplus-resnet-s.yaml, or a run's config.json)",
    )
    t.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one setting; the value is YAML (e.g. --set epochs=10 --set input.size=64); repeatable",
    )
    t.add_argument("--print-config", action="store_true", help="print the resolved settings as JSON and exit")
    t.add_argument(
        "--data", help="a folder prepared by `maeum data prepare` (or its manifest.parquet), or the FER+ folder"
    )
    t.add_argument("--out", help="run folder (resumes if it holds last.pt)")
    t.add_argument(
        "--model", help=_help("architecture: see `maeum models --train`, or timm/NAME for any timm model", "model")
    )
    _choice(t, "--labels", "training targets")
    t.add_argument("--epochs", type=int, help=_help("", "epochs"))
    t.add_argument("--batch-size", type=int, help=_help("", "batch_size"))
    _choice(t, "--optimizer", "sgd (Nesterov), adamw, adam or adadelta")
    t.add_argument("--lr", type=float, help=_help("peak learning rate", "lr"))
    t.add_argument("--momentum", type=float, help=_help("SGD momentum, AdamW beta1", "momentum"))
    t.add_argument("--weight-decay", type=float, help=_help("not applied to biases and norms", "weight_decay"))
    _choice(t, "--schedule", "learning-rate schedule")
    t.add_argument("--warmup-epochs", type=float, help=_help("linear warm-up (not with onecycle)", "warmup_epochs"))
    t.add_argument(
        "--early-stopping",
        type=int,
        metavar="EPOCHS",
        help=_help("stop after this many epochs without a better valid accuracy; 0: never", "early_stopping"),
    )
    _choice(t, "--class-weights", "balanced: weight the loss by inverse class frequency")
    _choice(t, "--sampler", "balanced: draw every class equally often")
    t.add_argument("--seed", type=int, help=_help("", "seed"))
    t.add_argument("--threads", type=int, help=_help("torch threads per process", "threads"))
    t.add_argument(
        "--workers", type=int, help=_help("processes preparing augmented batches; 0: in the training loop", "workers")
    )
    _choice(t, "--device", "auto: the GPU when one is visible")
    t.add_argument("--gpu", type=int, help=_help("GPU index with --device cuda (torchrun: LOCAL_RANK)", "gpu"))
    t.add_argument("--size", type=int, help="input size in pixels (default: 48)")
    t.add_argument("--color", choices=("gray", "rgb"), help="input colour (default: gray)")
    t.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        help="mixed precision (default): bfloat16 autocast, float16 on GPUs without bfloat16; --no-bf16: float32",
    )
    t.add_argument(
        "--tensorboard",
        action=argparse.BooleanOptionalAction,
        help="also write the metrics as TensorBoard events in OUT/tensorboard (default)",
    )
    t.add_argument("--svm-c", type=float, help=_help("hog_svm only: the SVM's C", "svm_c"))
    t.add_argument(
        "--init",
        help="fine-tune: start from this best.pt, exported .onnx or bundled model name (same architecture; "
        "labels, colour and, where the weights allow, size may differ)",
    )
    t.add_argument(
        "--teacher",
        help="distil: a model name, .onnx (e.g. from `maeum ensemble`) or best.pt whose answers join the training "
        "targets; several, comma-separated, are averaged",
    )
    t.add_argument(
        "--teacher-weight", type=float, help=_help("share of each target from the teacher, 0 to 1", "teacher_weight")
    )
    t.add_argument(
        "--teacher-temperature",
        type=float,
        help=_help("soften the teacher's answers: softmax(logits / T)", "teacher_temperature"),
    )
    _choice(
        t,
        "--teacher-mode",
        "once: the teacher classifies the clean crops before training; batch: every augmented batch, "
        "the inputs the student sees (each step pays for the teacher)",
    )
    t.add_argument(
        "--ema",
        type=float,
        metavar="DECAY",
        help=_help("validate and ship an average of the weights over the steps, e.g. 0.999; 0: off", "ema"),
    )
    t.add_argument(
        "--label-smoothing",
        type=float,
        metavar="EPS",
        help=_help("move this share of every target evenly onto all classes, e.g. 0.1", "label_smoothing"),
    )
    t.add_argument(
        "--mixup",
        type=float,
        metavar="ALPHA",
        help=_help("blend each crop with another, share ~ Beta(ALPHA, ALPHA), e.g. 0.2; 0: off", "mixup"),
    )
    t.add_argument(
        "--cutmix",
        type=float,
        metavar="ALPHA",
        help=_help("paste a box of another crop into each, area ~ Beta(ALPHA, ALPHA), e.g. 1.0; 0: off", "cutmix"),
    )
    t.add_argument(
        "--sam",
        type=float,
        metavar="RHO",
        help=_help("sharpness-aware steps: the gradient taken RHO up the slope, e.g. 0.05; 0: off", "sam"),
    )
    t.set_defaults(run=_train)


def _help(text: str, key: str) -> str:
    default = f"default: {_DEFAULTS[key].default}"
    return f"{text} ({default})" if text else default


def _choice(parser: argparse.ArgumentParser, flag: str, text: str) -> None:
    key = flag.lstrip("-").replace("-", "_")
    parser.add_argument(flag, choices=CHOICES[key], help=_help(text, key))


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Layer the recipe file, the explicit flags and ``--set`` over TrainConfig's defaults."""
    from maeum.training.config import load_config_file, parse_set, resolve_config

    layers: list[dict[str, Any]] = [load_config_file(args.config)] if args.config else []
    flags: dict[str, Any] = {k: getattr(args, k) for k in _FIELD_FLAGS if getattr(args, k) is not None}
    if args.size is not None:
        flags.setdefault("input", {})["size"] = args.size
    if args.color is not None:  # a change of colour brings mean and std of 0.5 per channel (resolve_config)
        flags.setdefault("input", {})["color"] = args.color
    layers += [flags, parse_set(args.overrides)]
    try:
        return resolve_config(*layers)
    except FileNotFoundError as e:
        raise MaeumError(str(e)) from None


def _train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)  # ConfigErrors are MaeumErrors: cli.main reports them, exit code 2
    if args.print_config:
        sys.stdout.write(json.dumps(cfg.to_dict(), indent=2) + "\n")
        return EXIT_OK
    from maeum.training.trainer import train

    try:
        best = train(cfg)
    except ValueError as e:  # e.g. a data error found while reading
        if isinstance(e, MaeumError):
            raise
        raise MaeumError(str(e)) from None
    except KeyboardInterrupt:
        log.error("interrupted; the finished epochs are kept in %s: run the same command again to go on", cfg.out)
        return EXIT_INTERRUPTED
    log.info("best checkpoint: %s", best)
    return EXIT_OK
