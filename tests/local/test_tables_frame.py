"""The Arrow engine's DataFrame steps and the governed saveAsTable writer (no Spark needed)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fixtures.data import DOCS

from llmforge.catalog import SYSTEM
from llmforge.errors import AlreadyExistsError, ConfigError, DataError


def test_step1_shape_on_the_arrow_engine(gov):
    from llmforge.pairs import training_format

    engine = gov.data.arrow(user="alice")
    gov.catalog.grant("MODIFY", "main", "alice")
    F = engine.functions
    df = engine.read.table(DOCS)
    df = df.select("document_id", "content").withColumn(
        "training_format", F.create_training_pair(F.col("content"))
    )
    assert df.columns == ["document_id", "content", "training_format"]
    version = (
        df.write.mode("overwrite")
        .option("primaryKey", "document_id")
        .option("job", "prep")
        .option("runId", "r-7")
        .saveAsTable("main.llm_training.pairs")
    )
    out = gov.table("main.llm_training.pairs", user=SYSTEM)
    assert version == 0 and out.primary_key == "document_id"
    rows = out.read().sort_by("document_id").to_pylist()
    assert [r["document_id"] for r in rows] == ["d-all-1", "d-eng-1", "d-eng-2"]  # alice's view only
    assert rows[1]["training_format"] == training_format("Project Helix ships in Q3.")
    edge = gov.catalog.upstream("table:main.llm_training.pairs@0")[0]
    assert (edge["source"], edge["job"], edge["run_id"]) == (
        "table:main.knowledge.documents@0",
        "prep",
        "r-7",
    )
    assert out.history()[0]["user"] == "alice" and out.history()[0]["run_id"] == "r-7"


def test_frame_operations(gov):
    engine = gov.data.arrow(user=SYSTEM)
    F = engine.functions
    df = engine.read.table(DOCS).filter(pc.field("department") == "engineering")
    assert df.count() == 2
    df = df.withColumn("content", F.lit("x")).select(F.col("document_id").alias("id"), "content")
    assert df.toArrow().to_pydict() == {"id": ["d-eng-1", "d-eng-2"], "content": ["x", "x"]}
    with pytest.raises(DataError, match="no column 'nope'"):
        df.select("nope")
    assert engine.createDataFrame([{"a": 1}]).toPandas()["a"].tolist() == [1]


def test_write_modes(gov):
    engine = gov.data.arrow(user=SYSTEM)
    df = engine.createDataFrame(pa.table({"k": ["a"]}))
    assert df.write.saveAsTable("main.s.t") == 0
    with pytest.raises(AlreadyExistsError, match="mode"):
        df.write.saveAsTable("main.s.t")
    assert df.write.mode("ignore").saveAsTable("main.s.t") == 0
    assert df.write.mode("append").saveAsTable("main.s.t") == 1
    assert df.write.mode("overwrite").saveAsTable("main.s.t") == 2
    assert gov.table("main.s.t", user=SYSTEM).read().num_rows == 1
    assert gov.catalog.upstream("table:main.s.t@0") == []  # new data: no sources
    with pytest.raises(ConfigError, match="write mode"):
        df.write.mode("upsert")
    with pytest.raises(ConfigError, match="unknown write option"):
        df.write.option("path", "/tmp/x")
    with pytest.raises(ConfigError, match="Delta tables"):
        df.write.format("parquet")
