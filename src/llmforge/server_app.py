"""FastAPI wiring of :mod:`llmforge.server`: request schemas, routes, errors as OpenAI JSON.

Imported only when a server starts (FastAPI and pydantic request models are not needed by
``import llmforge``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException

from llmforge.errors import LLMForgeError
from llmforge.http_errors import ApiError, api_error
from llmforge.server import Service
from llmforge.server_metrics import mount as mount_metrics
from llmforge.server_stream import ClosingStreamingResponse

log = logging.getLogger("llmforge.server")


class Part(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[Part]

    def as_dict(self) -> dict[str, str]:
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": self.role, "content": text}


class _Sampling(BaseModel):
    # unknown OpenAI fields (seed, penalties, ...) are accepted and ignored, as most servers do
    model_config = ConfigDict(extra="ignore")
    model: str
    max_tokens: int | None = Field(None, ge=1, le=8192)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    stream: bool = False
    n: int = Field(1, ge=1, le=1, description="one choice per request")

    @model_validator(mode="after")
    def _stops(self) -> _Sampling:
        if isinstance(self.stop, str):
            self.stop = [self.stop]
        if self.stop is not None and len(self.stop) > 4:
            raise ValueError("stop takes at most 4 strings")
        return self


class ChatRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    stream_options: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _length(self) -> ChatRequest:
        self.max_tokens = self.max_tokens or self.max_completion_tokens or 256
        return self


class CompletionRequest(_Sampling):
    prompt: str | list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _length(self) -> CompletionRequest:
        self.max_tokens = self.max_tokens or 16  # OpenAI's default for completions
        return self


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

    def identify(request: Request) -> Any:
        return svc.principal(request.headers.get("authorization"), request.headers.get("x-llmforge-user"))

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
        parts = [
            f"'{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}': {e['msg']}"
            for e in exc.errors()
        ]
        return _error(422, "invalid request: " + "; ".join(parts), "invalid_request_error", "invalid_value")

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
    def chat(req: ChatRequest, who: Any = Depends(identify)) -> Any:
        return _respond(svc.chat(req, who))

    @app.post("/v1/completions")
    def completions(req: CompletionRequest, who: Any = Depends(identify)) -> Any:
        return _respond(svc.complete(req, who))

    mount_metrics(app, svc)  # /metrics, /health and request timing (llmforge.server_metrics)
    return app
