"""List the Databricks REST calls the test suite makes through the real clients.

Runs the databricks-backend and emulator tests (slow ones included) with the emulator's call
log on (``LLMFORGE_EMULATOR_CALL_LOG``: every answered request as ``METHOD route status``),
then prints a Markdown table of routes, call counts and statuses; ``--readme`` rewrites the
table between the ``databricks-calls`` markers in README.md.

    .venv/bin/python scripts/databricks_calls.py [--readme] [--fast] [--log FILE]
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/databricks",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "tests").glob("test_emulator*.py")),
]
START, END = "<!-- databricks-calls:start -->", "<!-- databricks-calls:end -->"


def collect(log: Path, fast: bool) -> int:
    env = {
        **os.environ,
        "LLMFORGE_EMULATOR_CALL_LOG": str(log),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS]
    cmd += ["-m", "not slow"] if fast else ["-m", ""]
    return subprocess.run(cmd, cwd=REPO, env=env).returncode


def table(log: Path) -> str:
    counts: collections.Counter = collections.Counter()
    statuses: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for line in log.read_text().splitlines():
        method, route, status = line.split(" ")
        counts[(route, method)] += 1
        statuses[(route, method)].add(status)
    rows = ["| method | path | calls | statuses |", "|---|---|---:|---|"]
    for route, method in sorted(counts):
        rows.append(
            f"| {method} | `{route}` | {counts[(route, method)]} | {', '.join(sorted(statuses[(route, method)]))} |"
        )
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readme", action="store_true", help="rewrite the table in README.md")
    ap.add_argument("--fast", action="store_true", help="skip the slow tests (training jobs, the recipe)")
    ap.add_argument("--log", type=Path, help="read this call log instead of running the tests")
    args = ap.parse_args()
    log = args.log
    if log is None:
        log = Path(tempfile.mkdtemp(prefix="llmforge-calls-")) / "calls.log"
        rc = collect(log, args.fast)
        if rc != 0:
            print(f"the tests failed (exit {rc}); the table lists the calls made so far", file=sys.stderr)
    text = table(log)
    if args.readme:
        readme = REPO / "README.md"
        body = readme.read_text()
        if START not in body or END not in body:
            print(f"README.md has no {START} ... {END} markers", file=sys.stderr)
            return 2
        head, rest = body.split(START, 1)
        readme.write_text(f"{head}{START}\n{text}\n{END}{rest.split(END, 1)[1]}")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
