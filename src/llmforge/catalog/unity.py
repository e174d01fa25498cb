"""The catalog's declarative row filters and column masks as Unity Catalog SQL.

This is how the Databricks backend carries the same governance to a workspace: each spec
becomes a SQL UDF plus ``ALTER TABLE ... SET ROW FILTER`` / ``ALTER COLUMN ... SET MASK``.
Unity Catalog has groups but no departments, so a department is mapped to the account group
``<department_prefix><department>`` (``dept_engineering``); membership is tested with
``is_account_group_member``. The SQL mirrors :mod:`llmforge.catalog.policies` case by case
(a redacted NULL stays NULL; a hash is the hex SHA-256 of the value as a string).
"""

from __future__ import annotations

from llmforge.catalog import names
from llmforge.catalog.policies import validate_mask, validate_row_filter


def _lit(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _qualified(full_name: str) -> str:
    return ".".join(_ident(p) for p in names.split(full_name))


def _members(groups: list[str]) -> list[str]:
    return [f"is_account_group_member({_lit(g)})" for g in groups]


def row_filter_sql(
    table: str, spec: dict, column_type: str = "STRING", department_prefix: str = "dept_"
) -> list[str]:
    """``CREATE FUNCTION`` and ``ALTER TABLE ... SET ROW FILTER`` for a row filter spec."""
    spec = validate_row_filter(spec)
    names.split(table, expect="table")
    col = _ident(spec["column"])
    terms = _members(spec["exempt_groups"])
    if spec["always_visible"]:
        terms.append(f"{col} IN ({', '.join(_lit(v) for v in spec['always_visible'])})")
    if spec["type"] == "department_membership":
        terms.append(f"is_account_group_member(concat({_lit(department_prefix)}, {col}))")
    elif spec["type"] == "group_membership":
        terms.append(f"is_account_group_member({col})")
    else:
        terms.append(f"{col} = current_user()")
    fn = _qualified(f"{table}_row_filter")
    return [
        f"CREATE OR REPLACE FUNCTION {fn}({col} {column_type}) RETURNS BOOLEAN RETURN " + " OR ".join(terms),
        f"ALTER TABLE {_qualified(table)} SET ROW FILTER {fn} ON ({col})",
    ]


def column_mask_sql(table: str, column: str, spec: dict, column_type: str = "STRING") -> list[str]:
    """``CREATE FUNCTION`` and ``ALTER TABLE ... ALTER COLUMN ... SET MASK`` for a mask spec."""
    spec = validate_mask(spec)
    names.split(table, expect="table")
    col = _ident(column)
    if spec["type"] == "null" or (spec["type"] == "redact" and column_type.upper() != "STRING"):
        masked, returns = f"CAST(NULL AS {column_type})", column_type
    elif spec["type"] == "redact":
        masked, returns = (
            f"CASE WHEN {col} IS NULL THEN NULL ELSE {_lit(spec['replacement'])} END",
            column_type,
        )
    else:
        masked, returns = f"sha2(CAST({col} AS STRING), 256)", "STRING"
    exempt = " OR ".join(_members(spec["except_groups"]))
    body = f"CASE WHEN {exempt} THEN {col} ELSE {masked} END" if exempt else masked
    fn = _qualified(f"{table}_{column}_mask")
    return [
        f"CREATE OR REPLACE FUNCTION {fn}({col} {column_type}) RETURNS {returns} RETURN {body}",
        f"ALTER TABLE {_qualified(table)} ALTER COLUMN {col} SET MASK {fn}",
    ]


def drop_row_filter_sql(table: str) -> str:
    return f"ALTER TABLE {_qualified(table)} DROP ROW FILTER"


def drop_mask_sql(table: str, column: str) -> str:
    return f"ALTER TABLE {_qualified(table)} ALTER COLUMN {_ident(column)} DROP MASK"


def properties_sql(table: str, properties: dict[str, str]) -> str:
    """``ALTER TABLE ... SET TBLPROPERTIES`` (how the llmforge spec travels with the table)."""
    pairs = ", ".join(f"{_lit(k)} = {_lit(v)}" for k, v in properties.items())
    return f"ALTER TABLE {_qualified(table)} SET TBLPROPERTIES ({pairs})"


def unset_properties_sql(table: str, keys: list[str]) -> str:
    return (
        f"ALTER TABLE {_qualified(table)} UNSET TBLPROPERTIES IF EXISTS ({', '.join(_lit(k) for k in keys)})"
    )
