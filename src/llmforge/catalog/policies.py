"""Row filters and column masks as declarative specs (JSON in the catalog).

A spec is data, not a Python function, so every engine can enforce the same rule: the
arrow reader turns it into a ``pyarrow.compute`` expression, the Spark engine into a column
predicate, vector search into a Databricks-style ``filters`` dict, and the Databricks backend
can map it onto a Unity Catalog row filter / column mask function.

Row filters (one per table)::

    {"type": "department_membership", "column": "department",
     "always_visible": ["all"], "exempt_groups": ["admins"]}
    {"type": "group_membership", "column": "audience", "always_visible": [], "exempt_groups": []}
    {"type": "current_user", "column": "owner", "always_visible": [], "exempt_groups": ["admins"]}

Column masks (one per column)::

    {"type": "redact", "except_groups": ["hr"], "replacement": "[REDACTED]"}
    {"type": "null", "except_groups": ["hr"]}
    {"type": "hash", "except_groups": ["hr"]}     # sha256 hex: still joinable, not readable

The central step is :func:`resolve_filter`: a spec plus a principal gives ``None`` (no
filtering: exempt) or ``{column: [allowed values]}`` — the Databricks Vector Search filter
shape. Every engine derives its predicate from that one resolved dict, so they cannot drift.
"""

from __future__ import annotations

import hashlib
from typing import Any

from llmforge.catalog.identity import ALL_USERS, Principal
from llmforge.errors import ConfigError

ROW_FILTERS = ("department_membership", "group_membership", "current_user")
MASKS = ("redact", "null", "hash")
_FILTER_KEYS = {"type", "column", "always_visible", "exempt_groups"}
_MASK_KEYS = {"type", "except_groups", "replacement"}


def _names(spec: dict, key: str) -> list[str]:
    v = spec.get(key, [])
    if isinstance(v, str) or not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"policy key '{key}' must be a list of strings, got {v!r}")
    return list(v)


def validate_row_filter(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with defaults filled; a bad spec raises naming the key and the allowed values."""
    if not isinstance(spec, dict):
        raise ConfigError(
            f"a row filter is a dict like {{'type': 'department_membership', 'column': "
            f"'department'}}, got {type(spec).__name__}"
        )
    if spec.get("type") not in ROW_FILTERS:
        raise ConfigError(f"row filter type {spec.get('type')!r} is not one of {list(ROW_FILTERS)}")
    unknown = sorted(set(spec) - _FILTER_KEYS)
    if unknown:
        raise ConfigError(f"unknown row filter key(s) {unknown}; allowed: {sorted(_FILTER_KEYS)}")
    if not isinstance(spec.get("column"), str) or not spec["column"]:
        raise ConfigError("a row filter needs 'column': the column whose value decides visibility")
    return {
        "type": spec["type"],
        "column": spec["column"],
        "always_visible": _names(spec, "always_visible"),
        "exempt_groups": _names(spec, "exempt_groups"),
    }


def validate_mask(spec: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(spec, dict) or spec.get("type") not in MASKS:
        got = spec.get("type") if isinstance(spec, dict) else spec
        raise ConfigError(f"column mask type {got!r} is not one of {list(MASKS)}")
    unknown = sorted(set(spec) - _MASK_KEYS)
    if unknown:
        raise ConfigError(f"unknown column mask key(s) {unknown}; allowed: {sorted(_MASK_KEYS)}")
    out = {"type": spec["type"], "except_groups": _names(spec, "except_groups")}
    if spec["type"] == "redact":
        out["replacement"] = str(spec.get("replacement", "[REDACTED]"))
    elif "replacement" in spec:
        raise ConfigError(f"'replacement' applies to 'redact' masks only, not '{spec['type']}'")
    return out


def resolve_filter(spec: dict[str, Any] | None, who: Principal) -> dict[str, list[str]] | None:
    """``{column: allowed values}`` for ``who``, or ``None`` when nothing is filtered."""
    if spec is None or who.is_system or who.groups & set(spec["exempt_groups"]):
        return None
    kind = spec["type"]
    if kind == "department_membership":
        mine = who.departments
    elif kind == "group_membership":
        mine = who.groups - {ALL_USERS}
    else:
        mine = frozenset({who.name})
    return {spec["column"]: sorted(set(mine) | set(spec["always_visible"]))}


def masks_for(masks: dict[str, dict], who: Principal) -> dict[str, dict]:
    """The masks that apply to ``who`` (those whose ``except_groups`` it is not in)."""
    if who.is_system:
        return {}
    return {c: m for c, m in masks.items() if not who.groups & set(m["except_groups"])}


def arrow_filter(resolved: dict[str, list[str]] | None):
    """A ``pyarrow.compute`` expression for a resolved filter (``None``: keep every row)."""
    if not resolved:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    expr = None
    for column, values in resolved.items():
        term = pc.field(column).isin(pa.array(values, type=pa.string()))
        expr = term if expr is None else expr & term
    return expr


def _mask_array(arr, spec: dict):
    import pyarrow as pa
    import pyarrow.compute as pc

    if spec["type"] == "null" or (
        spec["type"] == "redact"
        and not pa.types.is_string(arr.type)
        and not pa.types.is_large_string(arr.type)
    ):
        return pa.nulls(len(arr), type=arr.type)
    if spec["type"] == "redact":
        fill = pa.scalar(spec["replacement"], type=arr.type)
        return pc.if_else(pc.is_null(arr), pa.scalar(None, type=arr.type), fill)
    return pa.array(
        [None if v is None else hashlib.sha256(str(v).encode()).hexdigest() for v in arr.to_pylist()],
        type=pa.string(),
    )


def apply_masks(data, masks: dict[str, dict]):
    """``data`` (pa.Table or RecordBatch) with each masked column replaced."""
    for column, spec in masks.items():
        i = data.schema.get_field_index(column)
        if i < 0:
            continue  # the caller did not select it
        masked = _mask_array(data.column(i), spec)
        field = data.schema.field(i).with_type(masked.type)
        data = data.set_column(i, field, masked)
    return data
