"""Streamed answers as server-sent events (``stream: true``) for :mod:`llmforge.server`.

A streamed answer keeps its quota hold open while the response streams and settles it when the
stream ends — finished, failed, or abandoned by its client (the generator is closed, so it stops
at its next step, and the tokens it produced are charged). It re-checks the caller's bearer
token every :data:`REVOCATION_CHECK_S`, so a token revoked mid-stream stops the answer. Once the
200 has gone out an error can only be the stream's last event, ``data: {"error": {...}}`` in
OpenAI's shape (the `openai` client raises it as an ``APIError``).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from llmforge.http_errors import ApiError, api_error
from llmforge.usage import UsageRecord

#: how often a streaming answer re-checks that its bearer token is still valid
REVOCATION_CHECK_S = 0.25
log = logging.getLogger("llmforge.server")
#: ``((prompt_tokens, completion_tokens), finish_reason, cached prompt tokens)`` of a finished answer
Outcome = Callable[[], tuple[tuple[int, int], str, int]]


def sse(obj: Any) -> str:
    return f"data: {json.dumps(obj)}\n\n"


def token_counts(usage: Any) -> tuple[int, int]:
    """``(prompt_tokens, completion_tokens)`` of a usage object or dict."""
    if isinstance(usage, Mapping):
        return int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return int(getattr(usage, "prompt_tokens", 0)), int(getattr(usage, "completion_tokens", 0))


def cached_tokens(usage: Any) -> int:
    """Prompt tokens a prefix cache served, of a usage object or dict (0 when it does not say)."""
    if isinstance(usage, Mapping):
        return int((usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0) or 0)
    return int(getattr(usage, "cached_tokens", 0) or 0)


def usage_body(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    """OpenAI's ``usage`` object."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def revoked_error() -> ApiError:
    return ApiError(
        401,
        "the API token was revoked while this answer streamed; the answer was stopped (the tokens "
        "it produced are charged). Ask an admin for a new token (`llmforge token create <user>`)",
        "authentication_error",
        "token_revoked",
    )


def held_pieces(
    stream: Iterator[str],
    first: str | None,
    held: Any,
    hold: Any,
    prompt: int,
    rec: UsageRecord,
    revoked: Callable[[], bool] | None,
) -> tuple[Iterator[str], Outcome]:
    """The text pieces of a generator ``stream`` whose first piece (``first``) is already out,
    inside the open quota hold ``held`` (``hold`` its :class:`~llmforge.quotas.Hold`), and the
    function that reports its usage and finish reason once it has ended."""
    sent: list[str] = []

    def pieces() -> Iterator[str]:
        checked = time.monotonic()
        with held:  # settles on completion, on error and when the client goes away
            try:
                for p in itertools.chain([] if first is None else [first], stream):
                    sent.append(p)
                    hold.used = prompt + len(sent)  # what a cancelled stream has consumed so far
                    rec.charge(prompt, len(sent))
                    if revoked is not None and time.monotonic() - checked >= REVOCATION_CHECK_S:
                        checked = time.monotonic()
                        if revoked():
                            raise revoked_error()
                    yield p
            finally:
                close = getattr(stream, "close", None)
                if close:
                    close()
                done = getattr(stream, "completion", None)
                if done is not None:
                    hold.used = sum(token_counts(done.usage))
                    rec.charge(*token_counts(done.usage))
                    rec.served_by(done.model)

    def outcome() -> tuple[tuple[int, int], str, int]:
        done = getattr(stream, "completion", None)
        if done is not None:
            return token_counts(done.usage), done.finish_reason, cached_tokens(done.usage)
        return (prompt, len(sent)), "stop", 0

    return pieces(), outcome


def chat_events(
    req: Any,
    cid: str,
    created: int,
    pieces: Iterator[str],
    outcome: Outcome,
    extra: dict,
    rec: UsageRecord,
) -> Iterator[str]:
    """``chat.completion.chunk`` events: the role, each piece, the finish (with ``extra``), the
    usage when asked for, ``[DONE]`` — or an error event ending the stream."""

    def chunk(delta: dict, finish: str | None = None, **more: Any) -> str:
        return sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": req.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **more,
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    try:
        for p in pieces:
            if p:
                yield chunk({"content": p})
    except Exception as exc:  # the 200 is out: the error is the stream's last event
        e = api_error(exc)
        if e.status >= 500:
            log.error("stream failed: %s", exc, exc_info=exc)
        rec.status = e.status
        yield sse(e.openai_body())
        return
    usage, finish, cached = outcome()
    yield chunk({}, finish, **extra)
    if req.include_usage:
        yield sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": req.model,
                "choices": [],
                "usage": usage_body(*usage, cached),
            }
        )
    yield "data: [DONE]\n\n"
