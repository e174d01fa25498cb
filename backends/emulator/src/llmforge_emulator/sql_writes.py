"""The write statements beyond ``INSERT`` that llmforge's databricks data source sends:

- ``MERGE INTO t AS target USING (VALUES (:p0_0, ...), ...) AS source(cols)
  ON target.k = source.k WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *``
- ``DELETE FROM t WHERE <predicate>``: comparisons, ``IN``, ``IS [NOT] NULL``, ``AND``/``OR``/
  ``NOT`` and parentheses over columns and bound parameters (or plain literals)
- ``TRUNCATE TABLE t``

Each is one commit through the forge table acting for the caller, so MODIFY and the caller's
row filter apply as locally (a filtered writer cannot merge or truncate rows it cannot see).
"""

from __future__ import annotations

import re
from typing import Any

from llmforge_emulator.errors import ApiError, bad_request
from llmforge_emulator.routes import Call
from llmforge_emulator.sql import NAME, affected, unquote, values_table

_MERGE = re.compile(
    rf"^\s*MERGE\s+INTO\s+{NAME}\s+AS\s+target\s+USING\s*\(\s*VALUES\s+(?P<rows>.*?)\)\s*AS\s+source\s*"
    r"\((?P<cols>[^)]*)\)\s+ON\s+target\.`?(?P<k1>\w+)`?\s*=\s*source\.`?(?P<k2>\w+)`?\s+"
    r"WHEN\s+MATCHED\s+THEN\s+UPDATE\s+SET\s+\*\s+WHEN\s+NOT\s+MATCHED\s+THEN\s+INSERT\s+\*\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_DELETE = re.compile(rf"^\s*DELETE\s+FROM\s+{NAME}\s+WHERE\s+(?P<pred>.+?)\s*;?\s*$", re.I | re.DOTALL)
_TRUNCATE = re.compile(rf"^\s*TRUNCATE\s+TABLE\s+{NAME}\s*;?\s*$", re.IGNORECASE)
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.|'')*')|(?P<num>-?\d+(?:\.\d+)?(?![\w.]))|(?P<param>:\w+)"
    r"|(?P<op><=|>=|<>|!=|=|<|>)|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<ident>`[^`]+`|[A-Za-z_]\w*))"
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE"}
_NUMERIC = {"BIGINT", "INT", "INTEGER", "SMALLINT", "TINYINT", "LONG", "DOUBLE", "FLOAT", "DECIMAL"}


def _existing(emu: Any, call: Call, raw: str) -> Any:
    table = emu.forge.table(unquote(raw), user=call.principal)
    if not table.exists:
        raise ApiError("TABLE_OR_VIEW_NOT_FOUND", f"Table {unquote(raw)} does not exist.", 404)
    return table


def _merge(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    if m["k1"] != m["k2"]:
        raise ApiError("NOT_IMPLEMENTED", "The emulator merges on one key column equal on both sides.")
    table, data = values_table(emu, call, unquote(m["table"]), m["cols"], m["rows"])
    table.merge(data, key=m["k1"], job="sql.merge")
    return affected(data.num_rows)


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _literal_of(param: dict[str, Any]) -> str:
    value, typ = param.get("value"), str(param.get("type") or "STRING").upper()
    if value is None:
        return "NULL"
    if typ == "BOOLEAN":
        if str(value).lower() not in ("true", "false"):
            raise bad_request(f"[INVALID_PARAMETER] {value!r} is not a BOOLEAN")
        return str(value).lower()
    if typ in _NUMERIC:
        try:
            float(value)
        except ValueError:
            raise bad_request(f"[CAST_INVALID_INPUT] {value!r} cannot be cast to {typ}") from None
        return str(value)
    return _string(str(value))


def predicate(text: str, params: dict[str, dict[str, Any]]) -> str:
    """The predicate with parameters bound as literals, for the Delta engine; anything but
    columns, literals, parameters, comparisons and AND/OR/NOT/IN/IS [NOT] NULL is refused."""
    out, pos, prev = [], 0, None
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise bad_request(f"[PARSE_SYNTAX_ERROR] Syntax error at or near '{text[pos : pos + 20]}'.")
        kind, tok = m.lastgroup, m[m.lastgroup]
        pos = m.end()
        if kind == "ident" and not tok.startswith("`") and tok.upper() in _KEYWORDS:
            kind = "kw"
            out.append(tok.upper())
        elif kind == "ident":
            out.append('"' + tok.strip("`").replace('"', '""') + '"')
        elif kind == "lp" and prev == "ident":
            raise ApiError("NOT_IMPLEMENTED", "The emulator's DELETE takes no function calls.")
        elif kind == "param":
            if tok[1:] not in params:
                raise bad_request(f"[UNBOUND_SQL_PARAMETER] Found the unbound parameter: {tok[1:]}.")
            out.append(_literal_of(params[tok[1:]]))
        elif kind == "str":
            out.append(_string(re.sub(r"\\(.)|''", lambda x: x[1] if x[1] is not None else "'", tok[1:-1])))
        else:
            out.append("<>" if tok == "!=" else tok)
        prev = kind
    return " ".join(out)


def _delete(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    table = _existing(emu, call, m["table"])
    params = {p["name"]: p for p in call.arg("parameters") or []}
    where = predicate(m["pred"], params)
    before = table.read().num_rows
    table.delete(where, job="sql.delete")
    return affected(before - table.read().num_rows)


def _truncate(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    table = _existing(emu, call, m["table"])
    data = table.read()
    table.overwrite(data.slice(0, 0), job="sql.truncate")
    return affected(data.num_rows)


STATEMENTS = ((_MERGE, _merge), (_DELETE, _delete), (_TRUNCATE, _truncate))
