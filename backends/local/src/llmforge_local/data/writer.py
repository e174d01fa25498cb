"""``df.write.mode(...).option(...).saveAsTable(name)`` for both engines, into governed tables.

The write goes through :class:`~llmforge_local.data.tables.Table`, so it needs MODIFY (or
creates the table, owned by the caller), is one Delta commit, and records lineage from every
table the frame was read from. When the output keeps the source's primary key column, the
edge also carries row keys: source key -> the output's primary keys (or the same key).
"""

from __future__ import annotations

from typing import Any

from llmforge.errors import ConfigError

MODES = {
    "overwrite": "overwrite",
    "append": "append",
    "error": "error",
    "errorifexists": "error",
    "ignore": "ignore",
}


def row_keys(table, source_key: str | None, target_key: str | None) -> dict | None:
    """``{source key: [target keys]}`` when ``table`` keeps ``source_key``; else ``None``."""
    if not source_key or source_key not in table.column_names:
        return None
    targets = table.column(target_key or source_key).to_pylist()
    out: dict[str, list] = {}
    for s, t in zip(table.column(source_key).to_pylist(), targets, strict=True):
        out.setdefault(str(s), []).append(t)
    return out


class FrameWriter:
    """The ``DataFrame.write`` builder; ``engine.save`` does the work."""

    def __init__(self, engine: Any, frame: Any) -> None:
        self._engine, self._frame = engine, frame
        self._mode, self._options = "error", {}

    def mode(self, mode: str) -> FrameWriter:
        key = str(mode).lower()
        if key not in MODES:
            raise ConfigError(f"write mode {mode!r} is not one of {sorted(MODES)}")
        self._mode = MODES[key]
        return self

    def option(self, key: str, value: Any) -> FrameWriter:
        """``primaryKey`` (on create), ``job`` and ``runId`` (recorded with the commit and lineage)."""
        if key not in ("primaryKey", "job", "runId", "comment"):
            raise ConfigError(f"unknown write option {key!r}; allowed: primaryKey, job, runId, comment")
        self._options[key] = value
        return self

    def format(self, fmt: str) -> FrameWriter:
        if fmt != "delta":
            raise ConfigError(f"governed tables are Delta tables; format({fmt!r}) is not supported")
        return self

    def saveAsTable(self, name: str) -> int:
        """Write the frame to ``name``; returns the table's new version."""
        return self._engine.save(self._frame, name, self._mode, dict(self._options))


def save_arrow(
    forge: Any,
    user: str,
    data,
    name: str,
    mode: str,
    options: dict,
    sources: list[str],
    source_key: str | None,
) -> int:
    """The governed write behind ``saveAsTable`` for data already in Arrow."""
    table = forge.data.table(name, user=user)
    job = options.get("job", "saveAsTable")
    run_id = options.get("runId")
    exists = table.exists
    if exists and mode == "error":
        from llmforge.errors import AlreadyExistsError

        raise AlreadyExistsError(f"table {name} already exists; use .mode('overwrite') or .mode('append')")
    if exists and mode == "ignore":
        return table.version
    pk = options.get("primaryKey") if not exists else table.primary_key
    keys = row_keys(data, source_key, pk) if sources else None
    kw = {"sources": sources, "job": job, "run_id": run_id, "row_keys": keys}
    if not exists:
        return table.create(data, primary_key=pk, comment=options.get("comment"), **kw)
    return table.overwrite(data, **kw) if mode == "overwrite" else table.append(data, **kw)
