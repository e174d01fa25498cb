"""Token quota ledger: tokens per department per UTC day, enforced atomically.

Limits come from ``quotas:`` in ``llmforge.yaml`` (a department not listed is unlimited, but
its usage is still recorded). A request first *reserves* an upper bound of what it may use
(prompt tokens + ``max_tokens``); the check and the reservation happen in one
``BEGIN IMMEDIATE`` transaction, so concurrent requests — threads or processes — cannot
together spend more than the limit. After generation it *settles* the actual usage and frees
the rest. A reservation whose request died is freed after ``reservation_ttl_s``.

Every surface that generates does this through one context manager::

    with forge.quotas.hold(who.departments, prompt_bound + max_tokens) as h:  # QuotaExceeded
        out = generator.chat(...)
        h.used = out.usage.total_tokens       # a cancelled stream: what it generated so far

On exit the hold settles ``h.used`` (or frees the reservation when nothing was used), also
when the block raises.

A principal in several departments is charged to each of them: no department's limit can be
bypassed by also belonging to another one.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from llmforge.errors import ConfigError, DataError, QuotaExceededError

if TYPE_CHECKING:
    from llmforge.forge import Forge

#: usage of a principal without any department is recorded under this name
UNASSIGNED = "unassigned"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS usage (
    day TEXT NOT NULL, department TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0, requests INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, department));
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT NOT NULL, day TEXT NOT NULL, department TEXT NOT NULL,
    tokens INTEGER NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (id, department));
"""


class QuotaExceeded(QuotaExceededError):
    """A department's daily token quota does not admit a request."""

    def __init__(self, department: str, limit: int, used: int, requested: int, resets_at: datetime):
        self.department, self.limit, self.used = department, limit, used
        self.requested, self.resets_at = requested, resets_at
        super().__init__(
            f"department '{department}' has used {used} of its {limit} tokens for today; this request "
            f"needs up to {requested}. The quota resets at {resets_at:%Y-%m-%d %H:%M} UTC — retry then, "
            f"lower max_tokens, or ask an admin to raise `quotas.{department}` in llmforge.yaml."
        )

    @property
    def retry_after_s(self) -> int:
        return max(1, int((self.resets_at - datetime.now(UTC)).total_seconds()))


@dataclass
class Reservation:
    """Tokens held for one request until :meth:`QuotaLedger.settle` or :meth:`~QuotaLedger.release`."""

    id: str
    day: str
    departments: tuple[str, ...]
    tokens: int
    settled: bool = False


class Hold:
    """A reservation for the length of a ``with`` block; set :attr:`used` to what was consumed."""

    def __init__(self, ledger: QuotaLedger, departments: Iterable[str], tokens: int) -> None:
        self.ledger, self.departments, self.tokens = ledger, tuple(departments), tokens
        self.used = 0
        self.reservation: Reservation | None = None

    def __enter__(self) -> Hold:
        self.reservation = self.ledger.reserve(self.departments, self.tokens)
        return self

    def __exit__(self, *exc: object) -> None:
        res, self.reservation = self.reservation, None
        if res is None or res.settled:
            return
        if self.used > 0:
            self.ledger.settle(res, self.used)
        else:
            self.ledger.release(res)


def _day(now: datetime) -> str:
    return now.strftime("%Y-%m-%d")


class QuotaLedger:
    """The ledger in ``<home>/quotas.db``."""

    def __init__(
        self,
        path: str | Path,
        limits: Mapping[str, int] | None = None,
        *,
        reservation_ttl_s: float = 900.0,
        clock=None,
    ) -> None:
        self.path = Path(path)
        self.limits = dict(limits or {})
        for dept, limit in self.limits.items():
            if not isinstance(limit, int) or limit < 0:
                raise ConfigError(f"quotas.{dept} must be a whole number of tokens >= 0, got {limit!r}")
        self.reservation_ttl_s = reservation_ttl_s
        self._clock = clock or (lambda: datetime.now(UTC))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        con = self._connect()
        try:
            con.executescript(_SCHEMA)
        finally:
            con.close()
        if new:
            os.chmod(self.path, 0o600)

    def _connect(self) -> sqlite3.Connection:
        # autocommit mode so that BEGIN IMMEDIATE below is the only transaction boundary
        con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        return con

    def resets_at(self) -> datetime:
        now = self._clock()
        return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)

    def hold(self, departments: Iterable[str], tokens: int) -> Hold:
        """Reserve ``tokens`` for a ``with`` block, settling ``hold.used`` at its end (see above)."""
        return Hold(self, departments, tokens)

    def reserve(self, departments: Iterable[str], tokens: int) -> Reservation:
        """Hold ``tokens`` against every department, or raise :class:`QuotaExceeded`."""
        if tokens < 0:
            raise DataError(f"cannot reserve a negative number of tokens ({tokens})")
        depts = tuple(sorted(set(departments))) or (UNASSIGNED,)
        now = self._clock()
        day, rid = _day(now), uuid.uuid4().hex
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute(
                "DELETE FROM reservations WHERE created < ?", (now.timestamp() - self.reservation_ttl_s,)
            )
            for dept in depts:
                limit = self.limits.get(dept)
                if limit is None:
                    continue
                committed = self._committed(con, day, dept)
                if committed + tokens > limit:
                    con.execute("ROLLBACK")
                    raise QuotaExceeded(dept, limit, committed, tokens, self.resets_at())
            con.executemany(
                "INSERT INTO reservations (id, day, department, tokens, created) VALUES (?, ?, ?, ?, ?)",
                [(rid, day, d, tokens, now.timestamp()) for d in depts],
            )
            con.execute("COMMIT")
        finally:
            con.close()
        return Reservation(rid, day, depts, tokens)

    def settle(self, reservation: Reservation, used_tokens: int) -> None:
        """Charge what the request really used and free the rest of its reservation.

        Usage is charged to the reservation's day even when settling after midnight, and in
        full even if it exceeds the reservation: tokens spent are never forgotten.
        """
        if reservation.settled:
            raise DataError(f"reservation {reservation.id} is already settled")
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("DELETE FROM reservations WHERE id = ?", (reservation.id,))
            con.executemany(
                "INSERT INTO usage (day, department, used, requests) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (day, department) DO UPDATE SET used = used + excluded.used, "
                "requests = requests + 1",
                [(reservation.day, d, int(used_tokens)) for d in reservation.departments],
            )
            con.execute("COMMIT")
        finally:
            con.close()
        reservation.settled = True

    def release(self, reservation: Reservation) -> None:
        """Free a reservation whose request failed before using anything."""
        con = self._connect()
        try:
            con.execute("DELETE FROM reservations WHERE id = ?", (reservation.id,))
        finally:
            con.close()
        reservation.settled = True

    def charge(self, departments: Iterable[str], tokens: int) -> None:
        """Check and charge in one step (for usage known up front)."""
        self.settle(self.reserve(departments, tokens), tokens)

    @staticmethod
    def _committed(con: sqlite3.Connection, day: str, dept: str) -> int:
        used = con.execute("SELECT used FROM usage WHERE day = ? AND department = ?", (day, dept)).fetchone()
        held = con.execute(
            "SELECT COALESCE(SUM(tokens), 0) FROM reservations WHERE day = ? AND department = ?", (day, dept)
        ).fetchone()
        return (used[0] if used else 0) + held[0]

    def remaining(self, department: str) -> int | None:
        """Tokens still available today, ``None`` when the department is unlimited."""
        limit = self.limits.get(department)
        if limit is None:
            return None
        con = self._connect()
        try:
            return max(0, limit - self._committed(con, _day(self._clock()), department))
        finally:
            con.close()

    def usage(self, day: str | None = None) -> list[dict]:
        """One row per department for ``day`` (default today, UTC), limited ones included."""
        day = day or _day(self._clock())
        con = self._connect()
        try:
            used = {
                d: (u, r)
                for d, u, r in con.execute(
                    "SELECT department, used, requests FROM usage WHERE day = ?", (day,)
                )
            }
            held = dict(
                con.execute(
                    "SELECT department, SUM(tokens) FROM reservations WHERE day = ? GROUP BY department",
                    (day,),
                )
            )
        finally:
            con.close()
        rows = []
        for dept in sorted(set(used) | set(held) | set(self.limits)):
            u, r = used.get(dept, (0, 0))
            limit = self.limits.get(dept)
            rows.append(
                {
                    "department": dept,
                    "day": day,
                    "used": u,
                    "reserved": held.get(dept, 0),
                    "requests": r,
                    "limit": limit,
                    "remaining": None if limit is None else max(0, limit - u - held.get(dept, 0)),
                }
            )
        return rows


def ledger_for(forge: Forge) -> QuotaLedger:
    """The ledger of a project: ``<home>/quotas.db`` with the limits from its config."""
    return QuotaLedger(forge.home / "quotas.db", forge.config.quotas)
