"""Run the selected benchmark scripts one after another, with a progress display, into one run file."""

from __future__ import annotations

import datetime as dt
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmforge.bench.registry import Benchmark
from llmforge.errors import ConfigError

TAIL = 15  # output lines kept in the results file of a benchmark that failed


def find_benchmarks_dir(explicit: str | None = None, start: Path | None = None) -> Path:
    """``benchmarks/`` of the checkout: ``explicit``, else the first one above the current folder
    (or above this package, for an editable install) that holds ``bench_*.py`` scripts."""
    if explicit:
        path = Path(explicit)
        if not any(path.glob("bench_*.py")):
            raise ConfigError(f"--benchmarks-dir {path} holds no bench_*.py scripts")
        return path.resolve()
    here = (start or Path.cwd()).resolve()
    for base in (here, *here.parents, *Path(__file__).resolve().parents):
        if any((base / "benchmarks").glob("bench_*.py")):
            return base / "benchmarks"
    raise ConfigError(
        "no benchmarks/ folder found: the benchmarks are scripts of an llmforge checkout, not part of "
        "the installed package; run `llmforge bench` inside a checkout, or pass --benchmarks-dir"
    )


class Progress:
    """One status line per benchmark: a live ticker on a terminal, the script's own lines in a log."""

    def __init__(self, total: int, stream=None) -> None:
        self.total, self.stream = total, stream or sys.stderr
        self.tty = self.stream.isatty()

    def start(self, i: int, bench: Benchmark, args: tuple[str, ...]) -> None:
        self._write(
            f"[{i}/{self.total}] {bench.name}: {bench.measures}\n      {bench.script} {' '.join(args)}\n"
        )

    def line(self, name: str, elapsed: float, text: str | None) -> None:
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            status = f"      {name} {elapsed:5.0f} s | {text or ''}"
            self._write("\r" + status[:width].ljust(width))
        elif text is not None:
            self._write(f"      | {text}\n")

    def done(self, i: int, bench: Benchmark, result: dict[str, Any]) -> None:
        clear = "\r" + " " * (shutil.get_terminal_size((100, 20)).columns - 1) + "\r" if self.tty else ""
        if result["status"] == "ok":
            figs = ", ".join(f"{f['name']} {f['value']:.3g}" for f in result["figures"][:3])
            more = f" (+{len(result['figures']) - 3})" if len(result["figures"]) > 3 else ""
            msg = f"[{i}/{self.total}] {bench.name} done in {result['wall_s']:.0f} s: {figs}{more}\n"
        else:
            msg = f"[{i}/{self.total}] {bench.name} {result['status'].upper()}: {result['error']}\n"
        self._write(clear + msg)

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, AttributeError):
        proc.kill()


def _pump(proc: subprocess.Popen, lines: queue.Queue) -> None:
    for raw in proc.stdout:
        lines.put(raw.rstrip("\n"))
    lines.put(None)


def run_one(
    bench: Benchmark,
    folder: Path,
    profile: str,
    device: str,
    progress: Progress,
    index: int,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Run one script with ``--json``; its figures, or ``status`` failed/missing/timeout and why."""
    from llmforge.bench.results import read_script_output

    args = bench.args(profile) + (("--device", device) if bench.device else ())
    result: dict[str, Any] = {"name": bench.name, "script": bench.script, "args": list(args), "figures": []}
    progress.start(index, bench, args)
    script = folder / bench.script
    if not script.is_file():
        result.update(status="missing", error=f"{script} does not exist in this checkout", wall_s=0.0)
        progress.done(index, bench, result)
        return result
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix=f"llmforge-bench-{bench.name}-") as tmp:
        out = Path(tmp) / "figures.json"
        cmd = [sys.executable, str(script), *args, "--json", str(out)]
        start = time.monotonic()
        proc = subprocess.Popen(
            cmd,
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,  # a timeout kills its children too (Spark's JVM, kill -9 writers)
        )
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
        tail: list[str] = []
        timed_out = False
        while True:
            try:
                text = lines.get(timeout=0.5)
            except queue.Empty:
                text = ""
            elapsed = time.monotonic() - start
            if text is None:
                break
            if text:
                tail = [*tail[-(TAIL - 1) :], text]
            progress.line(bench.name, elapsed, text or (tail[-1] if tail and progress.tty else None))
            if timeout and elapsed > timeout and not timed_out:
                timed_out = True
                _kill_group(proc)
        code = proc.wait()
        result["wall_s"] = round(time.monotonic() - start, 1)
        if timed_out:
            result.update(status="timeout", error=f"killed after {timeout:.0f} s", output_tail=tail)
        elif code != 0:
            last = tail[-1] if tail else "no output"
            result.update(status="failed", error=f"exit {code}: {last}", output_tail=tail)
        else:
            try:
                result["figures"], result["notes"] = read_script_output(out, bench.name)
                result["status"] = "ok"
            except Exception as exc:  # a malformed --json file is this benchmark's failure, not the run's
                result.update(status="failed", error=str(exc), output_tail=tail)
    progress.done(index, bench, result)
    return result


def run_suite(
    benches: list[Benchmark],
    folder: Path,
    profile: str,
    device: str,
    machine: dict[str, Any],
    timeout: float | None = None,
    stream=None,
    clock: Callable[[], dt.datetime] | None = None,
) -> dict[str, Any]:
    """Every benchmark in turn; the run document (see ``results``), gates not yet checked."""
    from llmforge.bench.results import KIND, SCHEMA

    started = (clock or (lambda: dt.datetime.now(dt.UTC)))()
    progress = Progress(len(benches), stream)
    t0 = time.monotonic()
    done = [run_one(b, folder, profile, device, progress, i, timeout) for i, b in enumerate(benches, 1)]
    return {
        "schema": SCHEMA,
        "kind": KIND,
        "profile": profile,
        "device": device,
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": round(time.monotonic() - t0, 1),
        "machine": machine,
        "benchmarks": done,
        "gates": [],
    }


def run_path(results_dir: Path, run: dict[str, Any]) -> Path:
    """``<results>/<date>-<machine>.json``; the date carries the time so runs of a day do not collide."""
    stamp = run["started"].replace(":", "").replace("T", "-").rstrip("Z")
    return results_dir / f"{stamp}-{run['machine']['id']}.json"
