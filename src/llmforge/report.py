"""HTML reports people compare: the quickstart run (training curve, metrics, answers)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1050px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:4px 8px;
vertical-align:top;text-align:left}th{background:#f3f3f3}.bad{color:#b00}.ok{color:#080}
code{background:#f6f6f6;padding:0 3px}"""


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def quickstart_report(path: Path, *, result: Any, promoted: Any, answers: list, timings: dict) -> Path:
    from llmforge.tracking import loss_curve_png

    esc = html.escape
    curve = loss_curve_png(list(result.losses), path.with_name("quickstart-loss.png"))
    png = base64.b64encode(curve.read_bytes()).decode()
    metrics = _table(["metric", "value"], [[esc(k), f"{v:.4g}"] for k, v in sorted(result.metrics.items())])
    promo = (f"<p class=ok>promoted to <code>@champion</code>: version {esc(str(promoted['version']))}</p>"
             if isinstance(promoted, dict) else f"<p class=bad>not promoted: {esc(str(promoted))}</p>")
    rows = []
    for a in answers:
        guards = "<br>".join(
            f"<span class={'ok' if g.passed else 'bad'}>{esc(g.guard)}"
            f"{'' if g.score is None else f' {g.score:.2f}'}</span>" for g in a.guards)
        cites = "<br>".join(f"{esc(str(c['document_id']))} ({esc(str(c['source_table']))}@v{c['delta_version']},"
                            f" {c['score']:.2f})" for c in a.citations) or "—"
        rows.append([esc(a.user or ""), esc(a.question), esc(a.text.strip()), cites, guards])
    steps = _table(["step", "seconds"], [[esc(k), f"{v:.1f}"] for k, v in timings.items()])
    doc = f"""<!doctype html><meta charset=utf-8><title>llmforge quickstart</title><style>{CSS}</style>
<h1>llmforge quickstart report</h1>
<h2>Fine-tuning</h2>
<p>MLflow run <code>{esc(result.run_id)}</code> registered <code>{esc(result.registered_model)}</code>
version <b>{esc(str(result.model_version))}</b>, trained on <code>{esc(result.training_table)}</code>
at Delta version {result.training_table_version} ({result.tokens_per_second:.0f} tokens/s).</p>
{promo}
<img alt="training loss" src="data:image/png;base64,{png}">
{metrics}
<h2>Answers (identity-aware retrieval)</h2>
{_table(["user", "question", "answer", "citations (table@version, score)", "guardrails"], rows)}
<h2>Steps</h2>
{steps}
"""
    path.write_text(doc)
    return path
