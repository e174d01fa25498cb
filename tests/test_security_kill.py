"""Issue 10's kill -9 trials, run small: for append, merge, delete, create and index sync a
writer killed at a random moment leaves the old or the new state, and a killed fine-tuning
job leaves no RUNNING run, no half-registered version, and reruns to one new version
(benchmarks/bench_kill9.py runs more trials and prints the counts)."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks" / "bench_kill9.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_kill9", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_old_or_new_state():
    bench = _bench()
    results = bench.run(["append", "merge", "delete", "create", "sync"], trials=2, n=20_000, seed=1)
    assert {op: ok for op, (ok, _, _) in results.items()} == {op: 2 for op in results}
    assert sum(mid for _, _, mid in results.values()) > 0  # some kills really landed mid-write


@pytest.mark.slow
def test_kill_9_mid_training_leaves_a_consistent_home_and_the_rerun_resumes(tmp_path, monkeypatch):
    from llmforge.tracking import Tracker

    bench = _bench()
    home = tmp_path / "home"
    bench.setup(home, "train", 0)
    # aim the kill just after the third optimizer step (the child holds there): a checkpoint
    # exists, training is not done
    monkeypatch.setenv("KILL9_HOLD_AT_STEP", "3")
    monkeypatch.setattr(bench, "_aim", lambda rng, window: ("step 3", 0.1))
    ok, mid = bench.train_trial(home, random.Random(0), window=0)
    assert mid  # the kill landed between the run's start and the last step
    assert ok
    versions = Tracker(home).versions(bench.MODEL)
    assert [v["version"] for v in versions] == ["1"]  # only the rerun registered
    client = Tracker(home).client
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]
