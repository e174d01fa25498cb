"""Keep an MLflow store in a project home true to where it is and to what is still running.

MLflow stores absolute artifact URIs. The store records the home it was last opened in; opened
from anywhere else (a ``cp -a`` copy, a restored backup) it rewrites those URIs to the new
place first, so a copy never reads or writes the original's artifacts. A run whose process
died (kill -9, power loss) is marked ``KILLED`` on the next open instead of staying
``RUNNING`` forever. Both run on plain SQLite before MLflow opens the file.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

#: run tags naming the process that owns a run
PID_TAG, HOST_TAG = "llmforge.pid", "llmforge.host"
# (table, column) of every artifact location MLflow stores
_URI_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("model_versions", "source"),
    ("model_versions", "storage_location"),
)


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def repair(db: Path, home: Path) -> None:
    """Rebase a moved store onto ``home`` and mark runs of dead processes KILLED (plain SQLite,
    before MLflow opens the file)."""
    import sqlite3
    import time

    here = str(home.resolve())
    con = sqlite3.connect(db, timeout=60, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("CREATE TABLE IF NOT EXISTS llmforge_home (path TEXT NOT NULL)")
        row = con.execute("SELECT path FROM llmforge_home").fetchone()
        old = row[0] if row else _written_in(con)
        if old and old != here:
            for table, column in _URI_COLUMNS:
                for before, after in ((Path(old).as_uri(), Path(here).as_uri()), (old, here)):
                    n = len(before)
                    con.execute(
                        f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                        f"WHERE substr({column}, 1, ?) = ? AND substr({column}, ?, 1) IN ('/', '')",
                        (after, n + 1, n, before, n + 1),
                    )
        con.execute("DELETE FROM llmforge_home")
        con.execute("INSERT INTO llmforge_home VALUES (?)", (here,))
        host = platform.node()
        dead = [
            run
            for run, pid in con.execute(
                "SELECT r.run_uuid, p.value FROM runs r JOIN tags p ON p.run_uuid = r.run_uuid "
                "JOIN tags h ON h.run_uuid = r.run_uuid WHERE r.status = 'RUNNING' "
                "AND p.key = ? AND h.key = ? AND h.value = ?",
                (PID_TAG, HOST_TAG, host),
            )
            if pid.isdigit() and not _alive(int(pid))
        ]
        now = int(time.time() * 1000)
        con.executemany(
            "UPDATE runs SET status = 'KILLED', end_time = ? WHERE run_uuid = ?", [(now, r) for r in dead]
        )
        con.execute("COMMIT")
    except sqlite3.OperationalError:  # a store from an MLflow version without these tables
        con.execute("ROLLBACK")
    finally:
        con.close()


def _written_in(con: Any) -> str | None:
    """The home a store without a record was written in: the folder holding its ``mlruns``."""
    from urllib.parse import unquote, urlparse

    for (location,) in con.execute("SELECT artifact_location FROM experiments"):
        path = Path(unquote(urlparse(location).path)) if location.startswith("file:") else Path(location)
        if path.name == "mlruns":
            return str(path.parent)
    return None
