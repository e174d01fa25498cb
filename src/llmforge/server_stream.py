"""A streamed response that always closes the iterator behind it, and pumps it from a thread.

Starlette leaves a sync body iterator unclosed when the client goes away mid-stream (it is only
finalised whenever garbage collection gets to it), so the generation behind a disconnected
stream would run on to ``max_tokens`` and its quota hold would never settle. Closing it as soon
as the response ends — finished, failed or disconnected — cancels the generation at its next
step and charges the tokens it produced.

Starlette would also hand every ``next()`` of a sync iterator to its thread pool: one round trip
through anyio (a capacity limiter, a worker wake-up, a result sent back) per streamed token, on
the event loop that serves every other client, and at most 40 streams at a time. Here one thread
per stream runs the iterator (its quota, usage and generation code may block) and hands each
piece to the event loop with ``call_soon_threadsafe``; pieces that queued up while the loop was
busy go out as one write.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

_END = object()


class _Pump:
    """``source`` iterated in a thread of its own; :meth:`pieces` yields what it produces."""

    def __init__(self, source: Iterator[str]) -> None:
        self.source = source
        self.started = False
        self._stop = threading.Event()
        self._done: asyncio.Future | None = None

    async def pieces(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        self._done = loop.create_future()
        self.started = True
        threading.Thread(target=self._run, args=(loop, queue), name="llmforge-stream", daemon=True).start()
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            text = "".join(x for x in items if isinstance(x, str))
            if text:
                yield text
            last = items[-1]
            if isinstance(last, BaseException):
                raise last
            if last is _END:
                return

    def _run(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue) -> None:
        def hand(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop has closed: the server is shutting down
                self._stop.set()

        try:
            for piece in self.source:
                if self._stop.is_set():  # the response ended (client gone): stop here
                    break
                hand(piece)
            hand(_END)
        except BaseException as exc:  # re-raised on the event loop, as Starlette would
            hand(exc)
        finally:
            try:
                close = getattr(self.source, "close", None)
                if close is not None:  # here, in the thread that ran it: never "already executing"
                    close()
            finally:
                try:
                    loop.call_soon_threadsafe(self._finish)
                except RuntimeError:
                    pass

    def _finish(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    async def close(self) -> None:
        """Stop the pump and wait until the source is closed (its hold settled); a cancelled
        caller still waits, then is cancelled."""
        self._stop.set()
        if not self.started:
            close = getattr(self.source, "close", None)
            if close is not None:
                await run_in_threadpool(close)
            return
        cancelled = False
        while self._done is not None and not self._done.done():
            try:
                await asyncio.shield(self._done)
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError


class ClosingStreamingResponse(StreamingResponse):
    def __init__(self, content: Iterator[str], **kw: Any) -> None:
        self._pump = _Pump(content)
        super().__init__(self._pump.pieces(), **kw)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._pump.close()
