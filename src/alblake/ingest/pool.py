"""The process pool of parallel ingest: when a run pays for one, and how its workers start.

Workers come from a fork server (``forkserver``): a fresh interpreter that imports alblake once, then forks a
worker per request in milliseconds. Workers never share memory with the calling process. (The native
tokenizer's work buffers are shared anonymous mappings: children forked after a process had parsed wrote into
the same pages and corrupted each other's strings. The server preloads alblake without parsing, so each worker
allocates its own.) Callers' scripts need the ``__main__`` guard.

The server's start is most of a pool's cost (~0.4 s: it imports numpy and pyarrow), hence ``worth_a_pool``.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.context import BaseContext

WORKER_MODULE = "alblake.ingest.runner"  # what the fork server imports: everything a worker runs
POOL_MIN_OBJECTS = 32
POOL_MIN_BYTES = 16 << 20


def default_jobs() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worth_a_pool(objects: int, size: int) -> bool:
    """Whether ``objects`` objects of ``size`` bytes (compressed) in all pay for starting a pool (~0.5 s): many
    objects or many bytes, and more than one object (a single object always runs in the calling process)."""
    return objects > 1 and (objects >= POOL_MIN_OBJECTS or size >= POOL_MIN_BYTES)


def pool_context() -> BaseContext:
    """forkserver where there is one (preloading ``WORKER_MODULE``), else spawn."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WORKER_MODULE])
    return context

