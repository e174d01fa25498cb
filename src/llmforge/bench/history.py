"""The history page: every figure over the runs (commits) of a results folder, one small inline SVG
plot per figure, one line per machine; a self-contained HTML file (no scripts, no CDN)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from llmforge.bench.results import fmt, history

W, H, PAD = 300, 130, 28
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _series(runs: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], dict[str, list]]:
    """``{(profile/device, benchmark, figure, unit): {machine: [(i, run, figure)]}}``."""
    out: dict[tuple[str, str, str, str], dict[str, list]] = {}
    for i, run in enumerate(runs):
        where = f"{run.get('profile')}/{run.get('device')}"
        for b in run["benchmarks"]:
            for f in b.get("figures", []):
                key = (where, b["name"], f["name"], f.get("unit", ""))
                out.setdefault(key, {}).setdefault(run["machine"]["id"], []).append((i, run, f))
    return out


def _worst(f: dict) -> float:
    """The worst repeat: the value is the best one, the spread their distance."""
    s = f.get("spread") or 0.0
    return f["value"] - s if f["better"] == "higher" else f["value"] + s


def svg(points: dict[str, list], n_runs: int, better: str) -> str:
    """A small line plot: x = run index, y = value (the best repeat), a bar down to the worst repeat."""
    vals = [v for pts in points.values() for _, _, f in pts for v in (f["value"], _worst(f))]
    lo, hi = min(vals), max(vals)
    if hi == lo:
        lo, hi = lo - (abs(lo) * 0.05 or 1), hi + (abs(hi) * 0.05 or 1)

    def x(i: int) -> float:
        return PAD + (W - 2 * PAD) * (i / max(1, n_runs - 1))

    def y(v: float) -> float:
        return H - PAD + 8 - (H - PAD) * (v - lo) / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">',
        f'<line x1="{PAD}" y1="{H - PAD + 8}" x2="{W - PAD}" y2="{H - PAD + 8}" stroke="#bbb"/>',
        f'<text x="2" y="{y(hi) + 4:.1f}" font-size="9">{html.escape(fmt(hi))}</text>',
        f'<text x="2" y="{y(lo):.1f}" font-size="9">{html.escape(fmt(lo))}</text>',
        f'<text x="{W - PAD}" y="{H - 2}" font-size="9" text-anchor="end">{better} is better</text>',
    ]
    for colour, (machine, pts) in zip(COLOURS * 10, points.items()):
        coords = " ".join(f"{x(i):.1f},{y(f['value']):.1f}" for i, _, f in pts)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for i, run, f in pts:
            commit = (run["machine"].get("commit") or "no git")[:8]
            tip = html.escape(
                f"{machine} {run['started'][:16]} {commit}: {fmt(f['value'], f.get('unit', ''))}"
            )
            if f.get("spread"):
                parts.append(
                    f'<line x1="{x(i):.1f}" y1="{y(f["value"]):.1f}" x2="{x(i):.1f}" '
                    f'y2="{y(_worst(f)):.1f}" stroke="{colour}"/>'
                )
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(f["value"]):.1f}" r="2.5" fill="{colour}"><title>{tip}</title></circle>'
            )
    parts.append("</svg>")
    return "".join(parts)


def render(folder: Path) -> str:
    """The history page of every run file in ``folder``."""
    runs = [doc for _, doc in history(folder)]
    series = _series(runs)
    machines = sorted({r["machine"]["id"] for r in runs})
    legend = " ".join(
        f'<span style="color:{c}">&#9632; {html.escape(m)}</span>' for c, m in zip(COLOURS * 10, machines)
    )
    commits = " ".join(
        f"<li>{i}: {html.escape(r['started'][:16])} {html.escape((r['machine'].get('commit') or '')[:8])} "
        f"{html.escape(r.get('profile', ''))}/{html.escape(r.get('device', ''))} on "
        f"{html.escape(r['machine']['id'])}</li>"
        for i, r in enumerate(runs)
    )
    body, section = [], None
    for (where, bench, name, unit), points in sorted(series.items()):
        if (where, bench) != section:
            if section is not None:
                body.append("</div>")
            section = (where, bench)
            body.append(
                f"<h2>{html.escape(bench)} <small>({html.escape(where)})</small></h2><div class=grid>"
            )
        last = list(points.values())[-1][-1][2]
        body.append(
            f"<figure class=plot><figcaption>{html.escape(name)} "
            f"<b>{html.escape(fmt(last['value'], unit))}</b></figcaption>"
            f"{svg(points, len(runs), last['better'])}</figure>"
        )
    if section is not None:
        body.append("</div>")
    return (
        "<!doctype html><html><head><meta charset=utf-8><title>llmforge benchmark history</title>"
        "<style>body{font:14px sans-serif;margin:1.5em}.grid{display:flex;flex-wrap:wrap;gap:8px}"
        ".plot{margin:0;border:1px solid #ddd;padding:4px}figcaption{font-size:12px}</style></head><body>"
        f"<h1>llmforge benchmark history</h1><p>{len(runs)} run(s); one plot per figure, x = run "
        f"(oldest left), dot = best repeat, bar = down to the worst repeat. Machines: {legend}</p>"
        f"{''.join(body) or '<p>No results yet: run <code>llmforge bench</code>.</p>'}"
        f"<h2>Runs</h2><ol start=0>{commits}</ol></body></html>\n"
    )


def write(folder: Path, out: Path | None = None) -> Path:
    from llmforge.fsutil import write_atomic

    target = out or folder / "history.html"
    write_atomic(target, render(folder), mode=0o644)
    return target
