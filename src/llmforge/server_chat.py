"""The chat page at ``/`` and ``GET /v1/quota`` for `llmforge serve`.

The page (``web/chat.html``, package data) is one self-contained file: it signs in with an
API token kept in ``sessionStorage``, streams answers from ``/v1/chat/completions`` and shows
the ``rag`` model's citations and guard verdicts and the caller's remaining quota. It is
served with a Content-Security-Policy that allows only its own inline script and style (by
hash) and requests to this server, so nothing the model writes can run even if it got into
the markup — and the page puts every text in with ``textContent``, never as markup.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources
from typing import Any

from llmforge.quotas import UNASSIGNED

PAGE = "web/chat.html"


def _hashes(html: str, tag: str) -> str:
    digests = (hashlib.sha256(b.encode()).digest() for b in re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.S))
    return " ".join(f"'sha256-{base64.b64encode(d).decode()}'" for d in digests)


@cache
def page() -> tuple[str, dict[str, str]]:
    """The page and its security headers (the CSP names its inline script and style by hash)."""
    html = resources.files("llmforge").joinpath(PAGE).read_text(encoding="utf-8")
    csp = (
        f"default-src 'none'; script-src {_hashes(html, 'script')}; style-src {_hashes(html, 'style')}; "
        "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    headers = {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return html, headers


def quota(svc: Any, who: Any) -> dict:
    """Today's standing of each of the caller's departments in the quota ledger."""
    mine = sorted(who.departments) or [UNASSIGNED]
    rows = {r["department"]: r for r in svc.ledger.usage() if r["department"] in mine}
    keys = ("limit", "used", "reserved", "remaining")
    empty = {"limit": None, "used": 0, "reserved": 0, "remaining": None}  # unlimited, unused today
    return {
        "object": "quota",
        "principal": who.name,
        "resets_at": svc.ledger.resets_at().isoformat(),
        "departments": [{"department": d, **{k: rows.get(d, empty)[k] for k in keys}} for d in mine],
    }


def mount(app: Any, svc: Any, identify: Any) -> None:
    """Add ``GET /`` (and ``/chat``), the chat page, and ``GET /v1/quota`` to the server's app."""
    from fastapi import Depends
    from fastapi.responses import HTMLResponse

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    @app.get("/chat", response_class=HTMLResponse, include_in_schema=False)
    def chat_page() -> HTMLResponse:
        html, headers = page()
        return HTMLResponse(html, headers=headers)

    @app.get("/v1/quota")
    def quota_route(who: Any = Depends(identify)) -> dict:  # noqa: B008 (FastAPI's idiom)
        return quota(svc, who)
