"""The FastAPI app: auth, JSON bodies (also on GET, as the Vector Search client sends them),
and the Databricks error shape for every failure.

Imported only when a server starts (by :mod:`llmforge_emulator.server`), so FastAPI loads here.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from llmforge.tokens import TOKENS_FILE
from llmforge_emulator.errors import ApiError, from_exception
from llmforge_emulator.identity import Identity
from llmforge_emulator.routes import Call, Reply
from llmforge_emulator.serving import ServingEndpoints
from llmforge_emulator.state import State

if TYPE_CHECKING:
    from llmforge.forge import Forge

WORKSPACE_ID = "1234567890123456"
#: file that collects the routes the emulator answered (set by the test run that lists them)
CALL_LOG_VAR = "LLMFORGE_EMULATOR_CALL_LOG"


class Emulator:
    """What every handler needs: the forge behind the API, identity, and the emulator's state."""

    def __init__(
        self, forge: Forge, tokens: Mapping[str, str], serving_endpoints: Mapping[str, str] | None = None
    ) -> None:
        self.forge = forge
        self.identity = Identity(tokens, forge.home / TOKENS_FILE)
        self.state = State(forge.home / "emulator" / "state.json")
        self.serving = ServingEndpoints(serving_endpoints)
        #: the project's one quota ledger: serving calls here are charged as on the OpenAI server
        self.ledger = forge.quotas
        #: ``http://127.0.0.1:PORT`` once the server is bound; used in ``status.index_url``
        self.base_url = ""


def _all_routes() -> list[tuple[str, str, Any]]:
    from llmforge_emulator import (
        jobs,
        models,
        serving,
        serving_endpoints,
        sql,
        unity_catalog,
        vector_search,
        vector_search_data,
        vector_search_pages,
    )

    return [
        *vector_search.routes.table,
        *vector_search_data.routes.table,
        *vector_search_pages.routes.table,
        *serving.routes.table,
        *serving_endpoints.routes.table,
        *unity_catalog.routes.table,
        *models.routes.table,
        *sql.routes.table,
        *jobs.routes.table,
    ]


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ApiError("MALFORMED_REQUEST", f"Request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError("MALFORMED_REQUEST", "Request body must be a JSON object.")
    return body


def build_app(emu: Emulator) -> Any:
    app = FastAPI(title="llmforge Databricks emulator", docs_url=None, redoc_url=None, openapi_url=None)

    def error_response(err: ApiError) -> JSONResponse:
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(HTTPException)
    async def _no_route(request: Request, exc: HTTPException) -> JSONResponse:
        path = request.url.path
        return error_response(
            ApiError(
                "ENDPOINT_NOT_FOUND",
                f"No API found for '{request.method} {path}'. The llmforge emulator serves the subset of "
                f"the Databricks REST API that the Vector Search, Serving, Unity Catalog, SQL, Files and "
                f"Jobs clients use.",
                status=404 if exc.status_code in (404, 405) else exc.status_code,
            )
        )

    @app.get("/.well-known/databricks-config")
    async def _well_known() -> dict[str, Any]:
        # databricks-sdk's Config() probes this first; answering keeps client start-up quiet.
        return {
            "oidc_endpoint": f"{emu.base_url}/oidc",
            "workspace_id": WORKSPACE_ID,
            "account_id": None,
            "cloud": "aws",
        }

    @app.post("/oidc/v1/token")
    async def _oauth_token(request: Request) -> JSONResponse:
        # OAuth M2M as service principals use it: form body, client id/secret as basic auth
        form = parse_qs((await request.body()).decode())
        scheme, _, encoded = (request.headers.get("authorization") or "").partition(" ")
        try:
            client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            if scheme.lower() != "basic" or form.get("grant_type") != ["client_credentials"]:
                raise ApiError("UNAUTHENTICATED", "Send grant_type=client_credentials with basic auth.")
            principal = emu.identity.service_principal(client_id, secret)
        except (ValueError, ApiError) as exc:
            return JSONResponse({"error": "invalid_client", "error_description": str(exc)}, status_code=401)
        return JSONResponse(
            {
                "access_token": emu.identity.mint(principal),
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": (form.get("scope") or ["all-apis"])[0],
            }
        )

    def make(handler: Any) -> Any:
        async def endpoint(request: Request) -> Any:
            try:
                principal = emu.identity.principal(request.headers.get("authorization"))
                call = Call(
                    principal=principal,
                    body=await _json_body(request),
                    query=_query(request),
                    path=dict(request.path_params),
                )
                result = await run_in_threadpool(handler, emu, call)
            except Exception as exc:  # every failure leaves as a Databricks error, never a traceback
                return error_response(from_exception(exc))
            if isinstance(result, Reply):
                if result.events is not None:
                    return StreamingResponse(
                        _sse(result.events), media_type="text/event-stream", headers=result.headers
                    )
                return JSONResponse(result.body, headers=result.headers)
            return JSONResponse(result)

        return endpoint

    from llmforge_emulator import files

    files.add_routes(app, emu, error_response)
    for method, path, handler in _all_routes():
        app.add_api_route(path, make(handler), methods=[method])
    log = os.environ.get(CALL_LOG_VAR)
    if log:
        _log_calls(app, Path(log))
    return app


def _log_calls(app: Any, path: Path) -> None:
    """Append ``METHOD route`` of every answered request to ``path`` (the list of client calls
    the tests exercise is generated from it: ``scripts/databricks_calls.py``)."""
    lock = threading.Lock()

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", None)
        if route:
            with lock, path.open("a") as f:
                f.write(f"{request.method} {route} {response.status_code}\n")
        return response


def _query(request: Request) -> dict[str, Any]:
    """Query parameters; a repeated one (``?primary_keys=1&primary_keys=2``) becomes a list."""
    out: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in out:
            out[key] = [*out[key], value] if isinstance(out[key], list) else [out[key], value]
        else:
            out[key] = value
    return out


def _sse(events: Any) -> Any:
    try:
        for event in events:
            yield f"data: {json.dumps(event)}\n\n"
    except Exception as exc:  # the stream has started: report in-band, as the service does
        yield f"data: {json.dumps({'error': from_exception(exc).body()})}\n\n"
    yield "data: [DONE]\n\n"
