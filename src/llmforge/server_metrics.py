"""``/metrics`` (Prometheus text) and ``/health`` for `llmforge serve`.

A small ASGI middleware times every API request — latency, and for a streamed answer the time
to its first token (the first body chunk: the server sends the response head only once the
first token exists) — and counts requests by route and status, 429s (quota refusals) apart,
499 for a client that went away before its answer ended. It also closes each generating
request's row of the usage table (:mod:`llmforge.usage`) with that status and those times.
The engine behind the generator adds tokens, queue depth and batch sizes to the same registry
(:mod:`llmforge.metrics`).
"""

from __future__ import annotations

import time
from typing import Any

from llmforge import metrics
from llmforge.usage import CLIENT_CLOSED, ROUTES, UsageRecord

REQUESTS = metrics.counter("llmforge_requests_total", "API requests by route and HTTP status")
QUOTA_REJECTIONS = metrics.counter("llmforge_quota_rejections_total", "requests refused for quota (429)")
LATENCY = metrics.histogram("llmforge_request_latency_seconds", "time from request to last byte, by route")
TTFT = metrics.histogram("llmforge_time_to_first_token_seconds", "time from request to first streamed token")
_STARTED = time.time()


class Timing:
    """ASGI middleware recording each ``/v1/`` request's latency, TTFT and status; with a
    ``usage`` log, each generating request's usage row too (the route fills the record it
    finds in ``request.state.usage``)."""

    def __init__(self, app: Any, usage: Any = None) -> None:
        self.app, self.usage = app, usage

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "stream": False, "first": None, "ended": False, "gone": False}
        rec = None
        if self.usage is not None and path in ROUTES:
            rec = scope.setdefault("state", {})["usage"] = UsageRecord(route=path)

        async def watched() -> dict:
            message = await receive()
            if message["type"] == "http.disconnect" and not state["ended"]:
                state["gone"] = True
            return message

        async def timed(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = dict(message.get("headers") or [])
                state["stream"] = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            elif message["type"] == "http.response.body":
                if state["stream"] and state["first"] is None:
                    state["first"] = time.perf_counter()
                state["ended"] = not message.get("more_body", False)
            try:
                await send(message)
            except OSError:  # ASGI 2.4: sending to a client that disconnected
                state["gone"] = True
                raise

        try:
            await self.app(scope, watched, timed)
        except Exception as exc:
            from starlette.requests import ClientDisconnect

            state["gone"] = state["gone"] or isinstance(exc, ClientDisconnect)
            raise
        finally:
            if state["gone"] and not state["ended"]:
                state["status"] = CLIENT_CLOSED
            route, status = path, str(state["status"])
            REQUESTS.inc(route=route, status=status)
            if status == "429":
                QUOTA_REJECTIONS.inc()
            if status == "200":
                LATENCY.observe(time.perf_counter() - start, route=route)
                if state["first"] is not None:
                    TTFT.observe(state["first"] - start, route=route)
            if rec is not None:
                first = None if state["first"] is None else state["first"] - start
                self.usage.add(rec.row(state["status"], time.perf_counter() - start, first))


def mount(app: Any, svc: Any) -> None:
    """Add the timing middleware, ``GET /metrics`` and ``GET /health`` to the server's app."""
    from fastapi.responses import PlainTextResponse

    app.add_middleware(Timing, usage=svc.usage)

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics_text() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/health")
    def health() -> dict:
        gauges = {
            name: metrics.value(name) for name in ("llmforge_queue_depth", "llmforge_running_sequences")
        }
        return {
            "status": "ok",
            "models": svc.models(),
            "uptime_s": round(time.time() - _STARTED, 1),
            **gauges,
        }
