"""The usage table: one row per request the server answered, on every generating route.

``system.llmforge.usage`` (a Delta table owned by the system, written through the
:class:`~llmforge.components.Table` contract like the RAG request log) holds, per request to
``/v1/chat/completions`` or ``/v1/completions`` — streamed or not, the ``rag`` model too, errors
included: request_id, ts, principal, departments, route, model, adapter (the registered
version that answered, ``models:/name/version``; null for the bare base model), prompt and
completion tokens, latency_ms, ttft_ms (streams), status (200, 4xx, 429, 499 when the client
went away mid-answer) and, for ``rag``, ``answer_id``: the answer's request id in the request
log and in lineage (``answer:<id>``). Only members of ``admins`` may read it.

Off the hot path: a request only appends its row to a list; one background thread commits
the rows collected every ``flush_s`` seconds (or as soon as ``flush_rows`` wait), one Delta
commit per batch instead of one per request. The trade-off: a clean shutdown (Ctrl-C,
SIGTERM, ``stop()``) flushes everything, but a killed process (``kill -9``, power loss)
loses the rows of at most the last ``flush_s`` seconds — never a half-written commit. The
quota ledger, not this table, is what enforces limits, so a lost row never lets a token go
uncharged.
"""

from __future__ import annotations

import logging
import statistics
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from llmforge.errors import PermissionDeniedError

if TYPE_CHECKING:
    from llmforge.components import Table
    from llmforge.forge import Forge

USAGE_TABLE = "system.llmforge.usage"
#: the routes a usage row is written for (the ones that generate)
ROUTES = ("/v1/chat/completions", "/v1/completions")
#: the status of a request whose client disconnected before the answer ended (nginx's code)
CLIENT_CLOSED = 499
#: rows kept for a retry when the table cannot be written; beyond this the oldest are dropped
MAX_PENDING = 100_000
UNASSIGNED = "unassigned"
log = logging.getLogger("llmforge.usage")


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("request_id", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("principal", pa.string()),
            ("departments", pa.list_(pa.string())),
            ("route", pa.string()),
            ("model", pa.string()),
            ("adapter", pa.string()),
            ("stream", pa.bool_()),
            ("prompt_tokens", pa.int64()),
            ("completion_tokens", pa.int64()),
            ("latency_ms", pa.float64()),
            ("ttft_ms", pa.float64()),
            ("status", pa.int32()),
            ("answer_id", pa.string()),
        ]
    )


@dataclass
class UsageRecord:
    """What one request did, filled in as it is served; the server middleware sets the rest."""

    route: str
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    principal: str | None = None
    departments: tuple[str, ...] = ()
    model: str | None = None
    adapter: str | None = None
    stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: the answer's id in the RAG request log (several prompts: comma-separated)
    answer_id: str | None = None
    #: an outcome the HTTP status cannot carry (a stream that failed after its 200 went out)
    status: int | None = None

    def caller(self, who: Any) -> None:
        self.principal, self.departments = who.name, tuple(sorted(who.departments))

    def served_by(self, model_name: str | None) -> None:
        """The registered version that answered (a routed adapter), from a completion's ``model``."""
        if model_name and model_name.startswith("models:/"):
            self.adapter = model_name

    def charge(self, prompt: int, completion: int) -> None:
        self.prompt_tokens, self.completion_tokens = int(prompt), int(completion)

    def row(self, status: int, latency_s: float, ttft_s: float | None) -> dict:
        return {
            "request_id": self.request_id,
            "ts": self.ts,
            "principal": self.principal,
            "departments": list(self.departments),
            "route": self.route,
            "model": self.model,
            "adapter": self.adapter,
            "stream": self.stream,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_ms": round(latency_s * 1000, 3),
            "ttft_ms": None if ttft_s is None else round(ttft_s * 1000, 3),
            "status": self.status or status,
            "answer_id": self.answer_id,
        }


def usage_table(forge: Forge) -> Table:
    """The usage table, created on first use by the system and readable by ``admins`` only."""
    from llmforge.catalog import SYSTEM
    from llmforge.catalog.identity import ADMINS
    from llmforge.errors import AlreadyExistsError

    t = forge.table(USAGE_TABLE, user=SYSTEM)
    if not t.exists:
        try:
            t.create(_schema(), comment="one row per request served by `llmforge serve`")
        except AlreadyExistsError:  # another server process created it first
            pass
    system = forge.catalog.as_user(SYSTEM)
    catalog, schema = USAGE_TABLE.split(".")[:2]
    for privilege, securable in (("USE", catalog), ("USE", f"{catalog}.{schema}"), ("SELECT", USAGE_TABLE)):
        system.grant(privilege, securable, ADMINS)  # idempotent: also repairs a start that died here
    return t


class UsageLog:
    """Collects usage rows and commits them in batches from one background thread."""

    def __init__(self, forge: Forge, *, flush_s: float = 2.0, flush_rows: int = 256) -> None:
        self.forge, self.flush_s, self.flush_rows = forge, flush_s, flush_rows
        self._rows: list[dict] = []
        self._lock = threading.Lock()  # guards _rows
        self._writing = threading.Lock()  # one commit at a time
        self._wake = threading.Event()
        self._closed = False
        self._table: Table | None = None
        self._thread = threading.Thread(target=self._run, name="llmforge-usage", daemon=True)
        self._thread.start()

    def add(self, row: dict) -> None:
        """Queue one row (cheap: the commit happens on the writer thread)."""
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= self.flush_rows
        if full or self._closed:
            self._wake.set()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Commit the queued rows now (one Delta commit); returns how many were written."""
        import pyarrow as pa

        with self._writing:
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                if self._table is None:
                    self._table = usage_table(self.forge)
                self._table.append(pa.Table.from_pylist(rows, schema=_schema()), job="serve.usage")
            except Exception as exc:  # keep serving; the rows wait for the next flush
                log.error("could not write %d usage rows to %s (will retry): %s", len(rows), USAGE_TABLE, exc)
                with self._lock:
                    self._rows[:0] = rows
                    del self._rows[: max(0, len(self._rows) - MAX_PENDING)]
                return 0
        return len(rows)

    def close(self) -> None:
        """Stop the writer and commit whatever is still queued (a clean shutdown loses nothing)."""
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=60)
        self.flush()


# ---- reading: `llmforge usage` ------------------------------------------------------------------


def read_usage(forge: Forge, user: str | None = None) -> list[dict]:
    """Every usage row, read as ``user`` (default ``forge.user``); only ``admins`` may."""
    name = user or forge.user
    t = forge.table(USAGE_TABLE, user=name)
    if not t.exists:
        return []
    try:
        return t.read().to_pylist()
    except PermissionDeniedError:
        raise PermissionDeniedError(
            f"the usage table {USAGE_TABLE} is readable by members of 'admins' only, and "
            f"'{name}' is not one; run as an admin (--user or LLMFORGE_USER)"
        ) from None


def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    if len(xs) == 1:
        return round(xs[0], 1)
    return round(statistics.quantiles(xs, n=100, method="inclusive")[p - 1], 1)


def summarise(
    rows: Iterable[dict],
    since: date | None = None,
    until: date | None = None,
    department: str | None = None,
) -> list[dict]:
    """Per department and UTC day: requests, tokens, errors (status >= 400), p50/p95 latency.

    A request of a principal in several departments counts in each, as the quota charges each.
    ``since`` and ``until`` are inclusive days.
    """
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        day = r["ts"].astimezone(UTC).date()
        if (since and day < since) or (until and day > until):
            continue
        for dept in r["departments"] or [UNASSIGNED]:
            if department is None or dept == department:
                groups[(dept, day.isoformat())].append(r)
    out = []
    for (dept, day), rs in sorted(groups.items()):
        latencies = [r["latency_ms"] for r in rs]
        out.append(
            {
                "department": dept,
                "day": day,
                "requests": len(rs),
                "prompt_tokens": sum(r["prompt_tokens"] for r in rs),
                "completion_tokens": sum(r["completion_tokens"] for r in rs),
                "errors": sum(1 for r in rs if r["status"] >= 400),
                "p50_latency_ms": _pct(latencies, 50),
                "p95_latency_ms": _pct(latencies, 95),
            }
        )
    return out
