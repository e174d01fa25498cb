"""Issue 10's kill -9 trials, run small: for append, merge, delete, create and index sync a
writer killed at a random moment leaves the old or the new state (benchmarks/bench_kill9.py
runs more trials and prints the counts)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks" / "bench_kill9.py"


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_old_or_new_state():
    spec = importlib.util.spec_from_file_location("bench_kill9", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = bench.run(["append", "merge", "delete", "create", "sync"], trials=2, n=20_000, seed=1)
    assert {op: ok for op, (ok, _, _) in results.items()} == {op: 2 for op in results}
    assert sum(mid for _, _, mid in results.values()) > 0  # some kills really landed mid-write
