"""A tiny route table the API modules fill without importing FastAPI (kept light).

A handler is ``fn(emu, call) -> dict | Reply``; :mod:`llmforge_emulator.app` turns the table
into FastAPI routes, resolves the caller and maps every error to the Databricks shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from llmforge_emulator.errors import bad_request


@dataclass
class Call:
    """One request as a handler sees it."""

    principal: str
    body: dict[str, Any]
    query: dict[str, Any]
    path: dict[str, str]

    def arg(self, name: str, default: Any = None) -> Any:
        """A field from the JSON body, else from the query string (GET requests carry either)."""
        if name in self.body:
            return self.body[name]
        return self.query.get(name, default)

    def required(self, name: str) -> Any:
        value = self.arg(name)
        if value is None or value == "" or value == []:
            raise bad_request(f"Missing required field: {name}")
        return value


@dataclass
class Reply:
    """A JSON answer with extra headers, or a server-sent-event stream when ``events`` is set."""

    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    events: Iterator[dict[str, Any]] | None = None


Handler = Callable[[Any, Call], "dict[str, Any] | Reply"]


class Routes:
    def __init__(self) -> None:
        self.table: list[tuple[str, str, Handler]] = []

    def add(self, method: str, *paths: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            for path in paths:
                self.table.append((method, path, fn))
            return fn

        return deco
