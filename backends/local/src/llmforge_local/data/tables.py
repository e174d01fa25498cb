"""A governed Delta table handle: every call checks the catalog, every read applies policies.

Data lives under ``<home>/tables/<catalog>/<schema>/<table>`` as a Delta table written with
``deltalake``. Each write is one Delta commit (the atomic put of one ``_delta_log`` entry), so a
writer that dies mid-write leaves the table at its previous version; its half-written data
files are unreferenced and invisible. Change Data Feed is enabled on create, so
:meth:`Table.changes` can feed incremental consumers (vector index sync).

Lineage edges are recorded in the catalog after the commit they describe; a process killed
between the two loses the edge, never data consistency.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmforge.catalog import names, policies
from llmforge.catalog.lineage import table_node
from llmforge.errors import AlreadyExistsError, DataError, NotFoundError, PermissionDeniedError
from llmforge_local.data import arrowio
from llmforge_local.data.predicates import bounded

if TYPE_CHECKING:
    from llmforge.catalog import Catalog

CDF = {"delta.enableChangeDataFeed": "true"}


class Table:
    """``catalog.schema.table`` acting for one principal."""

    def __init__(self, catalog: Catalog, root: Path, full_name: str, user: str | None) -> None:
        self.parts = names.split(full_name, expect="table")
        self.full_name = full_name
        self.root = root
        self.user = user or getpass.getuser()
        self.catalog = catalog.as_user(self.user)  # catalog changes made through the table act as its user
        self.principal = catalog.principal(self.user)

    def __repr__(self) -> str:
        return f"Table({self.full_name!r}, user={self.user!r})"

    # -- metadata -----------------------------------------------------------------------
    @property
    def path(self) -> Path:
        if self.catalog.exists(self.full_name):
            stored = self.catalog.describe(self.full_name)["path"]
            if stored:
                return Path(stored)
        return self.root.joinpath(*self.parts)

    @property
    def exists(self) -> bool:
        from deltalake import DeltaTable

        return self.catalog.exists(self.full_name) and DeltaTable.is_deltatable(str(self.path))

    def _delta(self, version: int | None = None):
        from deltalake import DeltaTable

        if not self.exists:
            raise NotFoundError(
                f"table {self.full_name} does not exist; create it with "
                f"forge.table('{self.full_name}').create(data, primary_key=...)"
            )
        try:
            return DeltaTable(str(self.path), version=version)
        except Exception as exc:  # delta-rs raises its own types for a version past the log
            if version is not None:
                raise NotFoundError(
                    f"table {self.full_name} has no version {version} ({exc}); see "
                    f"history() for the versions it has"
                ) from None
            raise

    @property
    def version(self) -> int:
        self.catalog.check(self.principal, "SELECT", self.full_name)
        return self._delta().version()

    @property
    def primary_key(self) -> str | None:
        return (
            self.catalog.describe(self.full_name)["primary_key"]
            if self.catalog.exists(self.full_name)
            else None
        )

    @property
    def schema(self):
        self.catalog.check(self.principal, "SELECT", self.full_name)
        return self._delta().to_pyarrow_dataset().schema

    def describe(self) -> dict:
        """``DESCRIBE TABLE EXTENDED``: schema, owner, key, policies, version, size."""
        self.catalog.check(self.principal, "SELECT", self.full_name)
        dt = self._delta()
        meta = self.catalog.describe(self.full_name)
        files = dt.get_add_actions(flatten=True)
        import pyarrow as pa

        files = pa.table(files)
        return {
            **meta,
            "version": dt.version(),
            "columns": [{"name": f.name, "type": str(f.type)} for f in dt.to_pyarrow_dataset().schema],
            "num_files": files.num_rows,
            "num_rows": sum(files.column("num_records").to_pylist()) if files.num_rows else 0,
            "table_properties": dict(dt.metadata().configuration),
            "row_filter": self.catalog.row_filter(self.full_name),
            "column_masks": self.catalog.column_masks(self.full_name),
        }

    def history(self, limit: int | None = None) -> list[dict]:
        """Commits newest first: version, timestamp, operation, user, job, run_id, metrics."""
        self.catalog.check(self.principal, "SELECT", self.full_name)
        out = []
        for h in self._delta().history(limit):
            ts = h.get("timestamp")
            out.append(
                {
                    "version": h["version"],
                    "timestamp": datetime.fromtimestamp(ts / 1000, UTC).isoformat() if ts else None,
                    "operation": h.get("operation"),
                    "user": h.get("llmforge.user"),
                    "job": h.get("llmforge.job"),
                    "run_id": h.get("llmforge.run_id"),
                    "parameters": h.get("operationParameters", {}),
                    "metrics": h.get("operationMetrics", {}),
                }
            )
        return out

    # -- writes -------------------------------------------------------------------------
    def _commit(self, job: str, run_id: str | None, retries: int | None = None):
        from deltalake import CommitProperties

        meta = {"llmforge.user": self.user, "llmforge.job": job}
        if run_id:
            meta["llmforge.run_id"] = run_id
        return CommitProperties(custom_metadata=meta, max_commit_retries=retries)

    def _ensure_parents(self) -> None:
        """Create a missing catalog/schema owned by the caller (a first table in a new place)."""
        cat, sch = self.parts[0], ".".join(self.parts[:2])
        if not self.catalog.exists(cat):
            self.catalog.create_catalog(cat, owner=self.user, if_not_exists=True)
        if not self.catalog.exists(sch):
            self.catalog.check(self.principal, "MODIFY", cat)
            self.catalog.create_schema(sch, owner=self.user, if_not_exists=True)
        self.catalog.check(self.principal, "MODIFY", sch)

    def create(
        self,
        data_or_schema: Any,
        primary_key: str | None = None,
        comment: str | None = None,
        sources: list[str] | None = None,
        partition_by: list[str] | None = None,
        job: str = "create",
        run_id: str | None = None,
        row_keys: dict | None = None,
    ) -> int:
        """Create the table (version 0) from data or a ``pa.Schema``; the caller becomes its owner."""
        import pyarrow as pa
        from deltalake import DeltaTable, write_deltalake

        self._ensure_parents()
        data = (
            data_or_schema.empty_table()
            if isinstance(data_or_schema, pa.Schema)
            else arrowio.to_arrow(data_or_schema)
        )
        if primary_key is not None:
            arrowio.check_key(data, [primary_key], self.full_name)
        if self.exists:
            raise AlreadyExistsError(
                f"table {self.full_name} already exists (version {self._delta().version()});"
                " use append/overwrite/merge, or pick another name"
            )
        path = self.root.joinpath(*self.parts)
        reclaimed = self.catalog.exists(self.full_name)
        if reclaimed:
            # registered by a create that died before its first commit (or one still writing):
            # only an owner may take it over, keeping its grants and policies
            self.catalog.check(self.principal, "OWNER", self.full_name)
            self.catalog.alter_table(self.full_name, primary_key=primary_key, comment=comment, path=str(path))
        else:
            self.catalog.register_table(
                self.full_name, owner=self.user, primary_key=primary_key, path=str(path), comment=comment
            )
        try:
            path.mkdir(parents=True, exist_ok=True)
            # no commit retries: delta-rs would otherwise rebase a create that lost the race
            # for version 0 onto the winner's table as version 1 (two creates, one table)
            write_deltalake(
                str(path),
                data,
                mode="error",
                configuration=CDF,
                partition_by=partition_by,
                name=self.full_name,
                description=comment,
                commit_properties=self._commit(job, run_id, retries=0),
            )
        except BaseException as exc:
            if not DeltaTable.is_deltatable(str(path)):
                if not reclaimed:
                    self.catalog.drop(self.full_name)
                raise
            if isinstance(exc, Exception):  # a concurrent create of this table committed first
                raise AlreadyExistsError(
                    f"table {self.full_name} was created concurrently by another "
                    "writer; use append/overwrite/merge"
                ) from None
            raise
        return self._after_write(0, sources, job, run_id, row_keys)

    def drop(self) -> None:
        """``DROP TABLE``: forget it in the catalog (grants and policies too), then delete its files.

        Lineage edges stay: what was derived from the table keeps its history."""
        import shutil

        self.catalog.check(self.principal, "OWNER", self.full_name)
        path = self.path
        self.catalog.drop(self.full_name)
        if path.is_relative_to(self.root):  # never delete outside the project's table folder
            shutil.rmtree(path, ignore_errors=True)

    def _after_write(self, version: int, sources, job, run_id, row_keys) -> int:
        if sources:
            self.catalog.record_lineage(
                list(sources), table_node(self.full_name, version), job, run_id, row_keys
            )
        return version

    def _writable(self, data: Any, op: str):
        self.catalog.check(self.principal, "MODIFY", self.full_name)
        dt = self._delta()
        schema = dt.to_pyarrow_dataset().schema
        table = arrowio.to_arrow(data)
        return dt, table if op == "overwrite" else arrowio.conform(table, schema, self.full_name)

    def _write_filter(self) -> dict | None:
        """The row filter bounding the caller's writes. The owner can drop the filter anyway, so
        binding them would only get in the way; everyone else writes only what they can see."""
        if self.catalog.has_privilege(self.principal, "OWNER", self.full_name):
            return None
        return self.catalog.row_filter_for(self.full_name, self.principal)

    def _refuse_if_filtered(self, op: str) -> None:
        """Overwrite/merge could change rows the caller's row filter hides: refuse them."""
        if self._write_filter() is not None:
            raise PermissionDeniedError(
                f"{op} on {self.full_name} would touch rows hidden from '{self.user}' by the table's row "
                f"filter; run it as the table's owner or a principal the filter exempts (a member of "
                f"{self.catalog.row_filter(self.full_name)['exempt_groups']}), or use append()/delete()"
            )

    def append(
        self,
        data: Any,
        sources: list[str] | None = None,
        job: str = "append",
        run_id: str | None = None,
        row_keys: dict | None = None,
    ) -> int:
        """Add rows in one commit; returns the new version. Keys must stay unique."""
        from deltalake import write_deltalake

        dt, table = self._writable(data, "append")
        key = self.primary_key
        if key:
            arrowio.check_key(table, [key], self.full_name)
            self._check_new_keys(dt, table, key)
        if table.num_rows == 0:
            return dt.version()
        write_deltalake(dt, table, mode="append", commit_properties=self._commit(job, run_id))
        return self._after_write(dt.version(), sources, job, run_id, row_keys)

    def _check_new_keys(self, dt, table, key: str) -> None:
        import pyarrow.compute as pc

        new = table.column(key).combine_chunks()
        for batch in dt.to_pyarrow_dataset().to_batches(columns=[key]):  # see _batches: no pushdown
            taken = batch.column(0).filter(pc.is_in(batch.column(0), value_set=new))
            if len(taken):
                raise DataError(
                    f"the data reuses existing {key} values of {self.full_name} (e.g. "
                    f"{taken[0].as_py()!r}); use merge() to upsert"
                )

    def overwrite(
        self,
        data: Any,
        sources: list[str] | None = None,
        job: str = "overwrite",
        run_id: str | None = None,
        row_keys: dict | None = None,
    ) -> int:
        """Replace all rows (and the schema, if it changed) in one commit."""
        from deltalake import write_deltalake

        self._refuse_if_filtered("overwrite")
        dt, table = self._writable(data, "overwrite")
        if self.primary_key:
            arrowio.check_key(table, [self.primary_key], self.full_name)
        write_deltalake(
            dt, table, mode="overwrite", schema_mode="overwrite", commit_properties=self._commit(job, run_id)
        )
        return self._after_write(dt.version(), sources, job, run_id, row_keys)

    def merge(
        self,
        data: Any,
        key: str | None = None,
        sources: list[str] | None = None,
        job: str = "merge",
        run_id: str | None = None,
        row_keys: dict | None = None,
    ) -> int:
        """Upsert by ``key`` (default: the primary key): matching rows updated, new rows inserted."""
        self._refuse_if_filtered("merge")
        key = key or self.primary_key
        if not key:
            raise DataError(f"{self.full_name} has no primary key; pass merge(data, key='<column>')")
        dt, table = self._writable(data, "merge")
        if key not in table.column_names:
            raise DataError(f"merge key '{key}' is not a column of {self.full_name}: {table.column_names}")
        arrowio.check_key(table, [key], self.full_name)
        if table.num_rows == 0:
            return dt.version()
        (
            dt.merge(
                table,
                predicate=f"t.`{key}` = s.`{key}`",
                source_alias="s",
                target_alias="t",
                commit_properties=self._commit(job, run_id),
            )
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute()
        )
        return self._after_write(dt.version(), sources, job, run_id, row_keys)

    def delete(self, predicate: str, job: str = "delete", run_id: str | None = None) -> int:
        """Delete rows matching a SQL predicate (``"department = 'hr'"``) — only rows the caller sees."""
        if not isinstance(predicate, str) or not predicate.strip():
            raise DataError(
                "delete() needs a SQL predicate such as \"document_id = 'd-1'\"; to empty the "
                "table use overwrite() with an empty table"
            )
        self.catalog.check(self.principal, "MODIFY", self.full_name)
        predicate = bounded(predicate, self._write_filter())
        dt = self._delta()
        try:
            dt.delete(predicate, commit_properties=self._commit(job, run_id))
        except Exception as exc:
            if "Generic" in type(exc).__name__ or "Delta" in type(exc).__name__:
                raise DataError(f"delete predicate {predicate!r} on {self.full_name} failed: {exc}") from None
            raise
        return dt.version()

    # -- reads --------------------------------------------------------------------------
    def _policies(self, dataset_schema) -> tuple[Any, dict]:
        """The caller's row filter expression and masks, checked against the table's columns."""
        self.catalog.check(self.principal, "SELECT", self.full_name)
        resolved = self.catalog.row_filter_for(self.full_name, self.principal)
        masks = self.catalog.masks_for(self.full_name, self.principal)
        for column in resolved or {}:
            if column not in dataset_schema.names:
                # fail closed: a filter on a missing column must not silently expose rows (a mask on
                # a missing column has nothing to hide)
                raise DataError(
                    f"the row filter on {self.full_name} names column '{column}', which the "
                    f"table lacks; its owner must fix it with forge.catalog.set_row_filter"
                )
        return policies.arrow_filter(resolved), masks

    def _batches(
        self, version: int | None, columns: list[str] | None, batch_size: int, filter: Any
    ) -> Iterator:
        """Visible, masked batches. The row filter runs on each batch rather than inside the
        scanner: delta-rs writes some files with view types whose statistics the scanner's
        pushdown cannot compare, and a policy must never fail on a storage detail."""
        dataset = self._delta(version).to_pyarrow_dataset()
        expr, masks = self._policies(dataset.schema)
        if columns is not None:
            unknown = [c for c in columns if c not in dataset.schema.names]
            if unknown:
                raise DataError(
                    f"unknown column(s) {unknown} in {self.full_name}; columns: {dataset.schema.names}"
                )
        needed = None if columns is None else list(dict.fromkeys([*columns, *self._filter_columns()]))
        for batch in dataset.to_batches(columns=needed, batch_size=batch_size):
            if expr is not None:
                batch = batch.filter(expr)
            if columns is not None:
                batch = batch.select(columns)
            batch = policies.apply_masks(batch, masks)
            if filter is not None:
                batch = batch.filter(filter)
            yield batch

    def _filter_columns(self) -> list[str]:
        return list(self.catalog.row_filter_for(self.full_name, self.principal) or {})

    def version_at(self, timestamp: str | datetime) -> int:
        """The version current at ``timestamp`` (``TIMESTAMP AS OF``); naive times are UTC."""
        when = datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
        self.catalog.check(self.principal, "SELECT", self.full_name)
        ms = when.timestamp() * 1000
        versions = [h["version"] for h in self._delta().history() if h["timestamp"] <= ms]
        if not versions:
            raise NotFoundError(f"table {self.full_name} did not exist at {when.isoformat()}; see history()")
        return max(versions)

    def read(
        self,
        version: int | None = None,
        columns: list[str] | None = None,
        as_: str = "arrow",
        filter: Any = None,
        timestamp: str | datetime | None = None,
    ):
        """Rows the caller may see (row filter and masks applied), optionally as of ``version``
        or ``timestamp`` (time travel).

        ``filter`` (a ``pyarrow.compute`` expression) narrows further; it is evaluated on the
        masked values, so it cannot probe what a mask hides.
        """
        import pyarrow as pa

        arrowio.check_output(as_)
        if timestamp is not None:
            version = self.version_at(timestamp)
        batches = list(self._batches(version, columns, 1 << 17, filter))
        schema = batches[0].schema if batches else self._empty_schema(version, columns)
        return arrowio.convert(pa.Table.from_batches(batches, schema=schema), as_)

    def _empty_schema(self, version: int | None, columns: list[str] | None):
        import pyarrow as pa

        schema = self._delta(version).to_pyarrow_dataset().schema
        masks = self.catalog.masks_for(self.full_name, self.principal)
        empty = policies.apply_masks(schema.empty_table(), masks)
        return empty.schema if columns is None else pa.schema([empty.schema.field(c) for c in columns])

    def read_batches(
        self,
        batch_size: int = 65536,
        version: int | None = None,
        columns: list[str] | None = None,
        filter: Any = None,
        timestamp: str | datetime | None = None,
    ) -> Iterator:
        """Stream the visible rows as ``pa.RecordBatch`` without loading the table in memory."""
        if timestamp is not None:
            version = self.version_at(timestamp)
        for batch in self._batches(version, columns, batch_size, filter):
            if batch.num_rows:
                yield batch

    def changes(self, start_version: int, end_version: int | None = None):
        """Change Data Feed rows between two versions (inclusive), policies applied.

        Columns: the table's, plus ``_change_type`` (insert, update_postimage, delete),
        ``_commit_version`` and ``_commit_timestamp``; ordered by commit version and, within a
        commit, deletes first, so applying the rows in order by primary key replays the table.
        """
        from llmforge_local.data.cdf import change_feed

        dt = self._delta()
        expr, masks = self._policies(dt.to_pyarrow_dataset().schema)
        return change_feed(dt, self.full_name, start_version, end_version, expr, masks)

    def node(self, version: int | None = None) -> str:
        """The lineage node of this table at ``version`` (default: the current one)."""
        return table_node(self.full_name, self.version if version is None else version)
