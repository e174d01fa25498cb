"""The Spark engine: the same governed reads and writes through a ``SparkSession``.

Reads hand Spark the rows the engine's user may see. With plain Spark (``local[*]`` or a
cluster without Delta) the governed Arrow read is exchanged with ``spark.createDataFrame``;
when the session has Delta (Databricks, or ``delta-spark`` configured) the table is read
natively with ``format("delta")`` and the catalog's row filter and masks become Spark
predicates, so the data never passes through the driver. Writes always commit through the
governed table (``df.toArrow()``), so key checks, commit metadata and lineage have one
implementation whatever the engine.
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any

from llmforge_local.data.writer import FrameWriter, save_arrow


def local_session(master: str = "local[2]", shuffle_partitions: int = 2):
    """A small local SparkSession with Arrow exchange on (reused if one is running)."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.master(master)
        .appName("llmforge")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def has_delta(spark) -> bool:
    """Whether ``format("delta")`` works in this session (Delta extension or Databricks)."""
    ext = spark.conf.get("spark.sql.extensions", "") or ""
    return "DeltaSparkSessionExtension" in ext or "DATABRICKS_RUNTIME_VERSION" in os.environ


def apply_policies(df, resolved: dict[str, list[str]] | None, masks: dict[str, dict]):
    """The catalog's resolved row filter and masks as Spark operations (mirrors the Arrow path)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    for column, values in (resolved or {}).items():
        df = df.filter(F.col(column).isin(list(values)))
    for column, spec in masks.items():
        if column not in df.columns:
            continue
        dtype = df.schema[column].dataType
        if spec["type"] == "null" or (spec["type"] == "redact" and not isinstance(dtype, StringType)):
            expr = F.lit(None).cast(dtype)
        elif spec["type"] == "redact":
            expr = F.when(F.col(column).isNull(), F.lit(None)).otherwise(F.lit(spec["replacement"]))
        else:
            expr = F.sha2(F.col(column).cast("string"), 256)
        df = df.withColumn(column, expr)
    return df


def _training_format(content: str | None) -> str:
    from llmforge.pairs import training_format

    return training_format(content)


def training_pair_udf():
    """``create_training_pair`` as an Arrow-optimised Spark UDF: content -> JSON string of pairs."""
    from pyspark.sql.functions import udf

    return udf(_training_format, returnType="string", useArrow=True)


def spark_functions() -> SimpleNamespace:
    from pyspark.sql import functions as F

    return SimpleNamespace(col=F.col, lit=F.lit, create_training_pair=training_pair_udf())


class SparkFrame:
    """A Spark DataFrame that remembers its source tables; ``.write`` is the governed writer.

    Every other attribute is the DataFrame's own; DataFrames it returns are wrapped again, and
    frames passed in (``join``, ``union``) are unwrapped, merging their sources.
    """

    def __init__(self, df, engine: SparkEngine, sources: list[str], source_key: str | None) -> None:
        self._df, self._engine = df, engine
        self.sources, self.source_key = sources, source_key

    def __getattr__(self, name: str) -> Any:
        from pyspark.sql import DataFrame

        attr = getattr(self._df, name)
        if not callable(attr):
            return (
                SparkFrame(attr, self._engine, self.sources, self.source_key)
                if isinstance(attr, DataFrame)
                else attr
            )

        def call(*args, **kw):
            sources, key = list(self.sources), self.source_key
            unwrapped = []
            for a in args:
                if isinstance(a, SparkFrame):
                    sources += [s for s in a.sources if s not in sources]
                    key = key if key == a.source_key else None
                    a = a._df
                unwrapped.append(a)
            out = attr(*unwrapped, **kw)
            return SparkFrame(out, self._engine, sources, key) if isinstance(out, DataFrame) else out

        return call

    @property
    def df(self):
        """The plain Spark DataFrame."""
        return self._df

    @property
    def write(self) -> FrameWriter:
        return FrameWriter(self._engine, self)

    def toArrow(self):
        return self._df.toArrow()


class _Reader:
    def __init__(self, engine: SparkEngine) -> None:
        self._engine = engine

    def table(self, name: str, version: int | None = None) -> SparkFrame:
        return self._engine.read_table(name, version=version)


class SparkEngine:
    """Governed tables as Spark DataFrames, acting for ``user``."""

    def __init__(self, forge: Any, spark: Any = None, user: str | None = None) -> None:
        self.forge, self.user = forge, user or forge.user
        self.spark = spark if spark is not None else local_session()
        self.native = has_delta(self.spark)
        self._functions = None

    @property
    def functions(self) -> SimpleNamespace:
        """``F.col`` / ``F.lit`` / ``F.create_training_pair`` (a pandas UDF) for this engine."""
        if self._functions is None:
            self._functions = spark_functions()
        return self._functions

    @property
    def read(self) -> _Reader:
        return _Reader(self)

    def read_table(self, name: str, version: int | None = None) -> SparkFrame:
        t = self.forge.data.table(name, user=self.user)
        v = t.version if version is None else version
        if self.native:
            df = self.spark.read.format("delta").option("versionAsOf", v).load(str(t.path))
            cat = self.forge.catalog
            df = apply_policies(df, cat.row_filter_for(name, self.user), cat.masks_for(name, self.user))
        else:
            df = self.spark.createDataFrame(t.read(version=v))
        return SparkFrame(df, self, [t.node(v)], t.primary_key)

    def createDataFrame(self, data: Any) -> SparkFrame:
        """A frame over new data (a pa.Table, pandas frame, ...); it has no lineage sources."""
        from llmforge_local.data.arrowio import to_arrow

        return SparkFrame(self.spark.createDataFrame(to_arrow(data)), self, [], None)

    def save(self, frame: SparkFrame, name: str, mode: str, options: dict) -> int:
        return save_arrow(
            self.forge, self.user, frame.toArrow(), name, mode, options, frame.sources, frame.source_key
        )
