"""The catalog's SQLite file: schema and transactions.

Every metadata write runs in one ``BEGIN IMMEDIATE`` transaction: SQLite takes the write
lock up front, so two writers (threads or processes) serialise instead of interleaving, and
a writer killed mid-transaction leaves nothing behind (the journal rolls it back). WAL mode
lets readers proceed while a writer holds the lock; ``busy_timeout`` makes a writer wait for
the lock instead of failing at once.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS principals (
    name TEXT PRIMARY KEY, kind TEXT NOT NULL DEFAULT 'user');
CREATE TABLE IF NOT EXISTS memberships (
    principal TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('group', 'department')),
    value TEXT NOT NULL, PRIMARY KEY (principal, kind, value));
CREATE TABLE IF NOT EXISTS securables (
    full_name TEXT PRIMARY KEY, type TEXT NOT NULL CHECK (type IN ('catalog', 'schema', 'table')),
    owner TEXT NOT NULL, created_at TEXT NOT NULL, comment TEXT,
    primary_key TEXT, path TEXT, properties TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS grants (
    securable TEXT NOT NULL, principal TEXT NOT NULL, privilege TEXT NOT NULL,
    granted_by TEXT, granted_at TEXT NOT NULL,
    PRIMARY KEY (securable, principal, privilege));
CREATE TABLE IF NOT EXISTS row_filters (
    table_name TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS column_masks (
    table_name TEXT NOT NULL, column_name TEXT NOT NULL, spec TEXT NOT NULL,
    PRIMARY KEY (table_name, column_name));
CREATE TABLE IF NOT EXISTS lineage (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, target TEXT NOT NULL,
    job TEXT NOT NULL, run_id TEXT, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS lineage_source ON lineage (source);
CREATE INDEX IF NOT EXISTS lineage_target ON lineage (target);
CREATE TABLE IF NOT EXISTS lineage_rows (
    edge_id INTEGER NOT NULL REFERENCES lineage (id), source_key TEXT NOT NULL,
    target_key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS lineage_rows_source ON lineage_rows (edge_id, source_key);
CREATE INDEX IF NOT EXISTS lineage_rows_target ON lineage_rows (edge_id, target_key);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Store:
    """One SQLite database; a connection per thread (sqlite3 connections are not shareable)."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        new = not self.path.exists()
        # one script under the write lock, so processes opening a new file together agree
        self._connect().executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
        if new:
            os.chmod(self.path, 0o600)  # grants and policies are nobody else's business

    def _connect(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is not None and self._local.pid != os.getpid():
            con = None  # inherited through fork: an SQLite connection must not cross processes
        if con is None:
            # isolation_level=None: we issue BEGIN ourselves, so the lock mode is ours to choose
            con = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("PRAGMA foreign_keys = ON")
            self._local.con, self._local.pid = con, os.getpid()
        return con

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed on success, rolled back on any exception."""
        con = self._connect()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def query(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        return self._connect().execute(sql, params).fetchall()

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
