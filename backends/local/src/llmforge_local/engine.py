"""Continuous batching: sequences join and leave the running batch at every decode step.

One scheduler thread per loaded model loops: admit waiting requests (up to ``max_batch_size``
running), run one forward pass that decodes every running sequence and prefills the admitted
ones into their own KV-cache slots (their prompt tokens share the step's matmuls, so joining
costs no extra pass over the weights), hand each its token (streams see it at once), and
retire the sequences that are done
— end-of-turn, a stop string, their own ``max_tokens``, or cancelled by their caller — at that
step. A short request therefore never waits for a long one, and a new one waits at most one
step. Rows in one step may each use a different LoRA adapter (:mod:`llmforge_local.engine_lora`).
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from llmforge import metrics
from llmforge_local.engine_model import SlotModel

#: prompt tokens prefilled per scheduler iteration before the running batch decodes again (those
#: the prefix cache holds cost nothing and do not count)
PREFILL_BUDGET = 512
#: decode steps between returns of freed heap memory to the OS under steady load
TRIM_EVERY = 1024


def release_memory() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``; a no-op elsewhere).

    Every step allocates KV-cache and activation tensors of a new shape; glibc keeps the freed
    blocks in its arenas, so a long-running server's RSS creeps up although nothing leaks."""
    global _trim
    if _trim is None:
        try:
            import ctypes

            _trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _trim = False
    if _trim:
        _trim(0)


_trim: Any = None

_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
metrics.gauge(
    "llmforge_queue_depth",
    "requests waiting to join a running batch",
    lambda: sum(e.queue_depth() for e in list(_ENGINES)),
)
metrics.gauge(
    "llmforge_running_sequences",
    "sequences in the running batches",
    lambda: sum(e.running() for e in list(_ENGINES)),
)
BATCH_SIZE = metrics.histogram("llmforge_batch_size", "sequences per decode step", metrics.SIZE_BUCKETS)
TOKENS = metrics.counter("llmforge_tokens_total", "tokens of the engine's finished sequences, by kind")
CACHED = metrics.counter(
    "llmforge_prefix_cache_tokens_total", "prompt tokens whose keys and values came from the prefix cache"
)


@dataclass
class Sequence:
    """One request inside the engine; ``tokens`` is filled as it runs."""

    ids: list[int]
    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    adapter: str | None = None
    #: prefix-cache partition: prompts share cached beginnings only within one salt (the caller)
    cache_salt: str | None = None
    #: prompt tokens whose keys and values came from the prefix cache
    cached_tokens: int = 0
    tokens: list[int] = field(default_factory=list)
    #: why it ended: ``stop`` (end-of-turn or stop string), ``length``, ``cancelled``
    finish: str | None = None
    error: BaseException | None = None
    cancelled: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    #: every produced token, then ``None`` at the end (for streams)
    feed: queue.SimpleQueue | None = None
    submitted: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    _slot_adapter: int = 0

    def cancel(self) -> None:
        """Stop at the next step; the tokens produced so far stay in ``tokens``."""
        self.cancelled.set()

    def wait(self) -> Sequence:
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self


class Engine:
    """Iteration-level scheduler over one model; :meth:`submit` from any thread."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        eos_ids: frozenset[int],
        device: Any,
        max_batch_size: int,
        pack_weights: bool = True,
        prefix_cache_tokens: int = 0,
        fused_kernels: bool = True,
        quantize: str = "none",
    ):
        self.slots = SlotModel(
            model,
            device,
            pack=pack_weights,
            prefix_tokens=prefix_cache_tokens,
            kernels=fused_kernels,
            quantize=quantize,
        )
        self.tokenizer, self.eos_ids, self.max_batch_size = tokenizer, eos_ids, max_batch_size
        self._cond = threading.Condition()
        self._waiting: list[Sequence] = []
        self._running: list[Sequence] = []  # index == cache slot
        self._thread: threading.Thread | None = None
        #: running-batch size of the latest decode steps (monitoring, tests)
        self.step_sizes: deque[int] = deque(maxlen=4096)
        self._steps = self._trimmed_at = 0  # decode steps run; when memory was last trimmed
        _ENGINES.add(self)

    def submit(self, seq: Sequence) -> Sequence:
        with self._cond:
            self._waiting.append(seq)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="llmforge-engine", daemon=True)
                self._thread.start()
            self._cond.notify()
        return seq

    def queue_depth(self) -> int:
        with self._cond:
            return len(self._waiting)

    def running(self) -> int:
        with self._cond:
            return len(self._running)

    # ---- the loop (scheduler thread) ----------------------------------------------------
    def _loop(self) -> None:
        import torch

        while True:
            with self._cond:
                idle = not self._waiting and not self._running
            if idle or self._steps - self._trimmed_at >= TRIM_EVERY:
                release_memory()
                self._trimmed_at = self._steps
            with self._cond:
                while not self._waiting and not self._running:
                    if not self._cond.wait(timeout=30) and not self._waiting:  # idle: let it go
                        self._thread = None
                        return
                room = self.max_batch_size - len(self._running)
                new, self._waiting = self._waiting[:room], self._waiting[room:]
            try:
                with torch.inference_mode():
                    self._step(self._admit(new))
            except BaseException as exc:  # every sequence in flight sees the failure
                with self._cond:
                    queued = {id(s) for s in self._waiting}
                failed = {id(s): s for s in [*self._running, *new] if not s.done.is_set()}
                for key, s in failed.items():
                    if key not in queued:
                        self._end(s, None, exc)
                self._running = []

    def _admit(self, new: list[Sequence]) -> list[Sequence]:
        """The new sequences to prefill in this step (up to the budget; the rest wait for the
        next one): cancelled ones end here, one whose adapter is unusable fails alone."""
        take, budget = [], PREFILL_BUDGET
        for i, s in enumerate(new):
            if s.cancelled.is_set():
                self._end(s, "cancelled")
                continue
            try:
                s._slot_adapter = self.slots.loras.slot(s.adapter)
            except Exception as exc:  # this caller's adapter is unusable: only it fails
                self._end(s, None, exc)
                continue
            work = len(s.ids) - self.slots.prefix.held(s.ids, s._slot_adapter, s.cache_salt)
            if take and budget - work < 0:
                with self._cond:
                    self._waiting[:0] = new[i:]
                break
            take.append(s)
            budget -= work
        return take

    def _step(self, take: list[Sequence]) -> None:
        """One forward pass: a decode step for every running sequence and the prefill of
        ``take``, which join the running batch with their first token."""
        run = self._running
        if not run and not take:
            return
        if run:
            self.step_sizes.append(len(run))
            self._steps += 1
            BATCH_SIZE.observe(len(run))
        logits = self.slots.step(
            [s.tokens[-1] for s in run],
            [len(s.ids) + len(s.tokens) - 1 for s in run],
            [s._slot_adapter for s in run],
            [s.ids for s in take],
            [s._slot_adapter for s in take],
            salts=[s.cache_salt for s in take],
        )
        for s, cached in zip(take, self.slots.cached, strict=True):
            s.cached_tokens = cached
            CACHED.inc(cached)
        self._running = run = run + take
        for s, t in zip(run, self._pick(logits, run), strict=True):
            self._emit(s, t)
        self._retire()

    def _pick(self, logits: Any, seqs: list[Sequence]) -> list[int]:
        """Next token per row: greedy, or sampled with the row's temperature and top_p."""
        import torch

        out = logits.argmax(-1).tolist()  # (B,)
        for r, s in enumerate(seqs):
            if s.temperature > 0:
                p = torch.softmax(logits[r] / s.temperature, -1)
                if s.top_p < 1:
                    sp, order = p.sort(descending=True)
                    keep = sp.cumsum(-1) - sp < s.top_p  # always keeps the first
                    p = torch.zeros_like(p).scatter(0, order[keep], sp[keep])
                out[r] = int(torch.multinomial(p, 1))
        return out

    def _emit(self, s: Sequence, token: int) -> None:
        s.tokens.append(token)
        if s.first_token is None:
            s.first_token = time.perf_counter()
        if s.feed is not None:
            s.feed.put(token)
        if token in self.eos_ids or self._stopped(s):
            s.finish = "stop"
        elif len(s.tokens) >= s.max_tokens:
            s.finish = "length"

    def _stopped(self, s: Sequence) -> bool:
        if not s.stop:
            return False
        # a token decodes to at least one character, so this many tokens cover any stop string
        tail = max(len(x) for x in s.stop) + 1
        text = self.tokenizer.decode(s.tokens[-tail:], skip_special_tokens=True)
        return any(x in text for x in s.stop)

    def _retire(self) -> None:
        """End finished and cancelled sequences; the last running one takes a freed slot."""
        i = 0
        while i < len(self._running):
            s = self._running[i]
            if s.finish is None and s.cancelled.is_set():
                s.finish = "cancelled"
            if s.finish is None:
                i += 1
                continue
            last = len(self._running) - 1
            if i != last:
                self.slots.move(last, i)
                self._running[i] = self._running[last]
            self._running.pop()
            self._end(s, s.finish)

    def _end(self, s: Sequence, finish: str | None, error: BaseException | None = None) -> None:
        s.finish, s.error = finish or s.finish, error
        if error is None:
            TOKENS.inc(len(s.ids), kind="prompt")
            TOKENS.inc(len(s.tokens), kind="completion")
        if s.feed is not None:
            s.feed.put(None)
        s.done.set()
