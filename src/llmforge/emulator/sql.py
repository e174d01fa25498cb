"""SQL Statement Execution (``POST /api/2.0/sql/statements``) for the one statement shape
llmforge's databricks data source sends: ``SELECT cols FROM table [VERSION AS OF n] [LIMIT n]``.

Reads go through ``forge.table(name, user=caller)``, so the caller's grants, row filter and
column masks apply exactly as they do locally. Anything else needs a real SQL warehouse.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from llmforge.emulator.errors import ApiError, bad_request
from llmforge.emulator.routes import Call, Routes

routes = Routes()

_SELECT = re.compile(
    r"^\s*SELECT\s+(?P<cols>\*|[\w`]+(?:\s*,\s*[\w`]+)*)\s+FROM\s+(?P<table>[\w`]+\.[\w`]+\.[\w`]+)"
    r"(?:\s+VERSION\s+AS\s+OF\s+(?P<version>\d+))?(?:\s+LIMIT\s+(?P<limit>\d+))?\s*;?\s*$",
    re.IGNORECASE)
# Arrow type -> SQL type name as the Statement Execution API reports it.
_TYPES = {"int64": "LONG", "int32": "INT", "int16": "SHORT", "int8": "BYTE", "double": "DOUBLE",
          "float": "FLOAT", "bool": "BOOLEAN", "string": "STRING", "large_string": "STRING",
          "date32[day]": "DATE", "binary": "BINARY"}


def _cell(value: Any) -> str | None:
    # JSON_ARRAY results carry every value as a string (or null), as the service does
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@routes.add("POST", "/api/2.0/sql/statements", "/api/2.0/sql/statements/")
def execute_statement(emu: Any, call: Call) -> dict[str, Any]:
    call.required("warehouse_id")
    statement = call.required("statement")
    if call.arg("format", "JSON_ARRAY") != "JSON_ARRAY" or call.arg("disposition", "INLINE") != "INLINE":
        raise ApiError("NOT_IMPLEMENTED", "The emulator returns INLINE JSON_ARRAY results only.")
    m = _SELECT.match(statement)
    if not m:
        raise bad_request("The emulator runs only 'SELECT <columns|*> FROM catalog.schema.table "
                          "[VERSION AS OF n] [LIMIT n]'; other SQL needs a Databricks SQL warehouse.")
    name = m["table"].replace("`", "")
    columns = None if m["cols"] == "*" else [c.strip().strip("`") for c in m["cols"].split(",")]
    version = int(m["version"]) if m["version"] else None
    data = emu.forge.table(name, user=call.principal).read(version=version, columns=columns)
    limits = [int(x) for x in (m["limit"], call.arg("row_limit")) if x is not None]
    if limits:
        data = data.slice(0, min(limits))
    schema = [{"name": f.name, "position": i, "type_name": _TYPES.get(str(f.type), "STRING"),
               "type_text": _TYPES.get(str(f.type), "STRING")} for i, f in enumerate(data.schema)]
    rows = [[_cell(v) for v in row.values()] for row in data.to_pylist()]
    return {
        "statement_id": uuid.uuid4().hex,
        "status": {"state": "SUCCEEDED"},
        "manifest": {"format": "JSON_ARRAY", "schema": {"column_count": len(schema), "columns": schema},
                     "total_row_count": len(rows), "total_chunk_count": 1, "truncated": False},
        "result": {"chunk_index": 0, "row_offset": 0, "row_count": len(rows), "data_array": rows},
    }
