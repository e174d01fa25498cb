"""FastAPI wiring of :mod:`llmforge.server`: routes, errors as OpenAI JSON (the request
schemas are in :mod:`llmforge.server_schema`).

Imported only when a server starts (FastAPI and pydantic request models are not needed by
``import llmforge``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from llmforge.errors import LLMForgeError
from llmforge.http_errors import ApiError, api_error
from llmforge.server import Service
from llmforge.server_chat import mount as mount_chat
from llmforge.server_metrics import mount as mount_metrics
from llmforge.server_schema import ChatRequest, CompletionRequest, describe
from llmforge.server_stream import ClosingStreamingResponse

log = logging.getLogger("llmforge.server")


def _error(
    status: int, message: str, type_: str, code: str | None, headers: dict | None = None
) -> JSONResponse:
    return _render(ApiError(status, message, type_, code, headers))


def _render(e: ApiError) -> JSONResponse:
    return JSONResponse(e.openai_body(), status_code=e.status, headers=e.headers)


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is a 413 before anything parses it."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _too_large(self, size: str) -> ApiError:
        return ApiError(
            413,
            f"the request body is {size} bytes; the limit is {self.max_bytes} "
            "(limits.max_request_bytes in llmforge.yaml)",
            code="request_too_large",
        )

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _render(self._too_large(length.decode("latin-1")))(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # a chunked body without a length: stop reading at the limit
                raise HTTPException(413, self._too_large(f"more than {self.max_bytes}").message)
            return message

        await self.app(scope, limited, send)


def _respond(out: dict | Iterator[str]) -> Any:
    if isinstance(out, dict):
        return out
    return ClosingStreamingResponse(
        out, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def build_app(svc: Service) -> FastAPI:
    app = FastAPI(title="llmforge", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = svc

    def identify(request: Request) -> Any:
        who = svc.principal(request.headers.get("authorization"), request.headers.get("x-llmforge-user"))
        rec = getattr(request.state, "usage", None)
        if rec is not None:
            rec.caller(who)
        return who

    app.add_middleware(BodyLimit, max_bytes=svc.limits.max_request_bytes)

    @app.exception_handler(ApiError)
    def _api(_: Request, exc: ApiError) -> JSONResponse:
        return _render(exc)

    @app.exception_handler(LLMForgeError)
    @app.exception_handler(UnicodeError)
    def _forge(_: Request, exc: Exception) -> JSONResponse:
        e = api_error(exc)
        if e.status >= 500:
            log.error("request failed: %s", exc, exc_info=exc)
        return _render(e)

    @app.exception_handler(RequestValidationError)
    def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param, code = describe(list(exc.errors()))  # 400 naming the field, as OpenAI does
        return _render(ApiError(400, message, "invalid_request_error", code, param=param))

    @app.exception_handler(HTTPException)
    def _http(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 413: "request_too_large"}.get(exc.status_code)
        return _error(exc.status_code, str(exc.detail), "invalid_request_error", code)

    @app.exception_handler(Exception)
    def _crash(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return _error(500, "internal server error; see the server log", "server_error", "internal_error")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "models": svc.models()}

    @app.get("/v1/models")
    def models(who: Any = Depends(identify)) -> dict:
        return {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": svc.created, "owned_by": "llmforge"}
                for m in svc.models()
            ],
        }

    @app.post("/v1/chat/completions")
    def chat(req: ChatRequest, request: Request, who: Any = Depends(identify)) -> Any:
        revoked = svc.revoked(request.headers.get("authorization"))
        return _respond(svc.chat(req, who, getattr(request.state, "usage", None), revoked))

    @app.post("/v1/completions")
    def completions(req: CompletionRequest, request: Request, who: Any = Depends(identify)) -> Any:
        return _respond(svc.complete(req, who, getattr(request.state, "usage", None)))

    mount_metrics(app, svc)  # /metrics, /health and request timing (llmforge.server_metrics)
    mount_chat(app, svc, identify)  # the chat page at / and GET /v1/quota (llmforge.server_chat)
    return app
