"""Floors on a run (against static floors and the last run of the same machine) and A-vs-B comparisons.

Noise is measured, not guessed: each figure records its repeats and spread (max - min). A
change counts as real when it is larger than the larger of the two runs' spreads; a figure
measured once (spread unknown) is reported as changed without a verdict on noise.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from llmforge.bench.registry import BY_NAME, Gate
from llmforge.bench.results import fmt

K = 2.0  # floor = last - K * noise: a regression must exceed twice the measured noise to fail a run


def _field(fig: dict, field: str) -> float | None:
    return fig.get(field)


def _noise(fig: dict, field: str) -> float:
    """The figure's spread, in the units of ``field`` (a ratio's spread scaled from its value's)."""
    spread = fig.get("spread") or 0.0
    if field == "ratio" and fig.get("value") and fig.get("ratio") is not None:
        return abs(fig["ratio"]) * spread / abs(fig["value"])
    return spread


def check_gate(bench: str, gate: Gate, fig: dict | None, last: dict | None) -> dict[str, Any]:
    """One floor check: ``{"benchmark", "figure", "field", "value", "floor"|"ceiling", "passed", "message"}``."""
    out: dict[str, Any] = {"benchmark": bench, "figure": gate.figure, "field": gate.field}
    what = f"{bench}: {gate.figure!r}" + (" ratio to its baseline" if gate.field == "ratio" else "")
    if fig is None or _field(fig, gate.field) is None:
        return {**out, "passed": False, "message": f"{what} was not reported by the benchmark"}
    value = _field(fig, gate.field)
    higher = fig["better"] == "higher"
    bound, source = (gate.floor, "static") if higher else (gate.ceiling, "static")
    if last is not None and _field(last, gate.field) is not None:
        prev = _field(last, gate.field)
        noise = max(
            _noise(fig, gate.field), _noise(last, gate.field), gate.min_noise * abs(prev), gate.tolerance
        )
        moved = prev - K * noise if higher else prev + K * noise
        if bound is None or (moved > bound if higher else moved < bound):
            bound = moved
            source = f"last run {fmt(prev)} {'-' if higher else '+'} {K:g} x noise {fmt(noise)}"
    out.update(value=value, bound=bound, kind="floor" if higher else "ceiling", source=source)
    if bound is None:
        return {**out, "passed": True, "message": f"{what} = {fmt(value)}: no floor yet (first run here)"}
    ok = value >= bound if higher else value <= bound
    rel = "below its floor" if higher else "above its ceiling"
    msg = (
        f"{what} = {fmt(value)} is {rel} {fmt(bound)} ({source}); {gate.why}"
        if not ok
        else f"{what} = {fmt(value)} within {'floor' if higher else 'ceiling'} {fmt(bound)} ({source})"
    )
    return {**out, "passed": ok, "message": msg}


def check_run(run: dict[str, Any], last: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every gate of every benchmark that ran (and succeeded) in ``run``."""
    from llmforge.bench.results import figures

    now = figures(run)
    before = figures(last) if last else {}
    checks = []
    for b in run["benchmarks"]:
        if b["status"] != "ok" or b["name"] not in BY_NAME:
            continue
        for gate in BY_NAME[b["name"]].gates:
            key = (b["name"], gate.figure)
            checks.append(check_gate(b["name"], gate, now.get(key), before.get(key)))
    return checks


@dataclasses.dataclass
class Row:
    benchmark: str
    figure: str
    field: str
    a: float | None
    b: float | None
    noise: float | None
    verdict: str  # "better", "worse", "within noise", "changed (noise unknown)", "only in A"/"only in B"


def compare(a: dict[str, Any], b: dict[str, Any]) -> tuple[list[Row], list[str]]:
    """Rows of B vs A, and warnings. On different machines absolute figures do not compare, so
    figures with a baseline are compared by their ratio to it (measured in the same run)."""
    from llmforge.bench.results import figures

    warnings = []
    same_machine = a["machine"].get("id") == b["machine"].get("id")
    if not same_machine:
        warnings.append(
            f"the runs are from different machines ({a['machine'].get('id')} vs {b['machine'].get('id')}): "
            "absolute figures do not compare; figures with a baseline are compared by their ratio to it"
        )
    if (a.get("profile"), a.get("device")) != (b.get("profile"), b.get("device")):
        warnings.append(
            f"profiles differ ({a.get('profile')}/{a.get('device')} vs {b.get('profile')}/{b.get('device')}): "
            "sizes differ, so figures may not compare"
        )
    fa, fb = figures(a), figures(b)
    rows = []
    for key in [*fa, *(k for k in fb if k not in fa)]:
        x, y = fa.get(key), fb.get(key)
        if x is None or y is None:
            only = "only in B" if x is None else "only in A"
            rows.append(Row(*key, "value", _field(x or {}, "value"), _field(y or {}, "value"), None, only))
            continue
        field = "value" if same_machine or x.get("ratio") is None or y.get("ratio") is None else "ratio"
        va, vb = x[field], y[field]
        if x.get("spread") is None and y.get("spread") is None:
            noise = None
        else:
            noise = max(_noise(x, field), _noise(y, field))
        delta = vb - va
        if noise is None:
            verdict = "same" if delta == 0 else "changed (noise unknown)"
        elif abs(delta) <= noise:
            verdict = "within noise"
        else:
            verdict = "better" if (delta > 0) == (y["better"] == "higher") else "worse"
        rows.append(Row(*key, field, va, vb, noise, verdict))
    return rows, warnings


def render(rows: list[Row], warnings: list[str], a_name: str, b_name: str) -> str:
    out = [f"warning: {w}" for w in warnings]
    out.append(f"A = {a_name}\nB = {b_name}")
    head = f"{'benchmark':<16} {'figure':<36} {'A':>10} {'B':>10} {'B/A':>7} {'noise':>9}  verdict"
    out += [head, "-" * len(head)]
    for r in rows:
        ratio = f"{r.b / r.a:.2f}x" if r.a and r.b is not None else "–"
        name = r.figure + (" (ratio)" if r.field == "ratio" else "")
        flag = "  <-- " if r.verdict in ("better", "worse") else "  "
        out.append(
            f"{r.benchmark:<16} {name[:36]:<36} {fmt(r.a):>10} {fmt(r.b):>10} {ratio:>7} "
            f"{fmt(r.noise):>9}{flag}{r.verdict}"
        )
    worse = sum(r.verdict == "worse" for r in rows)
    better = sum(r.verdict == "better" for r in rows)
    out.append(f"{better} better, {worse} worse beyond noise, {len(rows) - better - worse} other")
    return "\n".join(out)
