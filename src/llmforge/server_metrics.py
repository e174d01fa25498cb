"""``/metrics`` (Prometheus text) and ``/health`` for `llmforge serve`.

A small ASGI middleware times every API request — latency, and for a streamed answer the time
to its first token (the first body chunk: the server sends the response head only once the
first token exists) — and counts requests by route and status, 429s (quota refusals) apart.
The engine behind the generator adds tokens, queue depth and batch sizes to the same registry
(:mod:`llmforge.metrics`).
"""

from __future__ import annotations

import time
from typing import Any

from llmforge import metrics

REQUESTS = metrics.counter("llmforge_requests_total", "API requests by route and HTTP status")
QUOTA_REJECTIONS = metrics.counter("llmforge_quota_rejections_total", "requests refused for quota (429)")
LATENCY = metrics.histogram("llmforge_request_latency_seconds", "time from request to last byte, by route")
TTFT = metrics.histogram("llmforge_time_to_first_token_seconds", "time from request to first streamed token")
_STARTED = time.time()


class Timing:
    """ASGI middleware recording each ``/v1/`` request's latency, TTFT and status."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        start, state = time.perf_counter(), {"status": 500, "stream": False, "first": None}

        async def timed(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = dict(message.get("headers") or [])
                state["stream"] = headers.get(b"content-type", b"").startswith(b"text/event-stream")
            elif message["type"] == "http.response.body" and state["stream"] and state["first"] is None:
                state["first"] = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            route, status = path, str(state["status"])
            REQUESTS.inc(route=route, status=status)
            if status == "429":
                QUOTA_REJECTIONS.inc()
            if status == "200":
                LATENCY.observe(time.perf_counter() - start, route=route)
                if state["first"] is not None:
                    TTFT.observe(state["first"] - start, route=route)


def mount(app: Any, svc: Any) -> None:
    """Add the timing middleware, ``GET /metrics`` and ``GET /health`` to the server's app."""
    from fastapi.responses import PlainTextResponse

    app.add_middleware(Timing)

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
