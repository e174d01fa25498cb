"""Load what enterprises have — folders of text / Markdown / HTML / PDF, JSONL, CSV,
Parquet — into one Arrow table of documents with metadata columns.

Every file (and every record of a record file) is loaded whole or reported in the
:class:`LoadReport` with a reason; ``on_error="raise"`` rejects the load when anything was
reported, so a load is never silently partial.

Metadata, most specific first: the file's front matter (HTML ``<meta>`` tags, a record's
columns), then a sidecar ``<file>.meta.yaml`` (or ``.meta.json``), then the arguments.
``document_id`` is the front-matter/column id, else the path relative to the loaded folder
without its suffix (``engineering/project-helix``), ``#<row>`` appended for records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from llmforge.errors import ConfigError, DataError, NotFoundError
from llmforge.loaders.files import DOCUMENT_SUFFIXES, BadFile, read_document
from llmforge.loaders.records import RECORD_SUFFIXES, read_records

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "COLUMNS",
    "DEFAULT_MAX_BYTES",
    "LoadError",
    "LoadProblem",
    "LoadReport",
    "document_schema",
    "load_documents",
]

COLUMNS = ("document_id", "title", "department", "source", "updated_at", "content")
#: a bigger file is almost always an export gone wrong (a database dump, a video)
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
SIDECAR_SUFFIXES = (".meta.yaml", ".meta.yml", ".meta.json")
_ALIASES = {"id": "document_id", "updated": "updated_at", "date": "updated_at", "last_modified": "updated_at"}


@dataclass(frozen=True)
class LoadProblem:
    path: str
    reason: str


@dataclass
class LoadReport:
    """What one load did: ``loaded`` sources and ``problems`` (path, reason) not loaded."""

    root: str
    loaded: list[str] = field(default_factory=list)
    problems: list[LoadProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        return self.summary()

    def summary(self) -> str:
        lines = [f"{len(self.loaded)} document(s) loaded from {self.root}, {len(self.problems)} problem(s)"]
        lines += [f"  {p.path}: {p.reason}" for p in self.problems]
        return "\n".join(lines)


class LoadError(DataError):
    """A load rejected under ``on_error="raise"``; ``report`` lists every problem."""

    def __init__(self, report: LoadReport) -> None:
        super().__init__(
            f"{report.summary()}\nNothing was loaded. Fix or remove these files, "
            "or pass on_error='skip' to load the rest."
        )
        self.report = report


def document_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([(c, pa.string()) for c in COLUMNS])


def load_documents(
    path: str | Path,
    *,
    department: str | None = None,
    on_error: str = "skip",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[pa.Table, LoadReport]:
    """Documents under ``path`` (a folder, searched recursively, or one file) as a table with
    :data:`COLUMNS`, sorted by ``document_id``, and the report of what was not loaded.

    ``department`` is the default for documents whose metadata names none (a document left
    without one is kept with a null department, which a department row filter hides from
    everyone but exempt principals). ``max_bytes`` caps each document file and each record's
    text; record files themselves may be larger. Hidden files and folders are ignored.
    ``on_error="raise"`` raises :class:`LoadError` (a ``DataError``) listing every problem
    instead of returning a partial table.
    """
    import pyarrow as pa

    if on_error not in ("skip", "raise"):
        raise ConfigError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
    if max_bytes <= 0:
        raise ConfigError(f"max_bytes must be positive, got {max_bytes}")
    root = Path(path)
    if not root.exists():
        raise NotFoundError(f"no file or folder at {root}; pass the folder holding your documents")
    files = _files(root)
    if not files:
        raise DataError(f"no files under {root}; supported: {sorted(DOCUMENT_SUFFIXES + RECORD_SUFFIXES)}")
    base = root if root.is_dir() else root.parent
    report = LoadReport(str(root))
    rows: dict[str, dict[str, Any]] = {}
    for file in files:
        rel = file.relative_to(base).as_posix()
        try:
            found = _load_file(file, rel, department, max_bytes, report)
        except BadFile as exc:
            report.problems.append(LoadProblem(rel, str(exc)))
            continue
        for row in found:
            if row["document_id"] in rows:
                report.problems.append(
                    LoadProblem(
                        row["source"],
                        f"duplicate document_id "
                        f"{row['document_id']!r} (first in {rows[row['document_id']]['source']})",
                    )
                )
                continue
            rows[row["document_id"]] = row
            report.loaded.append(row["source"])
    if report.problems and on_error == "raise":
        raise LoadError(report)
    ordered = [rows[k] for k in sorted(rows)]
    return pa.table({c: [r[c] for r in ordered] for c in COLUMNS}, schema=document_schema()), report


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
        and not p.name.endswith(SIDECAR_SUFFIXES)
    )


def _sidecar(file: Path) -> dict[str, Any]:
    for suffix in SIDECAR_SUFFIXES:
        side = file.with_name(file.name + suffix)
        if side.exists():
            try:
                meta = yaml.safe_load(side.read_text(encoding="utf-8")) or {}
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                raise BadFile(f"unreadable sidecar {side.name}: {str(exc).splitlines()[0]}") from None
            if not isinstance(meta, dict):
                raise BadFile(f"sidecar {side.name} must be a mapping of key: value lines")
            return meta
    return {}


def _load_file(
    file: Path, rel: str, department: str | None, max_bytes: int, report: LoadReport
) -> list[dict[str, Any]]:
    suffix = file.suffix.lower()
    if suffix not in DOCUMENT_SUFFIXES + RECORD_SUFFIXES:
        raise BadFile(
            f"unsupported file type {suffix or '(none)'!r}; supported: "
            f"{sorted(DOCUMENT_SUFFIXES + RECORD_SUFFIXES)}"
        )
    size = file.stat().st_size
    if size == 0:
        raise BadFile("empty file")
    defaults = {"department": department, **_sidecar(file)}
    mtime = dt.datetime.fromtimestamp(file.stat().st_mtime, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if suffix in DOCUMENT_SUFFIXES:
        if size > max_bytes:
            raise BadFile(f"too large: {size} bytes > max_bytes={max_bytes}; split it or raise max_bytes")
        meta, text = read_document(suffix, file.read_bytes())
        if not text.strip():
            raise BadFile("no text after removing front matter and markup")
        fallback = {
            "document_id": rel.rsplit(".", 1)[0],
            "source": rel,
            "updated_at": mtime,
            "title": file.stem.replace("-", " ").replace("_", " "),
        }
        return [_row(meta, defaults, fallback, text)]
    content_col, id_col, records = read_records(suffix, file.read_bytes())
    out = []
    for n, rec, reason in records:
        where = f"{rel}#{n}"
        text = None if rec is None else rec.get(content_col)
        if rec is None or not isinstance(text, str) or not text.strip():
            report.problems.append(LoadProblem(where, reason or f"empty or non-text {content_col!r}"))
            continue
        if len(text.encode()) > max_bytes:
            report.problems.append(
                LoadProblem(where, f"too large: {content_col!r} over max_bytes={max_bytes}")
            )
            continue
        meta = {k: v for k, v in rec.items() if k != content_col and v not in (None, "")}
        if id_col and id_col in meta:
            meta["document_id"] = str(meta.pop(id_col))
        fallback = {
            "document_id": f"{rel.rsplit('.', 1)[0]}#{n}",
            "source": where,
            "updated_at": mtime,
            "title": None,
        }
        try:
            out.append(_row(meta, defaults, fallback, text))
        except BadFile as exc:
            report.problems.append(LoadProblem(where, str(exc)))
    return out


def _row(meta: dict[str, Any], defaults: dict[str, Any], fallback: dict[str, Any], text: str) -> dict:
    merged = dict(fallback)
    for layer in (defaults, meta):
        merged.update({_ALIASES.get(k, k): v for k, v in layer.items() if v not in (None, "")})
    department = merged.get("department")
    return {
        "document_id": str(merged["document_id"]),
        "title": None if merged.get("title") is None else str(merged["title"]).strip(),
        "department": None if department is None else str(department).strip().lower(),
        "source": str(merged["source"]),
        "updated_at": _iso(merged["updated_at"]),
        "content": text.strip(),
    }


def _iso(value: Any) -> str:
    """Dates stay dates (``2026-03-14``), times become ISO-8601; other text is refused so the
    column sorts and compares as time."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    try:
        dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadFile(f"updated_at {text!r} is not an ISO-8601 date or time (e.g. 2026-03-14)") from None
    return text
