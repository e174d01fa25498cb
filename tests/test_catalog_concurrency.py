"""Concurrent catalog writers (threads and processes) and writers killed mid-transaction."""

from __future__ import annotations

import subprocess
import sys
import threading

from llmforge.catalog import Catalog

WRITER = """
import sys
from llmforge.catalog import Catalog
cat = Catalog(sys.argv[1])
w = sys.argv[2]
for i in range(40):
    cat.add_principal(f"{w}-user-{i}", groups=[w], departments=["d"])
    cat.record_lineage([f"table:a.b.src_{w}@{i}"], f"table:a.b.dst@{i}", job=w, row_keys={f"k{i}": ["x", "y"]})
"""


def _counts(cat: Catalog) -> tuple[int, int, int]:
    q = cat.store.query
    return (
        q("SELECT count(*) AS n FROM principals")[0]["n"],
        q("SELECT count(*) AS n FROM lineage")[0]["n"],
        q("SELECT count(*) AS n FROM lineage_rows")[0]["n"],
    )


def test_processes_and_threads_writing_together_lose_nothing(tmp_path):
    path = tmp_path / "catalog.db"
    cat = Catalog(path)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"p{n}"]) for n in range(3)]

    def thread_writer(n: int) -> None:
        mine = Catalog(path)  # own connection, like another component in the same process
        for i in range(40):
            mine.add_principal(f"t{n}-user-{i}", groups=[f"t{n}"])
            mine.record_lineage(
                [f"table:a.b.src_t{n}@{i}"], f"table:a.b.dst@{i}", job=f"t{n}", row_keys={f"k{i}": ["x", "y"]}
            )

    threads = [threading.Thread(target=thread_writer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert _counts(cat) == (5 * 40, 5 * 40, 5 * 40 * 2)
    assert cat.store.query("PRAGMA integrity_check")[0][0] == "ok"
    assert len(cat.upstream("table:a.b.dst@7")) == 5


KILLED = """
import os, sys
from llmforge.catalog import Catalog
cat = Catalog(sys.argv[1])
with cat.store.write() as con:
    con.execute("INSERT INTO principals VALUES ('half', 'user')")
    con.execute("INSERT INTO memberships VALUES ('half', 'group', 'admins')")
    os._exit(3)  # dies holding the write lock, before COMMIT
"""


def test_a_writer_killed_mid_transaction_leaves_no_trace(tmp_path):
    path = tmp_path / "catalog.db"
    cat = Catalog(path)
    cat.add_principal("before")
    assert subprocess.run([sys.executable, "-c", KILLED, str(path)]).returncode == 3
    assert [p.name for p in cat.principals()] == ["before"]
    assert "admins" not in cat.principal("half").groups
    cat.add_principal("after")  # the lock died with the process
    assert [p.name for p in Catalog(path).principals()] == ["after", "before"]


def _forked_writer(cat: Catalog, name: str) -> None:
    cat.add_principal(name)


def test_a_forked_child_gets_its_own_connection(tmp_path):
    import multiprocessing

    cat = Catalog(tmp_path / "catalog.db")
    cat.add_principal("parent")  # the parent's connection now exists and is inherited by fork
    procs = [
        multiprocessing.get_context("fork").Process(target=_forked_writer, args=(cat, f"child{i}"))
        for i in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    cat.add_principal("parent-again")
    assert [p.name for p in cat.principals()] == ["child0", "child1", "child2", "parent", "parent-again"]
    assert cat.store.query("PRAGMA integrity_check")[0][0] == "ok"
