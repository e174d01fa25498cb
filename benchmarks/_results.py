"""The ``--json PATH`` results format every benchmark script writes (read by ``llmforge bench``).

    from _results import add_json_option, figure, write_json

    add_json_option(ap)                       # adds --json PATH
    ...
    figs = [figure("llmforge tokens/s", [812.0, 790.5], "tokens/s", baseline="HF Trainer",
                   baseline_value=[401.2, 398.0])]
    if args.json:
        write_json(args.json, "train", figs, notes="128 examples, batch 8")

A figure's ``value`` (and ``baseline_value``) may be one number or the list of its repeated
measurements: a list is summarised as its best (max when higher is better, min otherwise; noise
on a shared machine only ever makes a run worse), ``repeats`` is its length and ``spread`` its
max - min. ``ratio`` defaults to value / baseline_value.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

SCHEMA = 1
BETTER = ("higher", "lower")


def _best(values: float | Sequence[float], better: str) -> tuple[float, int, float | None]:
    if isinstance(values, int | float):
        return float(values), 1, None
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("a figure needs at least one measurement")
    best = max(vals) if better == "higher" else min(vals)
    return best, len(vals), (max(vals) - min(vals)) if len(vals) > 1 else None


def figure(
    name: str,
    value: float | Sequence[float],
    unit: str,
    better: str = "higher",
    baseline: str | None = None,
    baseline_value: float | Sequence[float] | None = None,
    ratio: float | None = None,
    repeats: int | None = None,
    spread: float | None = None,
) -> dict:
    """One figure of the results format; see the module docstring for lists of measurements."""
    if better not in BETTER:
        raise ValueError(f"better must be one of {BETTER}, not {better!r}")
    v, n, s = _best(value, better)
    b = None if baseline_value is None else _best(baseline_value, better)[0]
    if ratio is None and b:
        ratio = v / b
    return {
        "name": name,
        "value": v,
        "unit": unit,
        "better": better,
        "baseline": baseline,
        "baseline_value": b,
        "ratio": None if ratio is None else float(ratio),
        "repeats": repeats if repeats is not None else n,
        "spread": spread if spread is not None else s,
    }


def _finite(x: float | None, what: str) -> None:
    if x is not None and not math.isfinite(x):
        raise ValueError(f"{what} is {x}: a figure must be a finite number (or null)")


def write_json(path: str | os.PathLike, benchmark: str, figures: list[dict], notes: str = "") -> Path:
    """Write ``{"schema": 1, "benchmark", "figures", "notes"}`` to ``path`` atomically."""
    for f in figures:
        _finite(f["value"], f"{f['name']!r} value")
        for key in ("baseline_value", "ratio", "spread"):
            _finite(f.get(key), f"{f['name']!r} {key}")
    doc = {"schema": SCHEMA, "benchmark": benchmark, "figures": figures, "notes": notes}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(tmp, target)
    return target


def add_json_option(parser) -> None:
    """``--json PATH``: where to write the figures for ``llmforge bench``."""
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON (llmforge bench)")
