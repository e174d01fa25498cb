"""Results files: one per run, ``benchmarks/results/<date>-<machine>.json`` plus its Markdown table.

A run file holds ``schema`` (``SCHEMA``), ``kind``, ``profile``, ``device``, ``started`` (UTC ISO),
``wall_s``, ``machine`` (``machine.describe``), ``benchmarks`` (name, script, args, status,
error, wall_s, notes and the script's ``figures``) and ``gates`` (each floor checked). A
benchmark script's own ``--json`` output (``SCRIPT_SCHEMA``) is read by ``read_script_output``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from llmforge.errors import ConfigError, DataError

SCHEMA = 1  # the run file written by `llmforge bench`
SCRIPT_SCHEMA = 1  # what each benchmark script writes with --json (benchmarks/_results.py)
KIND = "llmforge-bench-results"
FIGURE_KEYS = ("name", "value", "unit", "better", "baseline", "baseline_value", "ratio", "repeats", "spread")


def read_script_output(path: Path, benchmark: str) -> tuple[list[dict], str]:
    """The figures and notes a benchmark script wrote with ``--json``; DataError if malformed."""
    if not path.exists():
        raise DataError(f"{benchmark}: the script wrote no --json file (does it accept --json PATH?)")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{benchmark}: its --json output is not JSON ({exc})") from None
    if doc.get("schema") != SCRIPT_SCHEMA:
        raise DataError(
            f"{benchmark}: its --json output has schema {doc.get('schema')!r}, this suite reads "
            f"{SCRIPT_SCHEMA}; update the script to benchmarks/_results.py's format"
        )
    figures = doc.get("figures")
    if not isinstance(figures, list) or not figures:
        raise DataError(f"{benchmark}: its --json output lists no figures")
    for f in figures:
        missing = [k for k in FIGURE_KEYS if k not in f]
        if missing:
            raise DataError(f"{benchmark}: figure {f.get('name')!r} lacks {', '.join(missing)}")
        if f["better"] not in ("higher", "lower"):
            raise DataError(f"{benchmark}: figure {f['name']!r} has better={f['better']!r}")
    return figures, str(doc.get("notes", ""))


def load(path: str | Path) -> dict[str, Any]:
    """A run file; ConfigError (a bad argument) when it is not one or is another schema version."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no results file {p}; list them with `ls benchmarks/results/*.json`")
    try:
        doc = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p} is not a JSON results file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise ConfigError(f"{p} is not an `llmforge bench` results file (no kind={KIND!r})")
    if doc.get("schema") != SCHEMA:
        raise ConfigError(
            f"{p} was written with results schema version {doc.get('schema')!r}; this llmforge reads "
            f"version {SCHEMA}. Compare it with the llmforge that wrote it, or re-run `llmforge bench`"
        )
    return doc


def history(folder: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable run file of ``folder``, oldest first; others are skipped."""
    runs = []
    for p in sorted(folder.glob("*.json")):
        try:
            runs.append((p, load(p)))
        except ConfigError:
            continue
    return sorted(runs, key=lambda r: r[1].get("started", ""))


def previous(folder: Path, run: dict[str, Any], exclude: Path | None = None) -> dict[str, Any] | None:
    """The latest earlier run of the same machine, profile and device, if any."""
    same = [
        doc
        for p, doc in history(folder)
        if p != exclude
        and doc["machine"].get("id") == run["machine"].get("id")
        and doc.get("profile") == run.get("profile")
        and doc.get("device") == run.get("device")
        and doc.get("started", "") < run.get("started", "")
    ]
    return same[-1] if same else None


def figures(run: dict[str, Any]) -> dict[tuple[str, str], dict]:
    """``{(benchmark, figure name): figure}`` of a run."""
    return {(b["name"], f["name"]): f for b in run.get("benchmarks", []) for f in b.get("figures", [])}


def fmt(x: float | None, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    a = abs(x)
    s = f"{x:,.0f}" if a >= 1000 else f"{x:.1f}" if a >= 100 else f"{x:.2f}" if a >= 1 else f"{x:.3f}"
    return f"{s} {unit}".strip()


def machine_line(run: dict[str, Any]) -> str:
    m = run["machine"]
    libs = m.get("libraries", {})
    commit = (m.get("commit") or "no git")[:10] + (" (uncommitted changes)" if m.get("dirty") else "")
    return (
        f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, GPU: {m.get('gpu') or 'none'}; "
        f"python {m.get('python')}, torch {libs.get('torch', '–')}, transformers "
        f"{libs.get('transformers', '–')}; commit {commit}"
    )


def markdown(run: dict[str, Any]) -> str:
    """The run as a Markdown table, with the machine it was measured on."""
    lines = [
        f"`llmforge bench --{run['profile']} --device {run['device']}`, {run['started'][:16]} UTC, "
        f"{run['wall_s']:.0f} s",
        "",
        f"Machine: {machine_line(run)}",
        "",
        "| benchmark | figure | value | baseline | baseline value | ratio | repeats | spread |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for b in run["benchmarks"]:
        if b["status"] != "ok":
            lines.append(f"| {b['name']} | **{b['status']}**: {b.get('error', '')} | | | | | | |")
            continue
        for f in b["figures"]:
            ratio = f"{f['ratio']:.2f}x" if f.get("ratio") is not None else "–"
            lines.append(
                f"| {b['name']} | {f['name']} | {fmt(f['value'], f['unit'])} | {f.get('baseline') or '–'} | "
                f"{fmt(f.get('baseline_value'), f['unit'])} | {ratio} | {f.get('repeats', 1)} | "
                f"{fmt(f.get('spread'))} |"
            )
    failed = [g for g in run.get("gates", []) if not g["passed"]]
    if run.get("gates"):
        lines += ["", f"Floors: {len(run['gates']) - len(failed)}/{len(run['gates'])} passed."]
        lines += [f"- FAILED: {g['message']}" for g in failed]
    return "\n".join(lines) + "\n"


README_START, README_END = "<!-- bench:full:start -->", "<!-- bench:full:end -->"


def update_readme(readme: Path, table: str) -> None:
    """Put ``table`` between the README's bench markers (the --full profile's table)."""
    from llmforge.fsutil import write_atomic

    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise ConfigError(f"{readme} has no {README_START} ... {README_END} block to put the table in")
    head, rest = text.split(README_START, 1)
    tail = rest.split(README_END, 1)[1]
    write_atomic(readme, f"{head}{README_START}\n{table}{README_END}{tail}", mode=0o644)
