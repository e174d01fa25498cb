"""Unity Catalog tables through databricks-sdk: metadata and grants via the UC REST API,
reads and writes via SQL Statement Execution on a SQL warehouse (option ``warehouse_id``).

Every write (``create``, ``append``, ``overwrite``, ``merge``, ``delete``) is one
parameterised statement (one Delta commit on the workspace); values never travel as SQL
text. Bulk loads belong to Spark (``saveAsTable``) or ``COPY INTO``, where Unity Catalog
records lineage itself.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from llmforge.components import DataSource
from llmforge.errors import ConfigError, DataError, NotFoundError
from llmforge_databricks.workspace import calling, workspace_client

_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# SQL type name -> converter for JSON_ARRAY strings
_CONVERT = {
    "LONG": int,
    "INT": int,
    "SHORT": int,
    "BYTE": int,
    "DOUBLE": float,
    "FLOAT": float,
    "DECIMAL": float,
    "BOOLEAN": lambda v: v == "true",
}


@dataclass(frozen=True)
class DatabricksDataOptions:
    #: SQL warehouse that runs reads (``SELECT``); metadata and grants need none
    warehouse_id: str | None = None
    #: how long a read waits for the statement (Databricks allows 5s-50s)
    wait_timeout: str = "50s"


def _arrow(data: Any) -> Any:
    import pyarrow as pa

    return data if isinstance(data, pa.Table) else pa.Table.from_pylist(list(data))


def _check_name(full_name: str) -> list[str]:
    parts = full_name.split(".") if isinstance(full_name, str) else []
    if len(parts) != 3 or not all(_PART.match(p) for p in parts):
        raise ConfigError(f"'{full_name}' is not a table name like main.knowledge.documents")
    return parts


class DatabricksDataSource(DataSource):
    name = "databricks"
    description = "Unity Catalog tables via databricks-sdk (reads through a SQL warehouse)"
    Options = DatabricksDataOptions

    def table(self, full_name: str, user: str | None = None) -> DatabricksTable:
        _check_name(full_name)
        return DatabricksTable(self, full_name)

    # --- governance in Unity Catalog (see llmforge_databricks.governance) ---------------------
    def _run_all(self, statements: list[str], doing: str) -> None:
        from llmforge_databricks.sql import execute

        for statement in statements:
            execute(self.options.warehouse_id, statement, doing, wait_timeout=self.options.wait_timeout)

    def set_row_filter(self, table: str, spec: dict | None) -> None:
        """A SQL function + ``ALTER TABLE ... SET ROW FILTER`` (``DROP`` for ``None``), and the
        spec as the table property ``llmforge.row_filter``."""
        from llmforge_databricks.governance import row_filter_statements

        _check_name(table)
        self._run_all(row_filter_statements(table, spec), f"set the row filter of {table}")

    def set_column_mask(self, table: str, column: str, spec: dict | None) -> None:
        """A SQL function + ``ALTER TABLE ... ALTER COLUMN ... SET MASK`` (``DROP`` for ``None``),
        and every mask spec as the table property ``llmforge.column_masks``."""
        from llmforge_databricks.governance import mask_statements

        _check_name(table)
        self._run_all(mask_statements(table, column, spec), f"set the mask of {table}.{column}")

    def row_filter(self, table: str) -> dict | None:
        from llmforge_databricks.governance import row_filter_spec, table_info

        return row_filter_spec(table_info(table))

    def grant(self, privilege: str, securable: str, principal: str) -> None:
        from llmforge_databricks.governance import change_grants

        change_grants(securable, principal, add=[privilege])

    def revoke(self, privilege: str, securable: str, principal: str) -> None:
        from llmforge_databricks.governance import change_grants

        change_grants(securable, principal, remove=[privilege])

    def list_tables(self, pattern: str = "*") -> list[str]:
        """``catalog.schema.table`` names the token may see that match the glob ``pattern``."""
        w = workspace_client()
        out = []
        with calling("list Unity Catalog tables"):
            for cat in w.catalogs.list():
                if not fnmatch.fnmatch(cat.name, pattern.split(".")[0]):
                    continue
                for sch in w.schemas.list(catalog_name=cat.name):
                    out += [
                        t.full_name
                        for t in w.tables.list(catalog_name=cat.name, schema_name=sch.name)
                        if fnmatch.fnmatch(t.full_name, pattern)
                    ]
        return sorted(out)


class DatabricksTable:
    """One Unity Catalog table. The workspace token decides what is visible and returned."""

    def __init__(self, source: DatabricksDataSource, full_name: str) -> None:
        self._source, self.full_name = source, full_name

    def __repr__(self) -> str:
        return f"DatabricksTable({self.full_name!r})"

    def overwrite(self, data: Any, **lineage: Any) -> int:
        """Replace every row in one ``INSERT OVERWRITE`` (``TRUNCATE TABLE`` for no rows)."""
        from llmforge_databricks.sql import insert_statement, quote_name

        table = _arrow(data)
        if table.num_rows == 0:
            self._sql(f"TRUNCATE TABLE {quote_name(self.full_name)}", f"empty {self.full_name}")
        else:
            statement, params = insert_statement(self.full_name, table, overwrite=True)
            self._sql(statement, f"overwrite {self.full_name}", params)
        return self.version

    def merge(self, data: Any, key: str | None = None, **lineage: Any) -> int:
        """Upsert by ``key`` (default: the primary key) in one ``MERGE INTO``."""
        from llmforge_databricks.sql import merge_statement

        table = _arrow(data)
        key = key or self.primary_key
        if not key:
            raise DataError(f"{self.full_name} has no primary key; pass merge(data, key='<column>')")
        if table.num_rows == 0:
            return self.version
        statement, params = merge_statement(self.full_name, table, key)
        self._sql(statement, f"merge into {self.full_name}", params)
        return self.version

    def delete(self, predicate: str, **lineage: Any) -> int:
        """``DELETE FROM`` the rows matching a simple predicate (``"dept = 'hr'"``); values
        travel as parameters and anything but a simple expression is refused."""
        from llmforge_databricks.sql import delete_statement

        statement, params = delete_statement(self.full_name, predicate)
        self._sql(statement, f"delete from {self.full_name}", params)
        return self.version

    def _sql(self, statement: str, doing: str, parameters: list | None = None) -> Any:
        from llmforge_databricks.sql import execute

        opts = self._source.options
        return execute(opts.warehouse_id, statement, doing, parameters, wait_timeout=opts.wait_timeout)

    # --- versions and writes ------------------------------------------------------------------
    def history(self, limit: int | None = None) -> list[dict]:
        """``DESCRIBE HISTORY``: newest first, ``{version, timestamp, operation}``."""
        from llmforge_databricks.sql import quote_name

        sql = f"DESCRIBE HISTORY {quote_name(self.full_name)}" + (f" LIMIT {int(limit)}" if limit else "")
        resp = self._sql(sql, f"read the history of {self.full_name}")
        names = [c.name for c in resp.manifest.schema.columns or []]
        rows = [
            dict(zip(names, r, strict=True)) for r in (resp.result.data_array if resp.result else []) or []
        ]
        return [{**r, "version": int(r["version"])} for r in rows]

    @property
    def version(self) -> int:
        return self.history(limit=1)[0]["version"]

    def node(self, version: int | None = None) -> str:
        return f"table:{self.full_name}@{self.version if version is None else version}"

    def create(
        self, data_or_schema: Any, primary_key: str | None = None, comment: str | None = None, **lineage: Any
    ) -> int:
        """``CREATE TABLE`` with the schema's columns (and a primary key constraint), then the
        rows, if any, in one ``INSERT``."""
        import pyarrow as pa

        from llmforge_databricks.sql import create_statement

        schema = data_or_schema if isinstance(data_or_schema, pa.Schema) else data_or_schema.schema
        self._sql(create_statement(self.full_name, schema, primary_key, comment), f"create {self.full_name}")
        if isinstance(data_or_schema, pa.Schema) or data_or_schema.num_rows == 0:
            return 0
        return self.append(data_or_schema)

    def append(self, data: Any, **lineage: Any) -> int:
        """Add the rows in one parameterised ``INSERT`` (one commit); returns the new version."""
        from llmforge_databricks.sql import insert_statement

        table = _arrow(data)
        if table.num_rows == 0:
            return self.version
        statement, params = insert_statement(self.full_name, table)
        self._sql(statement, f"append to {self.full_name}", params)
        return self.version

    def info(self) -> Any:
        with calling(f"get table {self.full_name}"):
            return workspace_client().tables.get(self.full_name)

    @property
    def exists(self) -> bool:
        try:
            self.info()
        except NotFoundError:
            return False
        return True

    @property
    def primary_key(self) -> str | None:
        for c in self.info().table_constraints or []:
            if c.primary_key_constraint is not None:
                return ",".join(c.primary_key_constraint.child_columns)
        return None

    def describe(self) -> dict:
        t = self.info()
        return {
            "full_name": t.full_name,
            "type": "table",
            "owner": t.owner,
            "comment": t.comment,
            "created_at": t.created_at,
            "storage_location": t.storage_location,
            "properties": t.properties or {},
            "columns": [{"name": c.name, "type": c.type_text} for c in t.columns or []],
        }

    # --- grants ----------------------------------------------------------------------------
    def show_grants(self) -> list[dict]:
        """Direct grants on the table: ``[{"principal", "privilege"}]`` (UC privilege names)."""
        with calling(f"get the grants on {self.full_name}"):
            resp = workspace_client().grants.get(securable_type="table", full_name=self.full_name)
        return [
            {"principal": a.principal, "privilege": p.value}
            for a in resp.privilege_assignments or []
            for p in a.privileges or []
        ]

    def grant(self, privilege: str, principal: str) -> None:
        self._source.grant(privilege, self.full_name, principal)

    def revoke(self, privilege: str, principal: str) -> None:
        self._source.revoke(privilege, self.full_name, principal)

    # --- reads -----------------------------------------------------------------------------
    def read(
        self,
        version: int | None = None,
        columns: list[str] | None = None,
        as_: str = "arrow",
        limit: int | None = None,
    ) -> Any:
        """Rows through the SQL warehouse; Unity Catalog applies the token's row filters and masks."""
        import pyarrow as pa

        if as_ not in ("arrow", "pandas"):
            raise ConfigError(f"as_='{as_}' is not supported here; use 'arrow' or 'pandas'")
        for c in columns or []:
            if not _PART.match(c):
                raise ConfigError(f"column name {c!r} is not a plain identifier")
        sql = f"SELECT {', '.join(f'`{c}`' for c in columns) if columns else '*'} FROM {self.full_name}"
        if version is not None:
            sql += f" VERSION AS OF {int(version)}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        resp = self._sql(sql, f"read {self.full_name}")
        cols = resp.manifest.schema.columns or []
        rows = (resp.result.data_array if resp.result else None) or []
        data = {}
        for i, c in enumerate(cols):
            convert = _CONVERT.get(c.type_name.value if c.type_name else "", str)
            data[c.name] = [None if r[i] is None else convert(r[i]) for r in rows]
        table = pa.table(data)
        return table.to_pandas() if as_ == "pandas" else table
