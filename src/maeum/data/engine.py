"""Running shard jobs in parallel: worker processes on this machine, or a Ray cluster.

A job is ``fn(payload)`` for a picklable payload; results come back as jobs finish, in any
order. At most a few jobs per worker are in flight, so memory does not grow with the data.
"""

from __future__ import annotations

import logging
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
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    # "spawn": workers start clean, without the parent's open database or ONNX sessions.
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending: set[Future] = set()
        it = iter(payloads)
        exhausted = False
        while pending or not exhausted:
            while not exhausted and len(pending) < workers * _IN_FLIGHT_PER_WORKER:
                try:
                    pending.add(pool.submit(fn, next(it)))
                except StopIteration:
                    exhausted = True
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()


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
