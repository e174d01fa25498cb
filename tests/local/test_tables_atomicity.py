"""A writer killed mid-write leaves the table at the old or the new version, never between;
concurrent writers both land."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pytest

from llmforge.catalog import SYSTEM

NAME = "main.s.big"
WRITER = """
import sys
import pyarrow as pa
import llmforge
home, op, start, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
t = llmforge.connect(backend="local", home=home, user="__system__").table("main.s.big")
data = pa.table({"id": pa.array(range(start, start + n), type=pa.int64()),
                 "text": pa.array([f"row {i} " * 8 for i in range(start, start + n)])})
print("writing", flush=True)
getattr(t, op)(data)
print("done", flush=True)
"""


def _writer(home, op: str, start: int, n: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(home), op, str(start), str(n)], stdout=subprocess.PIPE, text=True
    )


@pytest.fixture
def big(forge):
    t = forge.table(NAME, user=SYSTEM)
    t.create(pa.table({"id": pa.array(range(1000), type=pa.int64()), "text": ["seed"] * 1000}))
    return forge


@pytest.mark.slow
@pytest.mark.parametrize("op", ["append", "overwrite"])
def test_killed_writer_leaves_old_or_new_version(big, op):
    n = 400_000
    outcomes = set()
    for delay in (0.0, 0.05, 0.15, 0.3, 0.6, 1.2):
        before = big.table(NAME, user=SYSTEM)
        v0, rows0 = before.version, before.read(columns=["id"]).num_rows
        proc = _writer(big.home, op, 10_000_000 + int(delay * 1e6) * 1000, n)
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        after = big.table(NAME, user=SYSTEM)
        v1, rows1 = after.version, after.read(columns=["id"]).num_rows
        new_rows = rows0 + n if op == "append" else n
        assert (v1, rows1) in {(v0, rows0), (v0 + 1, new_rows)}, (delay, v0, rows0, v1, rows1)
        outcomes.add(v1 - v0)
    # the table still takes writes after the crashes
    big.table(NAME, user=SYSTEM).append(pa.table({"id": pa.array([-1], type=pa.int64()), "text": ["x"]}))
    assert big.table(NAME, user=SYSTEM).read(columns=["id"]).column("id").to_pylist().count(-1) == 1
    assert 0 in outcomes  # at least one kill really landed mid-write


@pytest.mark.slow
def test_concurrent_appends_both_commit(big):
    procs = [_writer(big.home, "append", 1_000_000 * (i + 1), 2000) for i in range(3)]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0 and out.split() == ["writing", "done"]
    t = big.table(NAME, user=SYSTEM)
    assert t.version == 3 and t.read(columns=["id"]).num_rows == 1000 + 3 * 2000


CREATOR = """
import sys
import pyarrow as pa
import llmforge
from llmforge.errors import AlreadyExistsError
t = llmforge.connect(backend="local", home=sys.argv[1], user="admin").table("main.s.racy")
try:
    t.create(pa.table({"id": [int(sys.argv[2])] * 1000}))
    print("created")
except AlreadyExistsError:
    print("exists")
"""


@pytest.mark.slow
def test_concurrent_creates_of_one_table_leave_one_registered_table(forge):
    forge.table("main.s.seed", user="admin").create(pa.table({"x": [1]}))  # catalog and schema exist
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CREATOR, str(forge.home), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    outcomes = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        outcomes.append(out.strip() or err.strip().splitlines()[-1])
    assert sorted(outcomes) == ["created", "exists", "exists", "exists"], outcomes
    t = forge.table("main.s.racy", user="admin")
    assert t.exists and t.version == 0 and t.read().num_rows == 1000
    assert len(set(t.read().column("id").to_pylist())) == 1
