"""The Spark engine: the seed's Step 1 on both engines, governed reads, policies as Spark predicates."""

from __future__ import annotations

import pyarrow as pa
import pytest
from fixtures.data import DOCS

from llmforge.catalog import SYSTEM
from llmforge.errors import AlreadyExistsError, PermissionDeniedError

pytestmark = [pytest.mark.slow, pytest.mark.spark]

OUT = "ml.llm_training.enterprise_instructions_v1"
CONTENT = [
    "# Project Helix\n\nProject Helix (PH) is the new search stack.\n\nOwner: Alice Chen\nStatus: Beta",
    "Travel is reimbursed within 30 days.",
    None,
]


@pytest.fixture
def docs(gov):
    table = gov.table(DOCS)
    table.overwrite(
        pa.table(
            {
                "document_id": ["d-eng-1", "d-fin-1", "d-hr-1"],
                "title": ["Helix", "Travel", None],
                "department": ["engineering", "all", "hr"],
                "content": pa.array(CONTENT, type=pa.string()),
                "salary": ["1", "2", "3"],
            }
        )
    )
    return gov


def step1(engine, out: str = OUT) -> int:
    """The seed's Step 1, written once for either engine."""
    F = engine.functions
    df = engine.read.table(DOCS)
    df = df.select("document_id", "title", "content").withColumn(
        "training_format", F.create_training_pair(F.col("content"))
    )
    return df.write.mode("overwrite").option("job", "step1").saveAsTable(out)


def test_step1_gives_identical_rows_on_both_engines(docs, spark):
    step1(docs.data.arrow(user=SYSTEM), OUT)
    step1(docs.data.spark(spark, user=SYSTEM), OUT + "_spark")
    arrow = docs.table(OUT, user=SYSTEM).read().sort_by("document_id")
    on_spark = docs.table(OUT + "_spark", user=SYSTEM).read().sort_by("document_id")
    assert arrow.equals(on_spark)
    assert arrow.num_rows == 3 and "What does PH stand for?" in arrow.column("training_format")[0].as_py()
    from llmforge.pairs import training_format

    assert on_spark.column("training_format").to_pylist() == [training_format(c) for c in CONTENT]
    source = "table:main.knowledge.documents@1"
    assert {e["target"] for e in docs.catalog.downstream(source)} == {
        f"table:{OUT}@0",
        f"table:{OUT}_spark@0",
    }
    assert {e["job"] for e in docs.catalog.downstream(source)} == {"step1"}
    rows = docs.catalog.downstream_rows(source, "d-eng-1")
    assert {r["node"] for r in rows} == {f"table:{OUT}@0", f"table:{OUT}_spark@0"}


def test_spark_reads_apply_row_filter_and_masks(docs, spark):
    df = docs.data.spark(spark, user="alice").read.table(DOCS)
    rows = {r["document_id"]: r for r in df.collect()}
    assert set(rows) == {"d-eng-1", "d-fin-1"}
    assert {r["salary"] for r in rows.values()} == {"[REDACTED]"}
    # filters on the frame can only narrow
    assert df.filter(df.department == "hr").count() == 0


def test_spark_reads_need_select_and_writes_need_modify(docs, spark):
    docs.catalog.revoke("SELECT", "main.knowledge", "account users")
    engine = docs.data.spark(spark, user="carol")
    with pytest.raises(PermissionDeniedError, match="lacks SELECT"):
        engine.read.table(DOCS)
    docs.catalog.grant("SELECT", DOCS, "carol")
    frame = engine.read.table(DOCS)
    assert frame.count() == 1  # carol is in sales: only the 'all' row
    with pytest.raises(PermissionDeniedError, match="MODIFY on schema 'main.knowledge'"):
        frame.write.saveAsTable("main.knowledge.copy")


def test_joined_frames_carry_both_sources_and_modes_behave(docs, spark):
    engine = docs.data.spark(spark, user=SYSTEM)
    docs.table("main.knowledge.owners").create(pa.table({"document_id": ["d-eng-1"], "owner": ["alice"]}))
    joined = engine.read.table(DOCS).join(engine.read.table("main.knowledge.owners"), "document_id")
    assert joined.count() == 1
    joined.write.saveAsTable("main.knowledge.joined")
    with pytest.raises(AlreadyExistsError, match="mode"):
        joined.write.saveAsTable("main.knowledge.joined")
    assert joined.write.mode("ignore").saveAsTable("main.knowledge.joined") == 0
    assert joined.write.mode("append").saveAsTable("main.knowledge.joined") == 1
    assert {e["source"] for e in docs.catalog.upstream("table:main.knowledge.joined@0")} == {
        "table:main.knowledge.documents@1",
        "table:main.knowledge.owners@0",
    }


def test_policies_as_spark_predicates_match_the_arrow_path(docs, spark):
    """The native Delta read path turns the catalog's policies into Spark operations."""
    from llmforge_local.data.spark import apply_policies

    cat = docs.catalog
    cat.set_column_mask(DOCS, "title", {"type": "hash"})
    cat.set_column_mask(DOCS, "content", {"type": "null", "except_groups": ["hr"]})
    raw = docs.table(DOCS, user=SYSTEM).read()
    for user in ("alice", "bob", "admin"):
        expected = cat.apply_policies(DOCS, user, raw).sort_by("document_id")
        df = apply_policies(
            spark.createDataFrame(raw), cat.row_filter_for(DOCS, user), cat.masks_for(DOCS, user)
        )
        got = df.toArrow().sort_by("document_id")
        assert got.to_pylist() == expected.to_pylist(), user
