"""Delta-sync: what changed in the source table since the index's last synced version.

Preferred path: the table's change data feed (``changes(start, end)``), folded so the last
change per primary key wins. Fallback when the feed is unavailable (not enabled, or
vacuumed): read the table at the target version and diff it against the index by primary
key; unchanged rows are recognised by content hash later, so they are not re-embedded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmforge.errors import DataError, LLMForgeError, NotFoundError

UPSERT_TYPES = {"insert", "update_postimage"}


@dataclass
class Pending:
    target_version: int
    docs: list[dict] = field(default_factory=list)
    delete_keys: set = field(default_factory=set)
    mode: str = "none"  # none | full | changes | diff
    #: Arrow schema of the synced columns, as the source table types them
    schema: Any = None


def source_handle(forge: Any, name: str) -> Any:
    from llmforge.catalog import SYSTEM

    table = forge.table(name, user=SYSTEM)  # the pipeline reads everything; queries filter
    if not table.exists:
        raise NotFoundError(
            f"source table '{name}' does not exist; create it first (forge.table('{name}').create(...))"
        )
    return table


def read_all(table: Any, version: int, columns: list[str]) -> tuple[list[dict], Any]:
    data = table.read(version=version)
    missing = [c for c in columns if c not in data.schema.names]
    if missing:
        raise DataError(
            f"source table '{table.full_name}' has no column(s) {missing}; it has "
            f"{data.schema.names}. Fix primary_key / embedding_source_column / columns_to_sync"
        )
    data = data.select(columns)
    return data.to_pylist(), data.schema


def _fold_changes(changes: Any, pk: str, columns: list[str]) -> tuple[list[dict], set]:
    """Last change per key wins; returns (docs to upsert, keys to delete)."""
    rows = changes.to_pylist()
    if rows and "_commit_version" in rows[0]:
        rows.sort(key=lambda r: r["_commit_version"])  # stable: keeps order within a commit
    last: dict[Any, dict] = {}
    for r in rows:
        kind = r.get("_change_type")
        if kind in UPSERT_TYPES or kind == "delete":
            last[r[pk]] = r
    docs = [{c: r.get(c) for c in columns} for r in last.values() if r["_change_type"] != "delete"]
    deletes = {k for k, r in last.items() if r["_change_type"] == "delete"}
    return docs, deletes


def pending(forge: Any, state: Any, indexed_keys: set) -> Pending:
    """Changes to apply to reach the table's current version (empty when up to date)."""
    table = source_handle(forge, state.source_table)
    target = int(table.version)
    if state.synced_version is not None and state.synced_version == target:
        return Pending(target)
    if state.synced_version is not None and state.synced_version < target:
        try:
            changes = table.changes(state.synced_version + 1, target)
        except (LLMForgeError, NotImplementedError, ValueError, OSError, AttributeError):
            changes = None
        if changes is not None:
            docs, deletes = _fold_changes(changes, state.primary_key, state.columns)
            return Pending(target, docs, deletes, "changes", changes.select(state.columns).schema)
    docs, schema = read_all(table, target, state.columns)
    present = {d[state.primary_key] for d in docs}
    mode = "full" if state.synced_version is None else "diff"
    return Pending(target, docs, indexed_keys - present, mode, schema)
