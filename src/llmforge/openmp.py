"""Letting go of a thread's OpenMP team after a one-off burst of torch work.

libgomp (the OpenMP runtime torch's CPU wheels ship) keeps a team of worker threads for every
thread that ran a parallel region, for as long as that thread lives. Once the process holds
more team threads than cores, every team stops spin-waiting between ops and wakes its threads
by futex instead; the engine's decode step, thousands of small ops, then ran ~30-60% slower.
A server's request threads live on (a pool), so one that embedded a query or checked an
answer would slow generation for good. Calling :func:`release` after such a burst frees the
calling thread's team (``omp_pause_resource_all``); the next parallel region in that thread
builds a new one, which costs well under a millisecond.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_pauses: list[Any] | None = None
_seen: frozenset[str] = frozenset()
_lock = threading.Lock()


def _runtimes() -> list[Any]:
    """``omp_pause_resource_all`` of every OpenMP runtime loaded in this process (torch ships
    its own libgomp; scikit-learn, pulled in by sentence-transformers, ships another)."""
    global _pauses, _seen
    try:
        with open("/proc/self/maps") as maps:
            paths = frozenset(line.split()[-1] for line in maps if "libgomp" in line or "libiomp" in line)
    except OSError:
        return []
    with _lock:
        if _pauses is None or paths != _seen:  # looked up again when a library loads another
            found = []
            for path in sorted(paths):
                try:
                    found.append(ctypes.CDLL(path).omp_pause_resource_all)
                except (OSError, AttributeError):
                    continue
            _pauses, _seen = found, paths
        return _pauses


def release() -> bool:
    """Free the calling thread's OpenMP teams; ``False`` where no runtime is loaded."""
    pauses = _runtimes()
    for pause in pauses:
        pause(1)  # omp_pause_soft: this thread's pool, in that runtime
    return bool(pauses)


@contextmanager
def released() -> Iterator[None]:
    """Run a burst of torch work, then free this thread's OpenMP teams."""
    try:
        yield
    finally:
        release()
