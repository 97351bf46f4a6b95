"""Where a training run computes: the device, mixed precision, and torch's distributed processes.

One process trains on one device. Under torch's launcher (``torchrun --nproc-per-node N -m
maeum train ...``) each of the N processes takes one share of every batch and the gradients
are averaged (DistributedDataParallel): the gloo backend on CPUs, NCCL on GPUs. Process 0
validates, writes the run folder and tells the others the validation accuracy.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from maeum.errors import ConfigError, MaeumError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    amp_dtype: torch.dtype | None = None  # autocast dtype, None for float32
    why_float32: str = ""  # why mixed precision was asked for and not used

    @property
    def precision(self) -> str:
        """The arithmetic of the training steps, in words for the log."""
        if self.amp_dtype is None:
            return "float32" + (f" ({self.why_float32})" if self.why_float32 else "")
        return f"{str(self.amp_dtype).removeprefix('torch.')} autocast"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def broadcast(self, value: float) -> float:
        """Process 0's ``value`` in every process (the value itself when not distributed)."""
        return float(self.broadcast_array(np.array([value], np.float64))[0])

    def mean(self, value: float) -> float:
        """The mean of every process's ``value`` (the value itself when not distributed); all must call it."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=self.device if self.device.type == "cuda" else "cpu")
        with self._peers():
            dist.all_reduce(t)
        return float(t.item()) / self.world

    def broadcast_array(self, array: np.ndarray) -> np.ndarray:
        """Process 0's ``array`` in every process; the others pass one of the same shape and dtype."""
        if not self.distributed:
            return array
        t = torch.from_numpy(np.ascontiguousarray(array)).to(self.device if self.device.type == "cuda" else "cpu")
        with self._peers():
            dist.broadcast(t, src=0)
        return t.cpu().numpy()

    def barrier(self) -> None:
        """Wait until every process reaches this point (nothing to wait for when not distributed)."""
        if self.distributed:
            with self._peers():
                dist.barrier()

    @contextlib.contextmanager
    def _peers(self) -> Iterator[None]:
        """A process that waits on one that stopped (a data error, say, in process 0) stops with one line
        pointing at that process's message, not with the backend's traceback."""
        try:
            yield
        except RuntimeError as e:
            reason = str(e).strip().splitlines()[0].split(". ")[0] if str(e).strip() else type(e).__name__
            raise MaeumError(
                f"process {self.rank} of {self.world}: another process of the run stopped; its message says why "
                f"({reason})"
            ) from None

    def close(self, completed: bool = True) -> None:
        """Leave the process group.

        After a completed run every process first waits for the others (a process tearing gloo
        down while process 0 still writes its checkpoints can abort it at exit), and what still
        holds the group (DistributedDataParallel's reducer) is freed while the interpreter is alive.
        """
        if self.distributed and dist.is_initialized():
            if completed:
                dist.barrier()
            gc.collect()
            dist.destroy_process_group()


def start_runtime(device: str, gpu: int, mixed_precision: bool) -> Runtime:
    """Pick the device, join the process group when started by torchrun, and pick the autocast dtype.

    A GPU asked for and not there is refused here, before any data is read.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise ConfigError("device cuda: no CUDA GPU is visible to torch; use --device cpu (or auto)")
    use_cuda = device == "cuda" or (device == "auto" and cuda)
    if use_cuda:
        index = local_rank if world > 1 else gpu
        if index >= torch.cuda.device_count():
            raise ConfigError(f"gpu {index}: only {torch.cuda.device_count()} GPU(s) visible; pass --gpu 0..")
        torch.cuda.set_device(index)
        dev = torch.device("cuda", index)
    else:
        dev = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
        log.info("process %d of %d (%s backend) on %s", rank, world, dist.get_backend(), dev)
        maeum_log = logging.getLogger("maeum")
        if rank != 0 and maeum_log.getEffectiveLevel() > logging.DEBUG:
            # Process 0 tells what the run does; the others say only their warnings and errors (with -v, all).
            maeum_log.setLevel(max(logging.WARNING, maeum_log.getEffectiveLevel()))
    amp: torch.dtype | None = None
    why_float32 = ""
    if mixed_precision and use_cuda:
        amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    elif mixed_precision and cpu_computes_bfloat16():
        amp = torch.bfloat16
    elif mixed_precision:
        # emulated bfloat16 is over ten times slower: resnet_s at 48 px on an AVX2 EPYC, 12 against 136 images/s
        # (benchmarks/train_speed.py --precision bf16, then fp32)
        why_float32 = "this CPU has no bfloat16 kernels, which oneDNN has with AVX-512 or AMX"
    return Runtime(dev, rank, world, amp, why_float32)


def cpu_computes_bfloat16() -> bool:
    """Whether torch's CPU kernels (oneDNN) compute bfloat16 on this CPU, rather than emulate it slowly."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch built without oneDNN
        return False
