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


def _adapter_rows(result: Any) -> tuple[list[list[Any]], list[tuple[str, list]]]:
    """One row per adapter (a per-audience run) or for the single run, and its loss curve."""
    esc = html.escape
    runs = getattr(result, "adapters", None) or {"all rows": result}
    aliases = getattr(result, "aliases", {}) or {}
    refused = getattr(result, "refused", {}) or {}
    rows, curves = [], []
    for audience, r in runs.items():
        alias = aliases.get(audience)
        promo = (
            f"<span class=ok>@{esc(alias)}</span>"
            if alias
            else f"<span class=bad>not promoted: {esc(refused.get(audience, '-'))}</span>"
        )
        metrics = ", ".join(f"{esc(k)} {v:.3g}" for k, v in sorted(r.metrics.items()))
        rows.append(
            [
                esc(audience),
                f"<code>{esc(r.run_id)}</code>",
                esc(str(r.model_version)),
                promo,
                metrics,
                f"{r.tokens_per_second:.0f}",
            ]
        )
        curves.append((audience, list(r.losses)))
    return rows, curves


def quickstart_report(path: Path, *, result: Any, promoted: Any, answers: list, timings: dict) -> Path:
    """``result``: a training result, or the per-audience set of adapters of one job."""
    from llmforge.tracking import loss_curve_png

    esc = html.escape
    adapters, curves = _adapter_rows(result)
    images = []
    for i, (audience, losses) in enumerate(curves):
        if not losses:
            continue
        png = loss_curve_png(losses, path.with_name(f"quickstart-loss-{i}.png"))
        b64 = base64.b64encode(png.read_bytes()).decode()
        images.append(
            f"<figure><img alt='loss {esc(audience)}' src='data:image/png;base64,{b64}' width=480>"
            f"<figcaption>{esc(audience)}</figcaption></figure>"
        )
    rows = []
    for a in answers:
        guards = "<br>".join(
            f"<span class={'ok' if g.passed else 'bad'}>{esc(g.guard)}"
            f"{'' if g.score is None else f' {g.score:.2f}'}</span>"
            for g in a.guards
        )
        cites = (
            "<br>".join(
                f"{esc(str(c['document_id']))} ({esc(str(c['source_table']))}@v{c['delta_version']},"
                f" {c['score']:.2f})"
                for c in a.citations
            )
            or "—"
        )
        rows.append([esc(a.user or ""), esc(a.question), esc(a.text.strip()), esc(a.model), cites, guards])
    steps = _table(["step", "seconds"], [[esc(k), f"{v:.1f}"] for k, v in timings.items()])
    doc = f"""<!doctype html><meta charset=utf-8><title>llmforge quickstart</title><style>{CSS}</style>
<h1>llmforge quickstart report</h1>
<h2>Fine-tuning</h2>
<p><code>{esc(result.registered_model)}</code> trained on <code>{esc(result.training_table)}</code> at
Delta version {result.training_table_version}: one adapter per audience, each on the rows that
audience may read, each a registered model version with its own alias.</p>
{_table(["audience", "MLflow run", "version", "alias", "metrics", "tokens/s"], adapters)}
<div style="display:flex;flex-wrap:wrap">{"".join(images)}</div>
<h2>Answers (identity-aware retrieval, each from the asker's entitled adapter)</h2>
{_table(["user", "question", "answer", "model", "citations (table@version, score)", "guardrails"], rows)}
<h2>Steps</h2>
{steps}
"""
    path.write_text(doc)
    return path
