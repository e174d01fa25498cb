"""The Arrow engine: the seed's DataFrame steps, in process, on ``pyarrow`` tables.

It speaks the small part of the Spark DataFrame API that data preparation uses, so one
function can run on either engine::

    def step1(engine):
        F = engine.functions
        df = engine.read.table("main.knowledge.documents")
        df = df.select("document_id", "title", "content") \\
               .withColumn("training_format", F.create_training_pair(F.col("content")))
        df.write.mode("overwrite").saveAsTable("ml.llm_training.enterprise_instructions_v1")

    step1(forge.data.arrow())          # pyarrow, this process
    step1(forge.data.spark(spark))     # Spark, local[*] or a cluster

Reads go through the governed table (grants, row filter, masks for the engine's user);
``saveAsTable`` is a governed write with lineage from the tables read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmforge.errors import DataError
from llmforge_local.data.writer import FrameWriter, save_arrow


class Column:
    """A column expression evaluated against an Arrow table."""

    def __init__(self, fn: Callable, name: str) -> None:
        self._fn, self.name = fn, name

    def evaluate(self, table):
        return self._fn(table)

    def alias(self, name: str) -> Column:
        return Column(self._fn, name)


class ArrowFunctions:
    """``F.col`` / ``F.lit`` / ``F.create_training_pair`` for the Arrow engine."""

    @staticmethod
    def col(name: str) -> Column:
        def get(table):
            if name not in table.column_names:
                raise DataError(f"no column '{name}'; columns: {table.column_names}")
            return table.column(name)

        return Column(get, name)

    @staticmethod
    def lit(value: Any) -> Column:
        import pyarrow as pa

        return Column(lambda table: pa.array([value] * table.num_rows), str(value))

    @staticmethod
    def create_training_pair(content: Column) -> Column:
        """The deterministic pairs of each row's content, as a JSON string (``training_format``)."""
        import pyarrow as pa

        from llmforge.pairs import training_format

        def pairs(table):
            return pa.array([training_format(c) for c in content.evaluate(table).to_pylist()], pa.string())

        return Column(pairs, "training_format")


class ArrowFrame:
    """An eager DataFrame over a ``pa.Table`` that remembers which tables it came from."""

    def __init__(self, engine: ArrowEngine, table, sources: list[str], source_key: str | None) -> None:
        self._engine, self._table = engine, table
        self.sources, self.source_key = sources, source_key

    def _with(self, table) -> ArrowFrame:
        return ArrowFrame(self._engine, table, self.sources, self.source_key)

    @property
    def columns(self) -> list[str]:
        return self._table.column_names

    def select(self, *cols: str | Column) -> ArrowFrame:
        import pyarrow as pa

        picked = [ArrowFunctions.col(c) if isinstance(c, str) else c for c in cols]
        return self._with(pa.table({c.name: c.evaluate(self._table) for c in picked}))

    def withColumn(self, name: str, column: Column) -> ArrowFrame:
        values = column.evaluate(self._table)
        i = self._table.schema.get_field_index(name)
        table = self._table.set_column(i, name, values) if i >= 0 else self._table.append_column(name, values)
        return self._with(table)

    def filter(self, condition) -> ArrowFrame:
        """Keep rows matching a ``pyarrow.compute`` expression."""
        return self._with(self._table.filter(condition))

    where = filter

    def count(self) -> int:
        return self._table.num_rows

    def toArrow(self):
        return self._table

    def toPandas(self):
        return self._table.to_pandas()

    @property
    def write(self) -> FrameWriter:
        return FrameWriter(self._engine, self)


class _Reader:
    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def table(self, name: str, version: int | None = None):
        return self._engine.read_table(name, version=version)


class ArrowEngine:
    """Governed reads and writes as Arrow frames, acting for ``user``."""

    functions = ArrowFunctions

    def __init__(self, forge: Any, user: str | None = None) -> None:
        self.forge, self.user = forge, user or forge.user

    @property
    def read(self) -> _Reader:
        return _Reader(self)

    def _source(self, name: str, version: int | None):
        t = self.forge.data.table(name, user=self.user)
        v = t.version if version is None else version
        return t, v, [t.node(v)]

    def read_table(self, name: str, version: int | None = None) -> ArrowFrame:
        t, v, sources = self._source(name, version)
        return ArrowFrame(self, t.read(version=v), sources, t.primary_key)

    def createDataFrame(self, data: Any) -> ArrowFrame:
        """A frame over new data (e.g. freshly loaded documents); it has no lineage sources."""
        from llmforge_local.data.arrowio import to_arrow

        return ArrowFrame(self, to_arrow(data), [], None)

    def save(self, frame: ArrowFrame, name: str, mode: str, options: dict) -> int:
        return save_arrow(
            self.forge, self.user, frame.toArrow(), name, mode, options, frame.sources, frame.source_key
        )
