"""kill -9 trials: a writer killed at a random moment leaves the old state or the new one.

For each operation (append, merge, delete, create, index sync) a child process starts the
write and is killed with SIGKILL after a random delay; the parent then checks that the table
(or index) is at its old or its new state, never between, and still takes the next write.
Prints, per operation, the number of consistent outcomes and how many kills landed mid-write.

    .venv/bin/python benchmarks/bench_kill9.py --trials 5
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLE = "main.s.t"
INDEX = "main.s.t_index"
CHILD = """
import sys
import pyarrow as pa
import llmforge
home, op, name, start, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
forge = llmforge.connect(backend="local", home=home, user="admin")
rows = lambda a, b, tag: pa.table({"id": pa.array(range(a, b), type=pa.int64()),
                                   "text": pa.array([f"{tag} row {i} " * 6 for i in range(a, b)])})
if op == "sync":
    idx = forge.vector_search.get_index(index_name=name)
    print("writing", flush=True)
    idx.sync()
else:
    t = forge.table(name)
    print("writing", flush=True)
    if op == "append":
        t.append(rows(start, start + n, "new"))
    elif op == "merge":
        t.merge(rows(start, start + n, "merged"), key="id")
    elif op == "delete":
        t.delete(f"id >= {start} AND id < {start + n}")
    elif op == "create":
        t.create(rows(0, n, "new"), primary_key="id")
print("done", flush=True)
"""


def _rows(a: int, b: int, tag: str):
    import pyarrow as pa

    return pa.table(
        {
            "id": pa.array(range(a, b), type=pa.int64()),
            "text": pa.array([f"{tag} row {i} " * 6 for i in range(a, b)]),
        }
    )


def _state(forge, name: str) -> tuple[int, list[int], int]:
    t = forge.table(name)
    data = t.read(columns=["id", "text"])
    ids = data.column("id").to_pylist()
    merged = sum(1 for s in data.column("text").to_pylist() if s.startswith("merged"))
    return t.version, ids, merged


def _kill_child(home: Path, op: str, name: str, start: int, n: int, delay: float) -> bool:
    """Run the child, kill it ``delay`` s after it starts writing; True when it had not finished."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home), op, name, str(start), str(n)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(delay)
    finished = proc.poll() is not None
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return not finished


def trial(op: str, home: Path, rng: random.Random, n: int) -> tuple[bool, bool]:
    """One kill; returns (consistent, killed mid-write)."""
    import llmforge

    forge = llmforge.connect(backend="local", home=str(home), user="admin")
    # deletes and creates commit within ~0.1 s of starting; the others take longer
    delay = rng.uniform(0.0, 0.12 if op in ("delete", "create") else 0.8)
    if op == "create":
        name = f"main.s.c{rng.randrange(1 << 30)}"
        mid = _kill_child(home, op, name, 0, n, delay)
        t = forge.table(name)
        if t.exists:
            ok = t.version == 0 and t.read(columns=["id"]).num_rows == n
        else:
            t.create(_rows(0, 10, "retry"), primary_key="id")  # the name is free again
            ok = forge.table(name).read(columns=["id"]).num_rows == 10
        return ok, mid
    if op == "sync":
        before = forge.vector_search.get_index(index_name=INDEX).describe()
        _, ids0, _ = _state(forge, TABLE)
        added = n // 10
        forge.table(TABLE).append(_rows(max(ids0) + 1, max(ids0) + 1 + added, "new"))
        target = forge.table(TABLE).version
        mid = _kill_child(home, op, INDEX, 0, 0, delay)
        after = forge.vector_search.get_index(index_name=INDEX).describe()  # loads after the kill
        old = (before["indexed_document_count"], before["synced_version"])
        ok = (after["indexed_document_count"], after["synced_version"]) in (old, (old[0] + added, target))
        forge.vector_search.get_index(index_name=INDEX).sync()  # and the next sync completes
        final = forge.vector_search.get_index(index_name=INDEX).describe()
        ok = ok and (final["indexed_document_count"], final["synced_version"]) == (len(ids0) + added, target)
        return ok, mid
    v0, ids0, merged0 = _state(forge, TABLE)
    top = max(ids0) + 1
    start, count = {
        "append": (top, n),
        "merge": (top - n // 2, n),  # half updates, half inserts
        "delete": (min(ids0), min(n, len(ids0) // 2)),
    }[op]
    mid = _kill_child(home, op, TABLE, start, count, delay)
    v1, ids1, merged1 = _state(forge, TABLE)
    unique = len(ids1) == len(set(ids1))
    if op == "append":
        new = (v0 + 1, len(ids0) + count)
    elif op == "merge":
        new = (v0 + 1, len(ids0) + count // 2)
    else:
        new = (v0 + 1, len(ids0) - count)
    ok = unique and ((v1, len(ids1)) == (v0, len(ids0)) or (v1, len(ids1)) == new)
    if op == "merge" and v1 == v0 + 1:
        ok = ok and merged1 == count
    # the table still takes a write after the crash
    forge.table(TABLE).append(_rows(10**9 + v1, 10**9 + v1 + 1, "probe"))
    return ok, mid


def setup(home: Path, op: str, n: int) -> None:
    import llmforge

    forge = llmforge.connect(backend="local", home=str(home), user="admin")
    if op == "create":
        forge.table("main.s.seed").create(_rows(0, 1, "seed"), primary_key="id")
        return
    forge.table(TABLE).create(_rows(0, n * 2, "seed"), primary_key="id")
    if op == "sync":
        forge.vector_search.create_delta_sync_index(
            endpoint_name="vs",
            source_table_name=TABLE,
            index_name=INDEX,
            primary_key="id",
            embedding_source_column="text",
        )


def run(ops: list[str], trials: int, n: int, seed: int = 0) -> dict[str, tuple[int, int, int]]:
    """``{op: (consistent, trials, killed mid-write)}``."""
    rng = random.Random(seed)
    out = {}
    for op in ops:
        with tempfile.TemporaryDirectory(prefix=f"kill9-{op}-") as tmp:
            home = Path(tmp) / "home"
            size = n // 20 if op == "sync" else n
            setup(home, op, size)
            results = [trial(op, home, rng, size) for _ in range(trials)]
        out[op] = (sum(ok for ok, _ in results), trials, sum(mid for _, mid in results))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--rows", type=int, default=100_000, help="rows per write (index sync: rows/20)")
    ap.add_argument("--ops", default="append,merge,delete,create,sync")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    results = run(args.ops.split(","), args.trials, args.rows, args.seed)
    print(f"{'operation':<10} {'consistent':>10} {'trials':>7} {'killed mid-write':>17}")
    for op, (ok, total, mid) in results.items():
        print(f"{op:<10} {ok:>10} {total:>7} {mid:>17}")
    total_ok = sum(r[0] for r in results.values())
    total = sum(r[1] for r in results.values())
    print(f"{'all':<10} {total_ok:>10} {total:>7}")


if __name__ == "__main__":
    main()
