"""Unity Catalog tables through databricks-sdk: metadata and grants via the UC REST API,
reads via SQL Statement Execution on a SQL warehouse (option ``warehouse_id``).

Writes are not offered here: on Databricks, tables are written by Spark jobs or SQL, where
Unity Catalog records lineage itself.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from typing import Any

from llmforge.components import DataSource
from llmforge.errors import ConfigError, DataError, LLMForgeError, NotFoundError
from llmforge_databricks.workspace import calling, workspace_client

_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WRITES = ("create", "append", "overwrite", "merge", "delete")
# SQL type name -> converter for JSON_ARRAY strings
_CONVERT = {"LONG": int, "INT": int, "SHORT": int, "BYTE": int, "DOUBLE": float, "FLOAT": float,
            "DECIMAL": float, "BOOLEAN": lambda v: v == "true"}


@dataclass(frozen=True)
class DatabricksDataOptions:
    #: SQL warehouse that runs reads (``SELECT``); metadata and grants need none
    warehouse_id: str | None = None
    #: how long a read waits for the statement (Databricks allows 5s-50s)
    wait_timeout: str = "50s"


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

    def list_tables(self, pattern: str = "*") -> list[str]:
        """``catalog.schema.table`` names the token may see that match the glob ``pattern``."""
        w = workspace_client()
        out = []
        with calling("list Unity Catalog tables"):
            for cat in w.catalogs.list():
                if not fnmatch.fnmatch(cat.name, pattern.split(".")[0]):
                    continue
                for sch in w.schemas.list(catalog_name=cat.name):
                    out += [t.full_name for t in w.tables.list(catalog_name=cat.name, schema_name=sch.name)
                            if fnmatch.fnmatch(t.full_name, pattern)]
        return sorted(out)


class DatabricksTable:
    """One Unity Catalog table. The workspace token decides what is visible and returned."""

    def __init__(self, source: DatabricksDataSource, full_name: str) -> None:
        self._source, self.full_name = source, full_name

    def __repr__(self) -> str:
        return f"DatabricksTable({self.full_name!r})"

    def __getattr__(self, name: str) -> Any:
        if name in _WRITES:
            raise LLMForgeError(f"{name}() is not available on the databricks data source: write "
                                f"{self.full_name} with Spark or SQL on the workspace (Unity Catalog "
                                f"records the lineage), or use the local backend")
        raise AttributeError(name)

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
        return {"full_name": t.full_name, "type": "table", "owner": t.owner, "comment": t.comment,
                "created_at": t.created_at, "storage_location": t.storage_location,
                "properties": t.properties or {},
                "columns": [{"name": c.name, "type": c.type_text} for c in t.columns or []]}

    # --- grants ----------------------------------------------------------------------------
    def show_grants(self) -> list[dict]:
        """Direct grants on the table: ``[{"principal", "privilege"}]`` (UC privilege names)."""
        with calling(f"get the grants on {self.full_name}"):
            resp = workspace_client().grants.get(securable_type="table", full_name=self.full_name)
        return [{"principal": a.principal, "privilege": p.value}
                for a in resp.privilege_assignments or [] for p in a.privileges or []]

    def _change(self, principal: str, add: list[str] | None = None, remove: list[str] | None = None) -> None:
        from databricks.sdk.service.catalog import PermissionsChange, Privilege

        try:
            change = PermissionsChange(principal=principal, add=[Privilege(p) for p in add or []],
                                       remove=[Privilege(p) for p in remove or []])
        except ValueError as exc:
            raise ConfigError(f"{exc}; use a Unity Catalog privilege such as SELECT or MODIFY") from None
        with calling(f"change the grants on {self.full_name}"):
            workspace_client().grants.update(securable_type="table", full_name=self.full_name,
                                             changes=[change])

    def grant(self, privilege: str, principal: str) -> None:
        self._change(principal, add=[privilege.upper().replace(" ", "_")])

    def revoke(self, privilege: str, principal: str) -> None:
        self._change(principal, remove=[privilege.upper().replace(" ", "_")])

    # --- reads -----------------------------------------------------------------------------
    def read(self, version: int | None = None, columns: list[str] | None = None, as_: str = "arrow",
             limit: int | None = None) -> Any:
        """Rows through the SQL warehouse; Unity Catalog applies the token's row filters and masks."""
        import pyarrow as pa

        opts = self._source.options
        if not opts.warehouse_id:
            raise ConfigError("reading a Unity Catalog table needs a SQL warehouse: set the data_source "
                              "option warehouse_id in llmforge.yaml (SQL Warehouses > Connection details)")
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
        with calling(f"read {self.full_name}"):
            resp = workspace_client().statement_execution.execute_statement(
                statement=sql, warehouse_id=opts.warehouse_id, wait_timeout=opts.wait_timeout)
        state = resp.status.state.value if resp.status and resp.status.state else "UNKNOWN"
        if state != "SUCCEEDED":
            error = resp.status.error.message if resp.status and resp.status.error else ""
            raise DataError(f"reading {self.full_name} ended in state {state} {error}".strip())
        cols = resp.manifest.schema.columns or []
        rows = (resp.result.data_array if resp.result else None) or []
        data = {}
        for i, c in enumerate(cols):
            convert = _CONVERT.get(c.type_name.value if c.type_name else "", str)
            data[c.name] = [None if r[i] is None else convert(r[i]) for r in rows]
        table = pa.table(data)
        return table.to_pandas() if as_ == "pandas" else table
