"""The evaluation table: one row per question, read from a file, a governed table or rows.

Columns (case as written): ``question`` (required); ``answer`` or ``answers`` (gold: a string
or a list); ``aliases`` (other accepted spellings); ``document_id`` / ``doc_id`` /
``gold_doc_id`` (the document that answers it, for recall@k and MRR); ``answerable``
(default: true when a gold answer is given and ``visible_to_asker`` is not false); ``user``
(the principal who asks). ``examples/enterprise/questions.jsonl`` and the
ClapNQ files (``input`` / ``output[0].answer``) are read as they are.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmforge.errors import DataError

DOC_COLUMNS = ("document_id", "doc_id", "gold_doc_id")


@dataclass
class EvalRow:
    question: str
    answers: list[str] = field(default_factory=list)
    doc_id: str | None = None
    answerable: bool = True
    #: principal to ask as (column ``user``); default: the evaluation's user
    user: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _as_list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        v = v.strip()
        if v.startswith("["):
            try:
                return [str(x) for x in json.loads(v) if str(x).strip()]
            except json.JSONDecodeError:
                pass
        return [v] if v else []
    if isinstance(v, Iterable):
        return [str(x) for x in v if str(x).strip()]
    return [str(v)]


def _bool(v: Any, default: bool) -> bool:
    if v is None or v == "":
        return default
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "y", "t")
    return bool(v)


def _row(i: int, raw: dict[str, Any]) -> EvalRow:
    if "question" not in raw and "input" in raw:  # ClapNQ
        out = raw.get("output") or []
        raw = {
            "question": raw["input"],
            "answers": [o.get("answer", "") for o in out if isinstance(o, dict)],
            "answerable": bool(out and out[0].get("answer")),
            "doc_id": (raw.get("passages") or [{}])[0].get("title"),
        }
    q = raw.get("question")
    if not isinstance(q, str) or not q.strip():
        raise DataError(f"evaluation row {i} has no question; every row needs a non-empty 'question'")
    answers = _as_list(raw.get("answers", raw.get("answer"))) + _as_list(raw.get("aliases"))
    doc = next((raw[c] for c in DOC_COLUMNS if raw.get(c) not in (None, "")), None)
    known = {"question", "answer", "answers", "aliases", "answerable", "user", *DOC_COLUMNS}
    return EvalRow(
        question=q.strip(),
        answers=answers,
        doc_id=None if doc is None else str(doc),
        # a gold answer the asker may not read must not be given to them: a refusal is right
        answerable=_bool(raw.get("answerable"), bool(answers) and _bool(raw.get("visible_to_asker"), True)),
        user=str(raw["user"]) if raw.get("user") else None,
        meta={k: v for k, v in raw.items() if k not in known},
    )


def _read_file(path: Path) -> list[dict]:
    if not path.exists():
        raise DataError(f"evaluation table {path} does not exist")
    if path.suffix in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}:{n} is not JSON ({exc.msg})") from None
        return rows
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        return data if isinstance(data, list) else data.get("rows", [])
    if path.suffix in (".csv", ".tsv"):
        with path.open(newline="") as f:
            return list(csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ","))
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise DataError(f"cannot read {path}: use .jsonl, .json, .csv, .tsv or .parquet")


def load_table(source: Any, forge: Any = None) -> list[EvalRow]:
    """Rows from a path, a ``catalog.schema.table`` name (read as the forge's user), a pyarrow
    table, or a list of dicts. Raises :class:`DataError` naming what is missing."""
    if isinstance(source, (str, Path)) and Path(source).suffix:
        raw = _read_file(Path(source))
    elif isinstance(source, str) and forge is not None and source.count(".") == 2:
        t = forge.table(source)
        if not t.exists:
            raise DataError(f"evaluation table {source!r} does not exist")
        raw = t.read().to_pylist()
    elif hasattr(source, "to_pylist"):
        raw = source.to_pylist()
    elif isinstance(source, list):
        raw = source
    else:
        raise DataError(
            f"cannot use {source!r} as an evaluation table: pass a .jsonl/.csv/.parquet path, "
            "a catalog.schema.table name, or a list of {'question': ..., 'answer': ...} rows"
        )
    if not raw:
        raise DataError("the evaluation table is empty; add rows with at least a 'question' column")
    bad = [i for i, r in enumerate(raw) if not isinstance(r, dict)]
    if bad:
        raise DataError(f"evaluation rows must be objects with named columns; row {bad[0]} is not")
    if not any("question" in r or "input" in r for r in raw):
        cols = sorted({k for r in raw for k in r})
        raise DataError(
            f"the evaluation table has no 'question' column (columns: {cols}); needed: question, "
            "and for scoring answer/answers, aliases, document_id, answerable"
        )
    return [_row(i, r) for i, r in enumerate(raw)]
