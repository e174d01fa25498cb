"""Rows out of record files: JSONL, CSV, Parquet. One bad row is reported on its own."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from llmforge.loaders.files import BadFile, decode

RECORD_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet")
#: accepted spellings of the content and key columns, first match wins
CONTENT_COLUMNS = ("content", "text", "body")
ID_COLUMNS = ("document_id", "id")

Row = tuple[int, dict[str, Any] | None, str | None]  # (row number, record or None, reason)


def _jsonl(data: bytes) -> Iterator[Row]:
    for n, line in enumerate(decode(data).splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            yield n, None, f"invalid JSON ({exc.msg} at column {exc.colno})"
            continue
        yield (n, rec, None) if isinstance(rec, dict) else (n, None, "line is not a JSON object")


def _csv(data: bytes) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(decode(data), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise BadFile("empty CSV (no header row)") from None
    except csv.Error as exc:
        raise BadFile(f"unparsable CSV header: {exc}") from None
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, None, f"unparsable CSV row: {exc}"
            continue
        if not any(cells):
            continue
        if len(cells) != len(header):
            yield reader.line_num, None, f"has {len(cells)} fields, the header has {len(header)}"
            continue
        yield reader.line_num, dict(zip(header, cells, strict=True)), None


def _parquet(data: bytes) -> Iterator[Row]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(data))
    except Exception as exc:  # pyarrow reports damage as ArrowInvalid, OSError and others
        raise BadFile(f"unparsable Parquet ({type(exc).__name__}: {exc})") from None
    for n, rec in enumerate(table.to_pylist(), 1):
        yield n, rec, None


def read_records(suffix: str, data: bytes) -> tuple[str, str | None, list[Row]]:
    """``(content column, id column or None, rows)``. Columns come from the first readable
    record and are checked up front, so a file without text fails as a whole."""
    rows = list({".jsonl": _jsonl, ".ndjson": _jsonl, ".csv": _csv, ".parquet": _parquet}[suffix](data))
    good = next((rec for _, rec, _ in rows if rec is not None), None)
    if good is None:
        raise BadFile(f"no readable records ({rows[0][2]} in row {rows[0][0]})" if rows else "no records")
    columns = list(good)
    content = next((c for c in CONTENT_COLUMNS if c in columns), None)
    if content is None:
        raise BadFile(f"no text column: expected one of {list(CONTENT_COLUMNS)}, found {columns}")
    return content, next((c for c in ID_COLUMNS if c in columns), None), rows
