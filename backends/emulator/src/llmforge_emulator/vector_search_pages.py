"""Paged query results: a result longer than :data:`PAGE_SIZE` rows comes back in pages,
each but the last with a ``next_page_token`` the client redeems at
``GET /api/2.0/vector-search/indexes/{name}/query-next-page`` (``{endpoint_name, page_token}``).
A token is good once, for the principal and index it was issued to, for the emulator's life.
"""

from __future__ import annotations

import secrets
import threading
from typing import Any

from llmforge_emulator.errors import bad_request
from llmforge_emulator.routes import Call, Routes

#: rows per page (the service pages long results; the client concatenates the pages)
PAGE_SIZE = 1000
routes = Routes()
_lock = threading.Lock()


def _store(emu: Any) -> dict[str, tuple[str, str, dict, list]]:
    if not hasattr(emu, "query_pages"):
        emu.query_pages = {}
    return emu.query_pages


def _page(emu: Any, principal: str, index: str, manifest: dict, rows: list) -> dict[str, Any]:
    out: dict[str, Any] = {
        "manifest": manifest,
        "result": {"row_count": min(len(rows), PAGE_SIZE), "data_array": rows[:PAGE_SIZE]},
    }
    if len(rows) > PAGE_SIZE:
        token = secrets.token_urlsafe(16)
        with _lock:
            _store(emu)[token] = (principal, index, manifest, rows[PAGE_SIZE:])
        out["next_page_token"] = token
    return out


def first(emu: Any, call: Call, res: dict[str, Any]) -> dict[str, Any]:
    rows = res["result"].get("data_array") or []
    if len(rows) <= PAGE_SIZE:
        return res
    return {**res, **_page(emu, call.principal, call.path["name"], res["manifest"], rows)}


@routes.add("GET", "/api/2.0/vector-search/indexes/{name}/query-next-page")
@routes.add("POST", "/api/2.0/vector-search/indexes/{name}/query-next-page")
def next_page(emu: Any, call: Call) -> dict[str, Any]:
    token = call.required("page_token")
    with _lock:
        entry = _store(emu).get(token)
        if entry is None or entry[:2] != (call.principal, call.path["name"]):
            raise bad_request(
                "page_token is not valid for this index (expired, used, or issued to someone else)"
            )
        del _store(emu)[token]
    return _page(emu, call.principal, call.path["name"], entry[2], entry[3])
