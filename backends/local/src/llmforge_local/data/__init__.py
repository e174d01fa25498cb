"""Governed Delta tables (deltalake) checked against the embedded catalog."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmforge.components import DataSource


@dataclass(frozen=True)
class DataOptions:
    #: folder of the Delta tables (relative to the project home); one sub-folder per catalog/schema
    tables_dir: str = "tables"


class LocalDataSource(DataSource):
    name = "local"
    description = "Delta tables via deltalake, governed by the embedded SQLite catalog"
    Options = DataOptions

    @property
    def root(self) -> Path:
        return self.forge.home / self.options.tables_dir

    def table(self, full_name: str, user: str | None = None) -> Any:
        """A handle on ``catalog.schema.table`` acting for ``user`` (default: the project user)."""
        from llmforge_local.data.tables import Table

        return Table(self.forge.catalog, self.root, full_name, user or self.forge.user)

    def list_tables(self, pattern: str = "*") -> list[str]:
        """Tables whose name matches the glob ``pattern`` (e.g. ``main.knowledge.*``); a table
        registered by a create that never committed is left out."""
        from deltalake import DeltaTable

        cat = self.forge.catalog
        return [
            t
            for t in cat.list("table")
            if fnmatch.fnmatchcase(t, pattern) and DeltaTable.is_deltatable(cat.describe(t)["path"] or "")
        ]

    def spark(self, spark: Any = None, user: str | None = None) -> Any:
        """The Spark engine over these tables (a local session is started when none is given)."""
        from llmforge_local.data.spark import SparkEngine

        return SparkEngine(self.forge, spark=spark, user=user or self.forge.user)

    def arrow(self, user: str | None = None) -> Any:
        """The in-process Arrow engine with the same DataFrame-style calls as :meth:`spark`."""
        from llmforge_local.data.frame import ArrowEngine

        return ArrowEngine(self.forge, user=user or self.forge.user)
