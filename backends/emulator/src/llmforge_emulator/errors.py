"""Errors in the Databricks REST shape: ``{"error_code": ..., "message": ...}`` with its status.

The real clients turn the status into their own exception classes (404 -> NotFound, 403 ->
PermissionDenied, ...) and show ``message``; a traceback never leaves the emulator. The mapping
from llmforge errors is the server's (:mod:`llmforge.http_errors`), rendered in this shape.
"""

from __future__ import annotations

from llmforge import http_errors

#: Databricks error codes and the HTTP status each travels with.
STATUS = http_errors.DATABRICKS_STATUS


class ApiError(http_errors.ApiError):
    """An error answered to the client as ``{"error_code", "message"}``."""

    def __init__(self, error_code: str, message: str, status: int | None = None) -> None:
        super().__init__(status or STATUS[error_code], message, error_code=error_code)

    def body(self) -> dict[str, str]:
        return self.databricks_body()


def not_found(kind: str, name: str) -> ApiError:
    return ApiError("RESOURCE_DOES_NOT_EXIST", f"{kind} '{name}' does not exist.")


def bad_request(message: str) -> ApiError:
    return ApiError("INVALID_PARAMETER_VALUE", message)


def from_exception(exc: BaseException) -> ApiError:
    """The API error for an exception raised by the forge behind the emulator."""
    if isinstance(exc, ApiError):
        return exc
    err = http_errors.api_error(exc, databricks=True)
    return ApiError(err.error_code, err.message, err.status)
