"""SQL Statement Execution (``POST /api/2.0/sql/statements``) for the statement shapes
llmforge's databricks data source sends:

- ``SELECT cols FROM t [VERSION AS OF n] [LIMIT n]``
- ``CREATE TABLE t (col TYPE [NOT NULL], ..., [CONSTRAINT c PRIMARY KEY (col)]) [COMMENT '...']``
- ``INSERT INTO|OVERWRITE t (cols) VALUES (:p0_0, ...), ...`` with named, typed parameters
- ``DESCRIBE HISTORY t [LIMIT n]``
- ``MERGE``, ``DELETE``, ``TRUNCATE`` (:mod:`llmforge_emulator.sql_writes`)
- row filters, column masks and table properties (:mod:`llmforge_emulator.sql_governance`)

Each runs through ``forge.table(name, user=caller)``, so the caller's grants, row filter and
column masks apply exactly as they do locally, and each write is one Delta commit. Anything
else needs a real SQL warehouse.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from llmforge_emulator.errors import ApiError, bad_request
from llmforge_emulator.routes import Call, Routes

routes = Routes()

_SELECT = re.compile(
    r"^\s*SELECT\s+(?P<cols>\*|[\w`]+(?:\s*,\s*[\w`]+)*)\s+FROM\s+(?P<table>[\w`]+\.[\w`]+\.[\w`]+)"
    r"(?:\s+VERSION\s+AS\s+OF\s+(?P<version>\d+))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*;?\s*$",
    re.IGNORECASE,
)
NAME = r"(?P<table>`?\w+`?\.`?\w+`?\.`?\w+`?)"
_CREATE = re.compile(
    rf"^\s*CREATE\s+TABLE\s+{NAME}\s*\((?P<body>.*)\)\s*(?:COMMENT\s+'(?P<comment>(?:[^'\\]|\\.)*)')?\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_COLUMN = re.compile(r"^`?(?P<name>\w+)`?\s+(?P<type>\w+)(?P<notnull>\s+NOT\s+NULL)?$", re.IGNORECASE)
_PK = re.compile(r"^CONSTRAINT\s+`?\w+`?\s+PRIMARY\s+KEY\s*\(\s*`?(?P<col>\w+)`?\s*\)$", re.IGNORECASE)
_INSERT = re.compile(
    rf"^\s*INSERT\s+(?P<verb>INTO|OVERWRITE)\s+(?:TABLE\s+)?{NAME}\s*\((?P<cols>[^)]*)\)\s*VALUES\s*(?P<rows>.*?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ROW = re.compile(r"\(\s*(:\w+(?:\s*,\s*:\w+)*)\s*\)")
_HISTORY = re.compile(rf"^\s*DESCRIBE\s+HISTORY\s+{NAME}(?:\s+LIMIT\s+(?P<limit>\d+))?\s*;?\s*$", re.I)
# SQL type name -> Arrow type name
_ARROW = {
    "BIGINT": "int64",
    "LONG": "int64",
    "INT": "int32",
    "INTEGER": "int32",
    "SMALLINT": "int16",
    "TINYINT": "int8",
    "DOUBLE": "float64",
    "FLOAT": "float32",
    "BOOLEAN": "bool",
    "STRING": "string",
    "DATE": "date32",
    "TIMESTAMP": "timestamp[us, tz=UTC]",
    "BINARY": "binary",
}
# Arrow type -> SQL type name as the Statement Execution API reports it.
_TYPES = {
    "int64": "LONG",
    "int32": "INT",
    "int16": "SHORT",
    "int8": "BYTE",
    "double": "DOUBLE",
    "float": "FLOAT",
    "bool": "BOOLEAN",
    "string": "STRING",
    "large_string": "STRING",
    "date32[day]": "DATE",
    "binary": "BINARY",
}


def _cell(value: Any) -> str | None:
    # JSON_ARRAY results carry every value as a string (or null), as the service does
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def result(data: Any) -> dict[str, Any]:
    schema = [
        {
            "name": f.name,
            "position": i,
            "type_name": _TYPES.get(str(f.type), "STRING"),
            "type_text": _TYPES.get(str(f.type), "STRING"),
        }
        for i, f in enumerate(data.schema)
    ]
    rows = [[_cell(v) for v in row.values()] for row in data.to_pylist()]
    return {
        "statement_id": uuid.uuid4().hex,
        "status": {"state": "SUCCEEDED"},
        "manifest": {
            "format": "JSON_ARRAY",
            "schema": {"column_count": len(schema), "columns": schema},
            "total_row_count": len(rows),
            "total_chunk_count": 1,
            "truncated": False,
        },
        "result": {"chunk_index": 0, "row_offset": 0, "row_count": len(rows), "data_array": rows},
    }


def unquote(raw: str) -> str:
    return raw.replace("`", "")


def _arrow_type(sql: str) -> Any:
    import pyarrow as pa

    try:
        text = _ARROW[sql.upper()]
    except KeyError:
        raise bad_request(f'[UNSUPPORTED_DATATYPE] Unsupported data type "{sql}".') from None
    if text.startswith("timestamp"):
        return pa.timestamp("us", tz="UTC")
    return pa.type_for_alias(text)


def _create(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    import pyarrow as pa

    fields, primary_key = [], None
    for part in (p.strip() for p in m["body"].split(",")):
        pk = _PK.match(part)
        if pk:
            primary_key = pk["col"]
            continue
        col = _COLUMN.match(part)
        if not col:
            raise bad_request(f"[PARSE_SYNTAX_ERROR] Syntax error at or near '{part}'.")
        fields.append(pa.field(col["name"], _arrow_type(col["type"]), nullable=not col["notnull"]))
    comment = m["comment"].encode().decode("unicode_escape") if m["comment"] else None
    emu.forge.table(unquote(m["table"]), user=call.principal).create(
        pa.schema(fields), primary_key=primary_key, comment=comment
    )
    return result(pa.table({}))


def values_table(emu: Any, call: Call, full_name: str, cols_sql: str, rows_sql: str) -> tuple[Any, Any]:
    """The forge table acting for the caller, and the rows of ``VALUES (:p0_0, ...), ...`` as
    Arrow with the table's column types (every value a bound parameter)."""
    import pyarrow as pa

    params = {p["name"]: p for p in call.arg("parameters") or []}
    cols = [unquote(c.strip()) for c in cols_sql.split(",")]
    rows = [[x.strip()[1:] for x in g.split(",")] for g in _ROW.findall(rows_sql)]
    if not rows or _ROW.sub("", rows_sql).replace(",", "").strip():
        raise bad_request("[PARSE_SYNTAX_ERROR] VALUES takes rows of named parameters such as (:p0, :p1).")
    table = emu.forge.table(full_name, user=call.principal)
    schema = table.read(columns=cols).schema if table.exists else None
    if schema is None:
        raise ApiError("TABLE_OR_VIEW_NOT_FOUND", f"Table {full_name} does not exist.", 404)
    data: dict[str, list] = {c: [] for c in cols}
    for row in rows:
        if len(row) != len(cols):
            raise bad_request(f"[INSERT_COLUMN_ARITY_MISMATCH] {len(cols)} columns, {len(row)} values.")
        for col, name in zip(cols, row, strict=True):
            if name not in params:
                raise bad_request(f"[UNBOUND_SQL_PARAMETER] Found the unbound parameter: {name}.")
            data[col].append(params[name].get("value"))
    arrays = {}
    for col in cols:
        typ = schema.field(col).type
        values = pa.array(data[col], pa.string())
        arrays[col] = values.cast(pa.bool_()) if pa.types.is_boolean(typ) else values.cast(typ)
    return table, pa.table(arrays)


def affected(n: int, **extra: int) -> dict[str, Any]:
    import pyarrow as pa

    return result(pa.table({"num_affected_rows": [n], **{k: [v] for k, v in extra.items()}}))


def _insert(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    table, data = values_table(emu, call, unquote(m["table"]), m["cols"], m["rows"])
    if m["verb"].upper() == "OVERWRITE":
        table.overwrite(data, job="sql.insert_overwrite")
    else:
        table.append(data, job="sql.insert")
    return affected(data.num_rows, num_inserted_rows=data.num_rows)


def _history(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    import pyarrow as pa

    table = emu.forge.table(unquote(m["table"]), user=call.principal)
    if not table.exists:
        raise ApiError("TABLE_OR_VIEW_NOT_FOUND", f"Table {unquote(m['table'])} does not exist.", 404)
    rows = table.history(int(m["limit"]) if m["limit"] else None)
    return result(
        pa.table(
            {
                "version": [int(h["version"]) for h in rows],
                "timestamp": [str(h.get("timestamp")) for h in rows],
                "operation": [str(h.get("operation", "")) for h in rows],
            }
        )
    )


def _select(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    name = unquote(m["table"])
    columns = None if m["cols"] == "*" else [c.strip().strip("`") for c in m["cols"].split(",")]
    version = int(m["version"]) if m["version"] else None
    data = emu.forge.table(name, user=call.principal).read(version=version, columns=columns)
    limits = [int(x) for x in (m["limit"], call.arg("row_limit")) if x is not None]
    if limits:
        data = data.slice(0, min(limits))
    return result(data)


def _statements() -> tuple[tuple[re.Pattern, Any], ...]:
    from llmforge_emulator import sql_governance, sql_writes

    return (
        (_SELECT, _select),
        (_CREATE, _create),
        (_INSERT, _insert),
        (_HISTORY, _history),
        *sql_writes.STATEMENTS,
        *sql_governance.STATEMENTS,
    )


@routes.add("POST", "/api/2.0/sql/statements", "/api/2.0/sql/statements/")
def execute_statement(emu: Any, call: Call) -> dict[str, Any]:
    call.required("warehouse_id")
    statement = call.required("statement")
    if call.arg("format", "JSON_ARRAY") != "JSON_ARRAY" or call.arg("disposition", "INLINE") != "INLINE":
        raise ApiError("NOT_IMPLEMENTED", "The emulator returns INLINE JSON_ARRAY results only.")
    for pattern, run in _statements():
        m = pattern.match(statement)
        if m:
            return run(emu, call, m)
    raise bad_request(
        "The emulator runs only SELECT <columns|*> FROM t [VERSION AS OF n] [LIMIT n], CREATE TABLE, "
        "INSERT INTO|OVERWRITE t (cols) VALUES (:params), MERGE INTO t USING (VALUES ...), "
        "DELETE FROM t WHERE <simple predicate>, TRUNCATE TABLE, DESCRIBE HISTORY t, CREATE FUNCTION "
        "(row filters and masks), ALTER TABLE ... SET ROW FILTER|MASK|TBLPROPERTIES; other SQL needs "
        "a Databricks SQL warehouse."
    )
