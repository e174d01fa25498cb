"""kill -9 trials: a writer killed at a random moment leaves the old state or the new one.

For each operation (append, merge, delete, create, index sync) a child process starts the
write and is killed with SIGKILL after a random delay; the parent then checks that the table
(or index) is at its old or its new state, never between, and still takes the next write.
Prints, per operation, the number of consistent outcomes and how many kills landed mid-write.

``train`` (opt-in: ``--ops train`` or ``--ops all``; each trial trains the tiny random Llama
twice, about 30 s on 2 CPU cores) kills a ``forge.finetune`` child and checks that, once the
home is reopened, no MLflow run of the job is left RUNNING, the registry holds no new version
or one complete, loadable one, and the same job run again resumes from the last checkpoint
and registers exactly one new version. Its "killed mid-write" counts kills that landed
mid-training: after the job's MLflow run started and before its last optimizer step. The kill
is aimed a random delay after a random point the child announces (its start, the run's
creation, or optimizer step k); stderr shows each trial.

    .venv/bin/python benchmarks/bench_kill9.py --trials 5
    .venv/bin/python benchmarks/bench_kill9.py --trials 5 --ops train
    .venv/bin/python benchmarks/bench_kill9.py --trials 1 --rows 5000 --json PATH
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

from _results import add_json_option, figure, write_json

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
TRAIN_CHILD = """
import json, os, sys, time
import llmforge
from llmforge.tracking import Tracker
start_run = Tracker.start_run
def said_start(self, *a, **kw):  # a marker for the parent: the MLflow run now exists
    run = start_run(self, *a, **kw)
    print("tracking", flush=True)
    return run
Tracker.start_run = said_start
forge = llmforge.connect(backend="local", home=sys.argv[1], user="admin")
print("writing", flush=True)
hold_at = int(os.environ.get("KILL9_HOLD_AT_STEP", "0"))
def say_step(step, loss, state):
    print(f"step {step}", flush=True)
    if step == hold_at:  # a test holds the job here, so its kill lands mid-training on any machine
        time.sleep(120)
forge.finetune(json.loads(sys.argv[2]), progress=False, on_step=say_step)
print("done", flush=True)
"""
TRAIN_TABLE, MODEL = "ml.train.pairs", "main.ml.kill9-llm"
TRAIN_STEPS = 6
TABLE_OPS = ("append", "merge", "delete", "create", "sync")


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
    rows = [i for i in ids0 if i >= 0]  # the written rows: contiguous ids; probes are negative
    top = max(rows) + 1
    start, count = {
        "append": (top, n),
        "merge": (top - n // 2, n),  # half updates, half inserts
        "delete": (min(rows), min(n, len(rows) // 2)),
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
    # the table still takes a write after the crash (a negative id: no later write reuses it)
    forge.table(TABLE).append(_rows(-1 - v1, -v1, "probe"))
    return ok, mid


def train_config() -> dict:
    """A job on the tiny random Llama that checkpoints after every optimizer step."""
    return {
        "model": "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "task_type": "INSTRUCTION_FINETUNE",
        "training_data": {"table": TRAIN_TABLE, "split": 0.8},
        "training_params": {"num_epochs": 1, "batch_size": 2, "gradient_accumulation_steps": 1},
        "evaluation": {"metrics": ["perplexity"]},
        "output": {"registered_model": MODEL, "experiment": "/ml/kill9"},
        "local": {
            "model": "tiny-random-llama",
            "learning_rate": 1e-3,
            "max_steps": TRAIN_STEPS,
            "max_seq_len": 64,
            "checkpoint_every": 1,
        },
    }


def _versions(home: Path) -> list[dict]:
    from llmforge.errors import NotFoundError
    from llmforge.tracking import Tracker

    try:
        return Tracker(home).versions(MODEL)  # a fresh Tracker reopens (and repairs) the store
    except NotFoundError:
        return []


def _run_statuses(home: Path) -> list[str]:
    """The status of every run of the home once the store is reopened (and repaired)."""
    from llmforge.tracking import Tracker

    client = Tracker(home).client
    return [r.info.status for r in client.search_runs([e.experiment_id for e in client.search_experiments()])]


def _last_checkpoint(home: Path) -> int:
    from llmforge_local.train.loop import latest_checkpoint

    steps = [latest_checkpoint(d) for d in (home / "training").glob("*/checkpoints")]
    return max((int(p.name.removeprefix("step-")) for p in steps if p), default=0)


def _aim(rng: random.Random, window: float) -> tuple[str, float]:
    """A point of the job the child announces on stdout, and a delay after it."""
    anchor = rng.choice(["writing", "tracking", *(f"step {k}" for k in range(1, TRAIN_STEPS + 1))])
    # a step takes ~0.5 s; save + evaluate + log + register after the last one ~1.5 s
    return anchor, rng.uniform(0.0, {"writing": window, f"step {TRAIN_STEPS}": 1.5}.get(anchor, 0.6))


def _kill_training(home: Path, rng: random.Random, window: float) -> tuple[str, list[str]]:
    """Run the job in a child and SIGKILL it a random moment after a random point of it:
    its start (within ``window`` s), the MLflow run's creation, or optimizer step k (within
    about a step, or within the evaluate + register tail after the last step). Returns
    where the kill was aimed and every line the child said."""
    import json

    anchor, delay = _aim(rng, window)
    proc = subprocess.Popen(
        [sys.executable, "-c", TRAIN_CHILD, str(home), json.dumps(train_config())],
        stdout=subprocess.PIPE,
        text=True,
    )
    said = []
    for line in proc.stdout:
        said.append(line.strip())
        if said[-1] == anchor:
            break
    time.sleep(delay)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    said += [line.strip() for line in proc.stdout.read().splitlines()]
    return f"{delay:.1f} s after '{anchor}'", said


def train_trial(home: Path, rng: random.Random, window: float) -> tuple[bool, bool]:
    """One kill of a fine-tuning job, then a rerun; returns (consistent, killed mid-training:
    after the MLflow run started and before the last optimizer step)."""
    from llmforge_local.models import load_causal_lm

    import llmforge

    before = _versions(home)
    aim, said = _kill_training(home, rng, window)
    steps = sum(line.startswith("step ") for line in said)
    done = "done" in said
    mid = "tracking" in said and steps < TRAIN_STEPS and not done
    # (a) no run of the job is left RUNNING once the home is reopened
    statuses = _run_statuses(home)
    running = statuses.count("RUNNING")
    # (b) no new version, or one complete version that loads
    new = _versions(home)[len(before) :]
    complete = len(new) == 0 or (
        len(new) == 1
        and new[0]["status"] == "READY"
        and load_causal_lm(f"models:/{MODEL}/{new[0]['version']}", home)[0] is not None
    )
    # (c) the same job again completes, resumes from the last checkpoint, adds one version
    last = _last_checkpoint(home)
    forge = llmforge.connect(backend="local", home=str(home), user="admin")
    res = forge.finetune(train_config(), progress=False)
    after = _versions(home)
    rerun_ok = (
        res.resumed_from == last
        and len(res.losses) == TRAIN_STEPS
        and len(after) == len(before) + len(new) + 1
        and after[-1]["version"] == res.model_version
        and "RUNNING" not in _run_statuses(home)
    )
    ok = running == 0 and complete and rerun_ok
    print(
        f"  train: kill {aim}: {steps} step(s) done, job {'finished' if done else 'unfinished'}; "
        f"runs KILLED {statuses.count('KILLED')}, left RUNNING {running}, new versions {len(new)}, "
        f"last checkpoint {last}, "
        f"rerun resumed from {res.resumed_from} -> v{res.model_version}: {'ok' if ok else 'INCONSISTENT'}",
        file=sys.stderr,
    )
    return ok, mid


def setup(home: Path, op: str, n: int) -> None:
    import llmforge

    forge = llmforge.connect(backend="local", home=str(home), user="admin")
    if op == "train":
        import pyarrow as pa

        facts = [(f"Who owns project {c}?", f"Team {c} owns project {c}.") for c in "ABCDEFGH"]
        forge.table(TRAIN_TABLE).create(
            pa.table(
                {
                    "pair_id": [f"p{i}" for i in range(len(facts))],
                    "prompt": [p for p, _ in facts],
                    "response": [r for _, r in facts],
                }
            ),
            primary_key="pair_id",
        )
        return
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


def run(
    ops: list[str], trials: int, n: int, seed: int = 0, train_window: float = 20.0
) -> dict[str, tuple[int, int, int]]:
    """``{op: (consistent, trials, killed mid-write)}``; a ``train`` kill lands within
    ``train_window`` s of the job's start."""
    rng = random.Random(seed)
    out = {}
    for op in ops:
        with tempfile.TemporaryDirectory(prefix=f"kill9-{op}-") as tmp:
            home = Path(tmp) / "home"
            size = n // 20 if op == "sync" else n
            setup(home, op, size)
            if op == "train":
                results = [train_trial(home, rng, train_window) for _ in range(trials)]
            else:
                results = [trial(op, home, rng, size) for _ in range(trials)]
        out[op] = (sum(ok for ok, _ in results), trials, sum(mid for _, mid in results))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--rows", type=int, default=100_000, help="rows per write (index sync: rows/20)")
    ap.add_argument(
        "--ops", default=",".join(TABLE_OPS), help=f"comma-separated, or 'all' ({','.join(TABLE_OPS)},train)"
    )
    ap.add_argument("--train-window", type=float, default=20.0, help="train: kill within this many s")
    ap.add_argument("--seed", type=int, default=0)
    add_json_option(ap)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    ops = [*TABLE_OPS, "train"] if args.ops == "all" else args.ops.split(",")
    results = run(ops, args.trials, args.rows, args.seed, args.train_window)
    print(f"{'operation':<10} {'consistent':>10} {'trials':>7} {'killed mid-write':>17}")
    for op, (ok, total, mid) in results.items():
        print(f"{op:<10} {ok:>10} {total:>7} {mid:>17}")
    total_ok = sum(r[0] for r in results.values())
    total = sum(r[1] for r in results.values())
    print(f"{'all':<10} {total_ok:>10} {total:>7}")
    if args.json:
        figs = [figure("consistent outcomes", 100 * total_ok / total, "%")]
        figs += [figure(f"{op} consistent outcomes", 100 * ok / n, "%") for op, (ok, n, _) in results.items()]
        figs.append(figure("kills that landed mid-write", sum(r[2] for r in results.values()), "kills"))
        note = f"{args.trials} trial(s) per operation, {args.rows} rows per write, ops {','.join(ops)}"
        write_json(args.json, "kill9", figs, note)


if __name__ == "__main__":
    main()
