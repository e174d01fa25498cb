"""The evaluation report: one self-contained HTML page with metrics, plots (matplotlib,
embedded as PNG) and the worst examples with their contexts."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _plots(result: Any, history: list[dict]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = []
    runs = (history + [{"target": result.target, "run_name": "this run", "metrics": result.metrics}])[-6:]
    shown = [m for m in result.metrics if not m.startswith("latency") and m != "perplexity"]
    if shown:
        fig, ax = plt.subplots(figsize=(8, 3.5))
        width = 0.8 / len(runs)
        for i, r in enumerate(runs):
            vals = [r["metrics"].get(m, 0.0) for m in shown]
            ax.bar(
                [x + i * width for x in range(len(shown))],
                vals,
                width,
                label=f"{r['target']} ({r['run_name']})",
            )
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(shown))], shown, rotation=30, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_title("metrics across evaluated versions")
        ax.legend(fontsize=7)
        out.append(_png(fig))
    series = {
        "faithfulness": [r["faithfulness"] for r in result.rows if "faithfulness" in r],
        "latency (s)": [r["latency_s"] for r in result.rows],
    }
    series = {k: v for k, v in series.items() if v}
    if series:
        fig, axes = plt.subplots(1, len(series), figsize=(4 * len(series), 3))
        for ax, (k, v) in zip([axes] if len(series) == 1 else axes, series.items(), strict=True):
            ax.hist(v, bins=20)
            ax.set_title(f"{k} per question")
        out.append(_png(fig))
    return out


def _worst(rows: list[dict], n: int = 10) -> list[dict]:
    def badness(r: dict) -> tuple:
        wrong = r.get("correct") is False or (not r["answerable"] and not r["refused"])
        return (not wrong and "error" not in r, r.get("faithfulness", 1.0))

    return sorted(rows, key=badness)[:n]


def write_report(path: Path, result: Any, history: list[dict]) -> Path:
    esc = html.escape
    metric_rows = "".join(
        f"<tr><td>{esc(k)}</td><td>{v:.4f}</td></tr>" for k, v in sorted(result.metrics.items())
    )
    metric_rows += "".join(
        f"<tr><td>{esc(k)}</td><td>not measured: {esc(v)}</td></tr>"
        for k, v in sorted(result.unmeasured.items())
    )
    try:
        plots = "".join(_plots(result, history))
    except Exception as exc:  # a report without plots beats no report
        plots = f"<p>plots unavailable: {esc(str(exc))}</p>"
    worst = []
    for r in _worst(result.rows):
        ctx = "".join(f"<li>{esc(c[:600])}</li>" for c in r.get("contexts", [])[:4])
        claims = "".join(f"<li>{esc(c)}</li>" for c in r.get("failed_claims", []))
        worst.append(
            "<tr>"
            f"<td>{esc(r['question'])}</td><td>{esc(r.get('answer') or '')}"
            f"{'<br><b>error:</b> ' + esc(r['error']) if 'error' in r else ''}</td>"
            f"<td>{esc(' | '.join(r['gold'][:3]))}</td><td>{r.get('correct')}</td>"
            f"<td>{r.get('faithfulness', '')}<ul>{claims}</ul></td><td><ol>{ctx}</ol></td></tr>"
        )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>evaluation: {esc(result.target)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left;font-size:13px}"
        "</style></head><body>"
        f"<h1>Evaluation of {esc(result.target)}</h1><p>{len(result.rows)} questions</p>"
        f"<h2>Metrics</h2><table>{metric_rows}</table><h2>Plots</h2>{plots}"
        "<h2>Worst examples</h2><table><tr><th>question</th><th>answer</th><th>gold</th>"
        f"<th>correct</th><th>faithfulness (failed claims)</th><th>contexts</th></tr>{''.join(worst)}</table>"
        "</body></html>"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return path
