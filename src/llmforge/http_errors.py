"""One mapping from the llmforge error family to HTTP, with two renderers.

The OpenAI-compatible server answers ``{"error": {"message", "type", "code", "param"}}``; the
Databricks emulator answers ``{"error_code", "message"}`` as the real workspace does. Both
turn exceptions into :class:`ApiError` through :func:`api_error`, so an error class has one
status everywhere (Databricks codes carry their own status, as the real service's do).
"""

from __future__ import annotations

from typing import Any

from llmforge import errors as E

#: Databricks error codes and the HTTP status each travels with.
DATABRICKS_STATUS = {
    "INVALID_PARAMETER_VALUE": 400,
    "BAD_REQUEST": 400,
    "MALFORMED_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_ALREADY_EXISTS": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INTERNAL_ERROR": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
}

# (error class, HTTP status, OpenAI type, OpenAI code, Databricks error code); first match wins,
# so subclasses come before their bases.
MAPPING: tuple[tuple[type[Exception], int, str, str, str], ...] = (
    (E.QuotaExceededError, 429, "insufficient_quota", "quota_exceeded", "REQUEST_LIMIT_EXCEEDED"),
    (E.AuthenticationError, 401, "authentication_error", "invalid_api_key", "UNAUTHENTICATED"),
    (E.PermissionDeniedError, 403, "permission_error", "permission_denied", "PERMISSION_DENIED"),
    (E.NotFoundError, 404, "invalid_request_error", "not_found", "RESOURCE_DOES_NOT_EXIST"),
    (E.AlreadyExistsError, 409, "invalid_request_error", "already_exists", "RESOURCE_ALREADY_EXISTS"),
    (E.RequestTooLargeError, 413, "invalid_request_error", "request_too_large", "INVALID_PARAMETER_VALUE"),
    (E.GuardrailError, 400, "invalid_request_error", "guardrail_blocked", "BAD_REQUEST"),
    (E.ConfigError, 400, "invalid_request_error", "invalid_value", "INVALID_PARAMETER_VALUE"),
    (E.DataError, 400, "invalid_request_error", "invalid_value", "INVALID_PARAMETER_VALUE"),
    (E.ModelError, 500, "server_error", "model_error", "BAD_REQUEST"),
    (E.LLMForgeError, 500, "server_error", "model_error", "BAD_REQUEST"),
)


class ApiError(Exception):
    """An HTTP error: status, message, the OpenAI ``type``/``code`` and the Databricks code."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        code: str | None = None,
        headers: dict[str, str] | None = None,
        error_code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code = status, message, type_, code
        #: the request field at fault (OpenAI's ``param``), e.g. ``messages[0].role``
        self.param = param
        self.headers = headers
        self.error_code = error_code or _databricks_code(status)

    def openai_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}

    def databricks_body(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


def _databricks_code(status: int) -> str:
    for code, s in DATABRICKS_STATUS.items():
        if s == status:
            return code
    return "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"


def databricks_error(error_code: str, message: str, status: int | None = None) -> ApiError:
    """An error in the Databricks vocabulary (its status from :data:`DATABRICKS_STATUS`)."""
    status = status or DATABRICKS_STATUS[error_code]
    return ApiError(status, message, error_code=error_code)


def api_error(exc: BaseException, *, databricks: bool = False) -> ApiError:
    """The HTTP error for an exception; anything outside the llmforge family is a 500 that
    names no internals (the caller logs the traceback)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, UnicodeError):  # text no tokenizer can encode (a lone surrogate)
        exc = E.DataError(f"the request holds text that is not valid Unicode ({exc.reason}); send UTF-8")
    for klass, status, type_, code, db_code in MAPPING:
        if isinstance(exc, klass):
            headers = None
            retry = getattr(exc, "retry_after_s", None)
            if retry:
                headers = {"Retry-After": str(retry)}
            if databricks:
                return databricks_error(db_code, str(exc))
            return ApiError(status, str(exc), type_, code, headers)
    if databricks:
        return databricks_error(
            "INTERNAL_ERROR", f"internal error ({type(exc).__name__}); see the emulator log"
        )
    return ApiError(500, "internal server error; see the server log", "server_error", "internal_error")
