"""Running shard jobs in parallel: worker processes on this machine, or a Ray cluster.

A job is ``fn(payload)`` for a picklable payload; results come back as jobs finish, in any
order. At most one job per local worker (a few per Ray CPU) is in flight, so memory does not
grow with the data. Ctrl-C ends the local workers at once; what they had not finished is redone
by the next run.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from maeum.data.records import DataError

log = logging.getLogger(__name__)

ENGINES: tuple[str, ...] = ("local", "ray")
_IN_FLIGHT_PER_WORKER = 2


def run_jobs(
    fn: Callable[[Any], Any],
    payloads: Iterable[Any],
    engine: str = "local",
    workers: int = 1,
    ray_address: str | None = None,
) -> Iterator[Any]:
    """Yield ``fn(p)`` for every payload, as each finishes."""
    if engine not in ENGINES:
        raise DataError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "ray":
        yield from _run_ray(fn, payloads, workers, ray_address)
    elif workers <= 1:
        yield from map(fn, payloads)
    else:
        yield from _run_local(fn, payloads, workers)


def _run_local(fn: Callable[[Any], Any], payloads: Iterable[Any], workers: int) -> Iterator[Any]:
    """Worker processes, each with its own pipe: one job at a time goes down it, its result comes back.

    No lock or queue is shared between processes, so ending the workers at any moment (Ctrl-C,
    an error) cannot leave one of them, or this process, waiting on a lock a dead worker held.
    Workers ignore SIGINT: Ctrl-C reaches this process alone, which ends them all.
    """
    import multiprocessing
    from multiprocessing.connection import wait

    # "spawn": workers start clean, without the parent's open database or ONNX sessions.
    ctx = multiprocessing.get_context("spawn")
    if hasattr(signal, "pthread_sigmask"):
        from multiprocessing import resource_tracker

        # Started now, not by the first worker's start, which would unblock SIGINT (see below).
        with _sigint_deferred():
            resource_tracker.ensure_running()
    procs: list[Any] = []
    conns: list[Any] = []
    busy: dict[Any, Any] = {}  # connection -> its worker process, while it has a job
    it = iter(payloads)
    exhausted = False
    try:
        for _ in range(workers):
            mine, theirs = ctx.Pipe()
            conns.append(mine)
            proc = ctx.Process(target=_local_worker, args=(theirs, fn), daemon=True)
            procs.append(proc)
            with _sigint_deferred():
                proc.start()
            theirs.close()
        idle = list(zip(conns, procs, strict=True))
        while True:
            while idle and not exhausted:
                try:
                    payload = next(it)
                except StopIteration:
                    exhausted = True
                    break
                conn, proc = idle.pop()
                conn.send(payload)
                busy[conn] = proc
            if not busy:
                return
            ready = wait([*busy, *(p.sentinel for p in busy.values())])
            for conn in [c for c in busy if c in ready or busy[c].sentinel in ready]:
                proc = busy.pop(conn)
                try:
                    ok, value = conn.recv()
                except (EOFError, OSError):
                    raise DataError(
                        f"a worker process ended unexpectedly (exit code {proc.exitcode}; out of memory?); "
                        "run the same command again to resume"
                    ) from None
                if not ok:
                    raise value
                idle.append((conn, proc))
                yield value
    finally:
        _stop_workers(procs, conns)


def _local_worker(conn: Any, fn: Callable[[Any], Any]) -> None:
    """A worker's loop: a payload in, ``(True, result)`` or ``(False, exception)`` out, until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # discards a Ctrl-C pending since the start, too
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # SIGTERM (the parent ending the workers) unwinds like an exception, so half-written files are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    while True:
        try:
            payload = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, fn(payload))
        except Exception as e:  # the parent re-raises it
            reply = (False, e)
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return
        except Exception as e:  # an exception that cannot be pickled
            conn.send((False, RuntimeError(f"{type(e).__name__}: {e}")))


def _stop_workers(procs: list[Any], conns: list[Any], grace: float = 5.0) -> None:
    """End every worker now (their unfinished jobs are redone by the next run) and reap them."""
    for conn in conns:
        conn.close()  # an idle worker reads the end of its pipe and returns
    started = [p for p in procs if p.pid is not None]
    for proc in started:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in started:
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():  # stuck in C code that ignores SIGTERM's Python handler
            proc.kill()
            proc.join()


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ctrl-C held back for the duration, then raised as KeyboardInterrupt.

    SIGINT is blocked in this thread, and child processes started meanwhile inherit the block,
    so a Ctrl-C cannot interrupt them while they import. Another thread of this process (the
    numerical libraries start some) may still receive it: the handler then only notes it, so
    it cannot interrupt a child's start half-way, which would leave the child reading a cut pipe.
    """
    caught: list[int] = []
    defer = threading.current_thread() is threading.main_thread() and (
        signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if defer:
        signal.signal(signal.SIGINT, lambda signum, _: caught.append(signum))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT}) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        if defer:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # one pending in this thread interrupts now
    if caught:
        raise KeyboardInterrupt


def _run_ray(fn: Callable[[Any], Any], payloads: Iterable[Any], workers: int, address: str | None) -> Iterator[Any]:
    try:
        import ray
    except ImportError:
        raise DataError("--engine ray needs Ray: pip install 'maeum[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        # With no address, Ray joins a cluster named by RAY_ADDRESS or starts a local one.
        kwargs: dict[str, Any] = {"address": address} if address else {"num_cpus": max(1, workers)}
        ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
    try:
        capacity = max(1, int(ray.cluster_resources().get("CPU", workers)))
        remote = ray.remote(num_cpus=1)(fn)
        log.info("Ray cluster with %d CPUs", capacity)
        pending: list = []
        it = iter(payloads)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < capacity * _IN_FLIGHT_PER_WORKER:
                try:
                    pending.append(remote.remote(next(it)))
                except StopIteration:
                    exhausted = True
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield ray.get(ref)
    finally:
        if started_here:
            ray.shutdown()
