"""A streamed response that always closes the iterator behind it.

Starlette leaves a sync body iterator unclosed when the client goes away mid-stream (it is only
finalised whenever garbage collection gets to it), so the generation behind a disconnected
stream would run on to ``max_tokens`` and its quota hold would never settle. Closing it as soon
as the response ends — finished, failed or disconnected — cancels the generation at its next
step and charges the tokens it produced.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse


class ClosingStreamingResponse(StreamingResponse):
    def __init__(self, content: Iterator[str], **kw: Any) -> None:
        self._source = content
        super().__init__(content, **kw)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:  # waits for the generator's own cleanup (settling its hold);
                await run_in_threadpool(close)  # a cancelled caller waits for the thread too
