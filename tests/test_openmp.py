"""A thread that ran a burst of torch work lets go of its OpenMP team, so that a server's
request threads never keep teams beside the engine's (which slowed every decode step).

Each check runs in a fresh interpreter: it counts the process's threads, which other tests'
threads (servers, engines winding down) would otherwise disturb."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import json, os, threading, time
import torch

def threads():
    return len(os.listdir("/proc/self/task"))

def settle(target):  # team threads exit asynchronously after being told to
    deadline = time.monotonic() + 5
    while threads() > target and time.monotonic() < deadline:
        time.sleep(0.01)
    return threads()

def in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.update(fn()))
    t.start()
    t.join()
    return out
"""


def fresh(body: str) -> dict:
    code = PRELUDE + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _team_size() -> int:
    import torch

    if torch.get_num_threads() < 2:
        pytest.skip("torch runs one thread here: there is no OpenMP team to free")
    return torch.get_num_threads() - 1  # the thread itself leads; these are its team


def test_release_frees_the_calling_threads_team():
    team = _team_size()
    seen = fresh(
        """
        from llmforge import openmp

        def burst():
            out = {"before": threads()}
            torch.randn(4_000_000).exp_()  # a parallel region: this thread now leads a team
            out["with_team"] = threads()
            out["released"] = openmp.release()
            out["after"] = settle(out["with_team"] - (torch.get_num_threads() - 1))
            torch.randn(4_000_000).exp_()  # it still computes afterwards, with a new team
            out["again"] = threads()
            return out

        print(json.dumps(in_thread(burst)))
        """
    )
    assert seen["released"] is True
    assert seen["with_team"] == seen["before"] + team
    assert seen["after"] == seen["before"]
    assert seen["again"] == seen["with_team"]


def test_encoding_in_a_request_thread_leaves_no_team_behind():
    _team_size()
    seen = fresh(
        """
        from llmforge.guard import semantic

        semantic.encode([f"warm-up sentence {i}" for i in range(64)])  # loads the model, starts its pools

        def request():
            start = threads()
            semantic.encode([f"sentence number {i} about the quarterly budget" for i in range(200)])
            return {"start": start, "end": settle(start)}

        print(json.dumps(in_thread(request)))
        """
    )
    assert seen["end"] == seen["start"]
