"""The workspace connection: credentials only from env vars, and client errors translated
into llmforge's error family (the same exception types the local backend raises)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from llmforge import errors as E

HOST_VAR, TOKEN_VAR = "DATABRICKS_HOST", "DATABRICKS_TOKEN"


def credentials() -> tuple[str, str]:
    """``(host, token)`` from ``DATABRICKS_HOST`` / ``DATABRICKS_TOKEN``; never from a file."""
    host, token = os.environ.get(HOST_VAR, "").strip(), os.environ.get(TOKEN_VAR, "").strip()
    missing = [v for v, val in ((HOST_VAR, host), (TOKEN_VAR, token)) if not val]
    if missing:
        raise E.ConfigError(
            f"the databricks backend needs {' and '.join(missing)} in the environment "
            f"(e.g. export {HOST_VAR}=https://<workspace>.cloud.databricks.com {TOKEN_VAR}=dapi...); "
            f"to develop offline, run `llmforge emulator` and point {HOST_VAR} at it"
        )
    if not host.startswith(("http://", "https://")):
        host = "https://" + host
    return host.rstrip("/"), token


def reachable_credentials() -> tuple[str, str]:
    """:func:`credentials`, once the host has been seen to answer (see :func:`_check_reachable`)."""
    host, token = credentials()
    _check_reachable(host)
    return host, token


_REACHED: set[str] = set()


def _check_reachable(host: str) -> None:
    """Fail fast on a host nothing answers at: the clients would retry for minutes (the SDK
    for 300 s) before saying so. One TCP connect per host and process; skipped behind a proxy."""
    if host in _REACHED or any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(host)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname, port), timeout=10).close()
    except (OSError, ValueError) as exc:
        raise E.ConfigError(
            f"cannot reach the Databricks workspace at {HOST_VAR}={host} ({exc}); check the URL "
            f"(https://<workspace>.cloud.databricks.com), or run `llmforge emulator` and point "
            f"{HOST_VAR} at it"
        ) from None
    _REACHED.add(host)


def workspace_client() -> Any:
    """A ``databricks.sdk.WorkspaceClient`` for the env credentials."""
    from databricks.sdk import WorkspaceClient

    host, token = reachable_credentials()
    return WorkspaceClient(host=host, token=token, auth_type="pat")


# Exception class names shared by databricks-sdk and the Vector Search client, by status.
_BY_NAME = (
    ("NotFound", E.NotFoundError),
    ("PermissionDenied", E.PermissionDeniedError),
    ("Unauthenticated", E.ConfigError),
    ("ResourceConflict", E.AlreadyExistsError),
    ("TooManyRequests", E.QuotaExceededError),
    ("BadRequest", E.DataError),
    ("InvalidInputException", E.DataError),
)
_BY_STATUS = {
    400: E.DataError,
    401: E.ConfigError,
    403: E.PermissionDeniedError,
    404: E.NotFoundError,
    409: E.AlreadyExistsError,
    429: E.QuotaExceededError,
}


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    response = getattr(exc, "response", None)
    if status is None and response is not None:
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def translate(exc: BaseException, doing: str) -> E.LLMForgeError:
    """The llmforge error for a client exception raised while ``doing`` something."""
    names = {k.__name__ for k in type(exc).__mro__}
    klass = next((k for name, k in _BY_NAME if name in names), None) or _BY_STATUS.get(_status(exc) or 0)
    message = f"Databricks refused to {doing}: {exc}"
    if klass is E.ConfigError:
        message += f". Check {TOKEN_VAR} (expired or revoked?) and {HOST_VAR}"
    return (klass or E.LLMForgeError)(message)


@contextmanager
def calling(doing: str) -> Iterator[None]:
    """Re-raise workspace client errors as llmforge errors naming what was being done."""
    try:
        yield
    except E.LLMForgeError:
        raise
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("databricks", "requests", "mlflow", "urllib3"):
            raise translate(exc, doing) from exc
        raise
