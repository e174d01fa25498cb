"""Databricks Vector Search filters: parse, validate, evaluate, AND.

Standard-endpoint dict syntax: the key names a column and an operator, keys are ANDed::

    {"department": ["eng", "all"]}      IN (a scalar means =)
    {"department NOT": "hr"}            != / NOT IN
    {"year >=": 2023, "year <": 2026}   <  <=  >  >=
    {"title LIKE": "policy"}            token match; a value with % or _ is a SQL LIKE pattern
    {"dept OR owner": ["eng", "ann"]}   dept = 'eng' OR owner = 'ann' (one value per column)

A list of such dicts is ANDed (Databricks accepts it for JSON-pattern filters); a string is
the storage-optimized endpoints' SQL-ish ``filter_string``. Every form parses into one small
tree that evaluates over an Arrow table (``mask``) or one row (``matches``). Comparisons with
NULL are false, so a row without a department never passes a department filter: filters fail
closed, which is what an identity row filter needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from llmforge.errors import DataError

DICT_OPS = ("NOT", "<=", ">=", "<", ">", "LIKE")


class FilterError(DataError):
    """A filter is malformed, uses an unknown operator or names a column that is not synced."""


@dataclass(frozen=True)
class Cmp:
    """``column op value``; op is one of = != < <= > >= IN NOTIN LIKE."""

    column: str
    op: str
    value: Any


@dataclass(frozen=True)
class And:
    parts: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Filter, ...]


Filter = Cmp | And | Or
FilterSpec = dict | list | str | Cmp | And | Or | None


def columns_of(node: Filter) -> set[str]:
    if isinstance(node, Cmp):
        return {node.column}
    return set().union(*(columns_of(p) for p in node.parts))


def _check_value(key: str, value: Any) -> None:
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        raise FilterError(f"filter key '{key}' has an empty list; give at least one value")
    for v in items:
        if not isinstance(v, str | int | float | bool):
            raise FilterError(
                f"filter key '{key}' has value {v!r} of type {type(v).__name__}; "
                f"values must be strings, numbers or booleans (or a list of them)"
            )


def _key_cmp(key: str, part: str, value: Any) -> Cmp:
    """One ``"col [op]"`` key part with its value."""
    words = part.strip().split()
    if not words:
        raise FilterError(f"filter key '{key}' has an empty column name")
    if len(words) == 1:
        col, op = words[0], None
    elif len(words) == 2 and words[1].upper() in DICT_OPS:
        col, op = words[0], words[1].upper()
    else:
        raise FilterError(
            f"malformed filter key '{key}': expected 'column' or 'column OP' with OP one of "
            f"{list(DICT_OPS)}, or 'col1 OR col2'"
        )
    _check_value(key, value)
    if op in ("<", "<=", ">", ">="):
        if isinstance(value, list | bool):
            raise FilterError(f"filter key '{key}' compares with {op}; give one number or string")
        return Cmp(col, op, value)
    if op == "LIKE":
        if not isinstance(value, str):
            raise FilterError(f"filter key '{key}' (LIKE) needs a string value")
        return Cmp(col, "LIKE", value)
    if isinstance(value, list):
        return Cmp(col, "NOTIN" if op == "NOT" else "IN", tuple(value))
    return Cmp(col, "!=" if op == "NOT" else "=", value)


def _parse_dict(d: Mapping) -> Filter:
    if not d:
        raise FilterError("empty filter dict; pass None for no filter")
    parts: list[Filter] = []
    for key, value in d.items():
        if not isinstance(key, str):
            raise FilterError(f"filter keys must be strings, got {key!r}")
        alts = re.split(r"\s+OR\s+", key.strip())
        if len(alts) == 1:
            parts.append(_key_cmp(key, key, value))
            continue
        if isinstance(value, list) and len(value) != len(alts):
            raise FilterError(
                f"filter key '{key}' has {len(alts)} columns but {len(value)} values; "
                f"give one value per column (or one scalar for all)"
            )
        values = value if isinstance(value, list) else [value] * len(alts)
        parts.append(Or(tuple(_key_cmp(key, a, v) for a, v in zip(alts, values, strict=True))))
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def parse_filters(
    spec: FilterSpec, columns: Collection[str] | None = None, index_name: str = "the index"
) -> Filter | None:
    """Parse any accepted filter form; with ``columns``, check every column is one of them."""
    if spec is None:
        return None
    if isinstance(spec, Cmp | And | Or):
        node = spec
    elif isinstance(spec, Mapping):
        node = _parse_dict(spec)
    elif isinstance(spec, list):
        if not spec:
            raise FilterError("empty filter list; pass None for no filter")
        nodes = [parse_filters(s) for s in spec]
        node = And(tuple(n for n in nodes if n is not None))
    elif isinstance(spec, str):
        text = spec.strip()
        if not text:
            return None
        if text.startswith("{") or text.startswith("["):
            try:
                return parse_filters(json.loads(text), columns, index_name)
            except json.JSONDecodeError as exc:
                raise FilterError(f"filters look like JSON but do not parse: {exc}") from None
        node = parse_filter_string(text)
    else:
        raise FilterError(
            f"filters must be a dict, a list of dicts or a filter string, not {type(spec).__name__}"
        )
    if columns is not None:
        unknown = sorted(columns_of(node) - set(columns))
        if unknown:
            raise FilterError(
                f"filter on column(s) {unknown} that are not synced into {index_name}; "
                f"filterable columns: {sorted(columns)}. Add them to columns_to_sync and re-create the index"
            )
    return node


def and_filters(a: FilterSpec, b: FilterSpec) -> FilterSpec:
    """Both filters must hold. Dict forms stay JSON-serialisable (a list of dicts), so the
    result can be sent to a Databricks endpoint; anything else comes back as a parsed tree."""
    if a is None or a == {}:
        return b
    if b is None or b == {}:
        return a
    if isinstance(a, dict | list) and isinstance(b, dict | list):
        flat = [x for f in (a, b) for x in (f if isinstance(f, list) else [f])]
        return flat
    return And((parse_filters(a), parse_filters(b)))


def governed(
    catalog: Any,
    source_table: str,
    principal: Any,
    requested: FilterSpec = None,
    synced_columns: Collection[str] | None = None,
    index_name: str = "the index",
    check_select: bool = True,
) -> FilterSpec:
    """``requested`` AND the row filter ``principal`` carries on ``source_table``.

    The one place every index backend narrows a search made for a principal: it checks SELECT
    on the source table, then ANDs the catalog's row filter in, so a request can only narrow
    what the identity allows. With ``synced_columns``, a row filter on a column the index does
    not hold fails closed (the query is refused rather than run unfiltered). Disjoint dicts
    merge into one dict (the form every workspace endpoint accepts). ``check_select=False``
    leaves the grant check to a remote service that enforces it for its own token.
    """
    if check_select:
        catalog.check(principal, "SELECT", source_table)
    row_filter = catalog.row_filter_for(source_table, principal)
    if row_filter is None:
        return requested
    if synced_columns is not None:
        missing = sorted(columns_of(parse_filters(row_filter)) - set(synced_columns))
        if missing:
            raise FilterError(
                f"the row filter on {source_table} uses column(s) {missing} that {index_name} "
                f"does not sync; re-create the index with them in columns_to_sync"
            )
    if isinstance(requested, Mapping) and not set(requested) & set(row_filter):
        return {**requested, **row_filter}
    return and_filters(requested or None, row_filter)


# --- filter_string (SQL-ish) ------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')
                        |(?P<op><=|>=|!=|<>|=|<|>|\(|\)|,)|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))""",
    re.X,
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "LIKE", "TRUE", "FALSE"}


def _lex(text: str) -> list[tuple[str, Any]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(
                f"cannot parse filter string at {text[pos:]!r}; supported: col = 'v', "
                f"col IN ('a','b'), col NOT IN (...), col != v, <, <=, >, >=, LIKE, "
                f"AND, OR, ()"
            )
        pos = m.end()
        if m["num"] is not None:
            out.append(("val", float(m["num"]) if "." in m["num"] else int(m["num"])))
        elif m["str"] is not None:
            out.append(("val", m["str"][1:-1].replace("''", "'")))
        elif m["op"] is not None:
            out.append(("op", m["op"]))
        elif m["word"].upper() in ("TRUE", "FALSE"):
            out.append(("val", m["word"].upper() == "TRUE"))
        elif m["word"].upper() in _KEYWORDS:
            out.append(("kw", m["word"].upper()))
        else:
            out.append(("col", m["word"]))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.toks, self.i = text, _lex(text), 0

    def peek(self) -> tuple[str, Any] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, value: Any = None) -> Any:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            want = value or kind
            raise FilterError(
                f"filter string {self.text!r}: expected {want} at token {self.i + 1}"
                f" (got {tok[1] if tok else 'end of string'!r})"
            )
        self.i += 1
        return tok[1]

    def expr(self) -> Filter:
        parts = [self.conj()]
        while self.peek() == ("kw", "OR"):
            self.i += 1
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conj(self) -> Filter:
        parts = [self.atom()]
        while self.peek() == ("kw", "AND"):
            self.i += 1
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def atom(self) -> Filter:
        if self.peek() == ("op", "("):
            self.i += 1
            node = self.expr()
            self.take("op", ")")
            return node
        col = self.take("col")
        tok = self.peek()
        if tok == ("kw", "NOT"):
            self.i += 1
            self.take("kw", "IN")
            return Cmp(col, "NOTIN", self.values())
        if tok == ("kw", "IN"):
            self.i += 1
            return Cmp(col, "IN", self.values())
        if tok == ("kw", "LIKE"):
            self.i += 1
            return Cmp(col, "LIKE", self.take("val"))
        op = self.take("op")
        if op not in ("=", "!=", "<>", "<", "<=", ">", ">="):
            raise FilterError(f"filter string {self.text!r}: unknown operator {op!r}")
        return Cmp(col, "!=" if op == "<>" else op, self.take("val"))

    def values(self) -> tuple:
        self.take("op", "(")
        vals = [self.take("val")]
        while self.peek() == ("op", ","):
            self.i += 1
            vals.append(self.take("val"))
        self.take("op", ")")
        return tuple(vals)


def parse_filter_string(text: str) -> Filter:
    """Parse the SQL-ish ``filter_string`` form (``department IN ('eng') AND year >= 2023``)."""
    p = _Parser(text)
    node = p.expr()
    if p.peek() is not None:
        raise FilterError(f"filter string {text!r}: unexpected {p.peek()[1]!r} after a complete condition")
    return node


# --- evaluation -----------------------------------------------------------------------


def _cmp_mask(node: Cmp, table: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if node.column not in table.column_names:
        raise FilterError(f"filter column '{node.column}' is not in the data; columns: {table.column_names}")
    col = table.column(node.column)
    typ = col.type
    if pa.types.is_null(typ):  # every value NULL: nothing compares true
        return pa.array([False] * len(col))
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_struct(typ):
        raise FilterError(
            f"filtering on column '{node.column}' of type {typ} is not supported; filter on scalar columns"
        )

    def cast(v: Any) -> Any:
        try:
            return pa.scalar(v).cast(typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise FilterError(
                f"filter value {v!r} does not fit column '{node.column}' of type {typ}"
            ) from None

    if node.op in ("IN", "NOTIN"):
        values = pa.array([cast(v).as_py() for v in node.value], type=typ)
        m = pc.is_in(col, value_set=values)
        m = pc.invert(m) if node.op == "NOTIN" else m
        return pc.if_else(pc.is_null(col), False, m)
    if node.op == "LIKE":
        if not (pa.types.is_string(typ) or pa.types.is_large_string(typ)):
            raise FilterError(f"LIKE needs a string column; '{node.column}' is {typ}")
        if "%" in node.value or "_" in node.value:
            return pc.match_like(col, node.value)
        # Databricks' standard endpoints match LIKE against whitespace-separated tokens
        pattern = r"(^|\s)" + re.escape(node.value) + r"(\s|$)"
        return pc.match_substring_regex(col, pattern, ignore_case=True)
    fn = {
        "=": pc.equal,
        "!=": pc.not_equal,
        "<": pc.less,
        "<=": pc.less_equal,
        ">": pc.greater,
        ">=": pc.greater_equal,
    }[node.op]
    return fn(col, cast(node.value))


def _mask(node: Filter, table: Any) -> Any:
    import pyarrow.compute as pc

    if isinstance(node, Cmp):
        return pc.fill_null(_cmp_mask(node, table), False)
    masks = [_mask(p, table) for p in node.parts]
    out = masks[0]
    for m in masks[1:]:
        out = pc.and_(out, m) if isinstance(node, And) else pc.or_(out, m)
    return out


def mask(spec: FilterSpec, table: Any) -> Any:
    """A numpy bool array: which rows of the Arrow ``table`` pass the filter."""
    import numpy as np

    node = parse_filters(spec)
    if node is None:
        return np.ones(table.num_rows, dtype=bool)
    if table.num_rows == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(_mask(node, table).to_numpy(zero_copy_only=False), dtype=bool)


def matches(spec: FilterSpec, row: Mapping[str, Any]) -> bool:
    """Does one row (a dict) pass the filter?"""
    import pyarrow as pa

    return bool(mask(spec, pa.Table.from_pylist([dict(row)]))[0])


def canonical(spec: FilterSpec) -> str:
    """A stable text for a filter, usable as a cache key (the whole filter, row filter included)."""
    return repr(parse_filters(spec))
