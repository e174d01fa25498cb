"""Lineage: edges from source nodes to target nodes, with the job/run that made them.

Nodes are strings: ``table:<full_name>@<version>``, ``mlflow_run:<run_id>``,
``model:<name>/<version>``, ``index:<name>@<version>``, ``answer:<request_id>``.
Where a transform keeps row identity, the edge also carries row keys:
``{source_key: [target_key, ...]}`` (e.g. a ``document_id`` → the ids of the training
rows made from it), queryable from either end.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from llmforge.catalog.store import Store
from llmforge.errors import ConfigError

NODE_KINDS = ("table", "mlflow_run", "model", "index", "answer")
_NODE = re.compile(rf"^({'|'.join(NODE_KINDS)}):\S+$")


def table_node(full_name: str, version: int) -> str:
    return f"table:{full_name}@{version}"


def validate_node(node: str) -> str:
    if not isinstance(node, str) or not _NODE.match(node):
        raise ConfigError(
            f"lineage node {node!r} must look like 'table:main.knowledge.documents@3', "
            f"'mlflow_run:<id>', 'model:<name>/<version>', 'index:<name>@<version>' "
            f"or 'answer:<request_id>' (kinds: {list(NODE_KINDS)})"
        )
    return node


def _row_pairs(row_keys: dict | None) -> list[tuple[str, str]]:
    if not row_keys:
        return []
    if not isinstance(row_keys, dict):
        raise ConfigError("row_keys must map each source row key to the target row key(s) made from it")
    pairs = []
    for src, targets in row_keys.items():
        if isinstance(targets, str | int) or not isinstance(targets, Iterable):
            targets = [targets]
        pairs.extend((str(src), str(t)) for t in targets)
    return pairs


def record(
    store: Store, sources: list[str], target: str, job: str, run_id: str | None, row_keys: dict | None
) -> list[int]:
    """One edge per source, all in one transaction; returns the edge ids."""
    if isinstance(sources, str):
        sources = [sources]
    srcs = [validate_node(s) for s in sources]
    validate_node(target)
    if not job:
        raise ConfigError("record_lineage needs a job name (what made the target, e.g. 'prepare_training')")
    pairs = _row_pairs(row_keys)
    now = datetime.now(UTC).isoformat()
    ids = []
    with store.write() as con:
        for s in srcs:
            cur = con.execute(
                "INSERT INTO lineage (source, target, job, run_id, created_at) VALUES (?, ?, ?, ?, ?)",
                (s, target, job, run_id, now),
            )
            ids.append(cur.lastrowid)
            con.executemany(
                "INSERT INTO lineage_rows VALUES (?, ?, ?)", [(cur.lastrowid, a, b) for a, b in pairs]
            )
    return ids


def _edge(r, depth: int) -> dict:
    return {
        "source": r["source"],
        "target": r["target"],
        "job": r["job"],
        "run_id": r["run_id"],
        "created_at": r["created_at"],
        "depth": depth,
    }


def _matches(node: str) -> tuple[str, tuple]:
    """A node with a version pins it; ``table:x`` without ``@v`` means every version of x."""
    if "@" in node or not node.startswith(("table:", "index:")):
        return "= ?", (node,)
    return "LIKE ? ESCAPE '\\'", (node.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "@%",)


def traverse(store: Store, node: str, direction: str, depth: int | None = None) -> list[dict]:
    """Edges reachable from ``node`` going ``up`` (to sources) or ``down`` (to targets), breadth first."""
    validate_node(node)
    near, far = ("target", "source") if direction == "up" else ("source", "target")
    seen_edges: set[int] = set()
    out: list[dict] = []
    frontier, level = [node], 1
    visited = {node}
    while frontier and (depth is None or level <= depth):
        nxt = []
        for n in frontier:
            op, params = _matches(n)
            for r in store.query(f"SELECT * FROM lineage WHERE {near} {op} ORDER BY id", params):
                if r["id"] in seen_edges:
                    continue
                seen_edges.add(r["id"])
                out.append(_edge(r, level))
                if r[far] not in visited:
                    visited.add(r[far])
                    nxt.append(r[far])
        frontier, level = nxt, level + 1
    return out


def row_lineage(store: Store, node: str, key: str, direction: str) -> list[dict]:
    """Row keys one hop from ``key`` of ``node``: ``[{node, key, job, run_id}]``."""
    validate_node(node)
    near, far = ("target", "source") if direction == "up" else ("source", "target")
    k_near, k_far = ("target_key", "source_key") if direction == "up" else ("source_key", "target_key")
    op, params = _matches(node)
    rows = store.query(
        f"SELECT l.{far} AS node, r.{k_far} AS key, l.job, l.run_id FROM lineage l "
        f"JOIN lineage_rows r ON r.edge_id = l.id WHERE l.{near} {op} AND r.{k_near} = ? ORDER BY l.id, r.rowid",
        (*params, str(key)),
    )
    return [dict(r) for r in rows]
