"""SQL Statement Execution on a SQL warehouse: one statement per call, parameterised values.

Every write is one statement, so it is one Delta commit on the workspace: a failed statement
leaves the table as it was. Values travel as named parameters (``:p0``), never as SQL text.
"""

from __future__ import annotations

from typing import Any

from llmforge.errors import ConfigError, DataError
from llmforge_databricks.workspace import calling, workspace_client

#: Arrow type -> SQL type for CREATE TABLE and parameter types
_SQL_TYPES = {
    "int64": "BIGINT",
    "int32": "INT",
    "int16": "SMALLINT",
    "int8": "TINYINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "bool": "BOOLEAN",
    "string": "STRING",
    "large_string": "STRING",
    "date32[day]": "DATE",
    "binary": "BINARY",
}
#: one INSERT carries at most this many values; bigger loads go through Spark or COPY INTO
MAX_PARAMETERS = 20_000


def sql_type(arrow_type: Any) -> str:
    text = str(arrow_type)
    if text.startswith("timestamp"):
        return "TIMESTAMP"
    try:
        return _SQL_TYPES[text]
    except KeyError:
        raise ConfigError(
            f"column type {text} has no SQL counterpart here; cast it to string, a number or a timestamp"
        ) from None


def quote_name(full_name: str) -> str:
    return ".".join(f"`{p}`" for p in full_name.split("."))


def literal(text: str) -> str:
    """A SQL string literal (backslash escapes, as Databricks SQL reads them)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def execute(warehouse_id: str | None, statement: str, doing: str, parameters: list | None = None, **kw: Any):
    """Run one statement and return the response; a failed statement raises :class:`DataError`."""
    if not warehouse_id:
        raise ConfigError(
            "this needs a SQL warehouse: set the data_source option warehouse_id in llmforge.yaml "
            "(SQL Warehouses > Connection details)"
        )
    with calling(doing):
        resp = workspace_client().statement_execution.execute_statement(
            statement=statement, warehouse_id=warehouse_id, parameters=parameters or None, **kw
        )
    state = resp.status.state.value if resp.status and resp.status.state else "UNKNOWN"
    if state != "SUCCEEDED":
        error = resp.status.error.message if resp.status and resp.status.error else ""
        raise DataError(f"could not {doing}: the statement ended in state {state} {error}".strip())
    return resp


def create_statement(full_name: str, schema: Any, primary_key: str | None, comment: str | None) -> str:
    cols = [f"`{f.name}` {sql_type(f.type)}{' NOT NULL' if f.name == primary_key else ''}" for f in schema]
    if primary_key:
        if primary_key not in schema.names:
            raise ConfigError(f"primary_key '{primary_key}' is not a column; columns: {schema.names}")
        cols.append(f"CONSTRAINT `pk_{full_name.split('.')[-1]}` PRIMARY KEY (`{primary_key}`)")
    sql = f"CREATE TABLE {quote_name(full_name)} ({', '.join(cols)})"
    return sql + (f" COMMENT {literal(comment)}" if comment else "")


def _values(table: Any) -> tuple[str, list]:
    """``(:p0_0, ...), ...`` for every row, and the typed parameters."""
    from databricks.sdk.service.sql import StatementParameterListItem

    n = table.num_rows * table.num_columns
    if n > MAX_PARAMETERS:
        raise DataError(
            f"{table.num_rows} rows x {table.num_columns} columns is too much for one INSERT "
            f"({MAX_PARAMETERS} values at most); load large data with Spark (saveAsTable) or COPY INTO"
        )
    types = [sql_type(f.type) for f in table.schema]
    params, rows = [], []
    for r, row in enumerate(table.to_pylist()):
        marks = []
        for c, (value, typ) in enumerate(zip(row.values(), types, strict=True)):
            name = f"p{r}_{c}"
            marks.append(f":{name}")
            text = None if value is None else _text(value)
            params.append(StatementParameterListItem(name=name, value=text, type=typ))
        rows.append(f"({', '.join(marks)})")
    return ", ".join(rows), params


def _columns(table: Any) -> str:
    return ", ".join(f"`{c}`" for c in table.column_names)


def insert_statement(full_name: str, table: Any, overwrite: bool = False) -> tuple[str, list]:
    """``INSERT INTO|OVERWRITE t (cols) VALUES (:p0_0, ...), ...`` and its typed parameters."""
    values, params = _values(table)
    verb = "OVERWRITE" if overwrite else "INTO"
    return f"INSERT {verb} {quote_name(full_name)} ({_columns(table)}) VALUES {values}", params


def merge_statement(full_name: str, table: Any, key: str) -> tuple[str, list]:
    """An upsert by ``key`` from a parameterised ``VALUES`` source, one Delta commit."""
    if key not in table.column_names:
        raise DataError(f"merge key '{key}' is not a column of the data: {table.column_names}")
    values, params = _values(table)
    sql = (
        f"MERGE INTO {quote_name(full_name)} AS target USING (VALUES {values}) AS source({_columns(table)}) "
        f"ON target.`{key}` = source.`{key}` WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
    )
    return sql, params


def delete_statement(full_name: str, predicate: str) -> tuple[str, list]:
    """``DELETE FROM t WHERE <parsed predicate>`` with its values as typed parameters."""
    from databricks.sdk.service.sql import StatementParameterListItem

    from llmforge_databricks.predicate import parse

    where, values = parse(predicate)
    params = [
        StatementParameterListItem(name=f"d{i}", value=_text(v), type=_param_type(v))
        for i, v in enumerate(values)
    ]
    return f"DELETE FROM {quote_name(full_name)} WHERE {where}", params


def _param_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOLEAN"
    if isinstance(value, int):
        return "BIGINT"
    return "DOUBLE" if isinstance(value, float) else "STRING"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
