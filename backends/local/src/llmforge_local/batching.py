"""Concurrent single requests coalesced into device batches.

While one batch runs, requests that arrive queue up; the next batch takes up to
``max_batch_size`` of them that share sampling settings and fit the context together. A lone
request starts at once, so batching adds no latency to an idle server, and N waiting requests
cost one forward pass per token instead of N. Rows with a smaller ``max_tokens`` than their
batch are cut to their own limit afterwards (a greedy row's first k tokens do not depend on
how long generation runs on).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Request:
    ids: list[int]
    params: dict
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


def _key(params: dict) -> tuple:
    # one adapter per device batch: requests routed to different adapters never share one
    return params["temperature"], params["top_p"], tuple(params["stop"]), params.get("adapter")


class Batcher:
    """Queue in front of ``run(ids_list, params) -> results``; one drain thread while busy."""

    def __init__(
        self, run: Callable[[list[list[int]], dict], list[Any]], max_batch_size: int, context: int
    ) -> None:
        self._run, self.max_batch_size, self.context = run, max_batch_size, context
        self._lock = threading.Lock()
        self._queue: list[_Request] = []
        self._draining = False
        #: sizes of the batches run so far (for tests and monitoring)
        self.batch_sizes: list[int] = []

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def submit(self, ids: list[int], params: dict) -> Any:
        req = _Request(ids, params)
        with self._lock:
            self._queue.append(req)
            if not self._draining:
                self._draining = True
                threading.Thread(target=self._drain, name="llmforge-batcher", daemon=True).start()
        req.done.wait()
        if req.error is not None:
            raise req.error
        return req.result

    def _take(self) -> list[_Request]:
        first = self._queue[0]
        batch, longest, most = [first], len(first.ids), first.params["max_tokens"]
        for r in self._queue[1:]:
            if len(batch) == self.max_batch_size:
                break
            fits = max(longest, len(r.ids)) + max(most, r.params["max_tokens"]) <= self.context
            if _key(r.params) == _key(first.params) and fits:
                batch.append(r)
                longest, most = max(longest, len(r.ids)), max(most, r.params["max_tokens"])
        for r in batch:
            self._queue.remove(r)
        return batch

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._draining = False
                    return
                batch = self._take()
            limits = [r.params["max_tokens"] for r in batch]
            params = {**batch[0].params, "max_tokens": max(limits), "limits": limits}
            self.batch_sizes.append(len(batch))
            try:
                for r, res in zip(batch, self._run([r.ids for r in batch], params), strict=True):
                    r.result = res
            except BaseException as exc:  # every caller of the batch sees the failure
                for r in batch:
                    r.error = exc
            finally:
                for r in batch:
                    r.done.set()
