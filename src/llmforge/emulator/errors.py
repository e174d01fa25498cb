"""Errors in the Databricks REST shape: ``{"error_code": ..., "message": ...}`` with its status.

The real clients turn the status into their own exception classes (404 -> NotFound, 403 ->
PermissionDenied, ...) and show ``message``; a traceback never leaves the emulator.
"""

from __future__ import annotations

from llmforge import errors as E

#: Databricks error codes and the HTTP status each travels with.
STATUS = {
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
}


class ApiError(Exception):
    """An error answered to the client as ``{"error_code", "message"}``."""

    def __init__(self, error_code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.status = status or STATUS[error_code]

    def body(self) -> dict[str, str]:
        return {"error_code": self.error_code, "message": self.message}


def not_found(kind: str, name: str) -> ApiError:
    return ApiError("RESOURCE_DOES_NOT_EXIST", f"{kind} '{name}' does not exist.")


def bad_request(message: str) -> ApiError:
    return ApiError("INVALID_PARAMETER_VALUE", message)


# Order matters: the first matching class wins (subclasses before their bases).
_FROM_LLMFORGE: tuple[tuple[type[Exception], str], ...] = (
    (E.NotFoundError, "RESOURCE_DOES_NOT_EXIST"),
    (E.AlreadyExistsError, "RESOURCE_ALREADY_EXISTS"),
    (E.PermissionDeniedError, "PERMISSION_DENIED"),
    (E.QuotaExceededError, "REQUEST_LIMIT_EXCEEDED"),
    (E.ConfigError, "INVALID_PARAMETER_VALUE"),
    (E.DataError, "INVALID_PARAMETER_VALUE"),
    (E.GuardrailError, "BAD_REQUEST"),
    (E.ModelError, "BAD_REQUEST"),
    (E.LLMForgeError, "BAD_REQUEST"),
)


def from_exception(exc: Exception) -> ApiError:
    """The API error for an exception raised by the forge behind the emulator."""
    if isinstance(exc, ApiError):
        return exc
    for klass, code in _FROM_LLMFORGE:
        if isinstance(exc, klass):
            return ApiError(code, str(exc))
    # Anything else is a bug in llmforge, not in the request: say so without a traceback.
    return ApiError("INTERNAL_ERROR", f"internal error ({type(exc).__name__}): {exc}")
