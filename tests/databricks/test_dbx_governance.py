"""Governance on the databricks backend lands in Unity Catalog: row filters and masks as SQL
functions bound with ALTER TABLE (the emulator executes them into its catalog), the llmforge
spec as a table property, grants through the permissions API; TableInfo reports them."""

from __future__ import annotations

import json

import pytest

from llmforge.errors import LLMForgeError

TABLE = "main.gov.docs"
SPEC = {
    "type": "department_membership",
    "column": "dept",
    "always_visible": ["all"],
    "exempt_groups": ["admins"],
}
MASK = {"type": "redact", "except_groups": ["admins"], "replacement": "[HIDDEN]"}


@pytest.fixture
def governed_table(dbx_forge, forge, rag_table):
    """``main.gov.docs`` created through SQL, readable by everyone, its policies set through UC."""
    import pyarrow as pa
    from fixtures.databricks import DOCS

    dbx_forge.table(TABLE).create(pa.Table.from_pylist(DOCS), primary_key="id")
    data = dbx_forge.data
    data.grant("USE", "main.gov", "account users")
    data.grant("SELECT", TABLE, "account users")
    data.set_row_filter(TABLE, SPEC)
    data.set_column_mask(TABLE, "text", MASK)
    return TABLE


def test_policies_land_in_the_catalog_and_table_info(governed_table, dbx_forge, forge, emulator):
    assert forge.catalog.row_filter(TABLE) == SPEC
    assert forge.catalog.column_masks(TABLE) == {"text": MASK}
    info = emulator.workspace("admin").tables.get(TABLE)
    assert info.row_filter.function_name == "main.gov.docs_row_filter"
    assert info.row_filter.input_column_names == ["dept"]
    assert {c.name: c.mask.function_name for c in info.columns if c.mask} == {
        "text": "main.gov.docs_text_mask"
    }
    assert json.loads(info.properties["llmforge.row_filter"]) == SPEC
    assert json.loads(info.properties["llmforge.column_masks"]) == {"text": MASK}
    assert info.table_constraints[0].primary_key_constraint.child_columns == ["id"]
    assert dbx_forge.data.row_filter(TABLE) == SPEC
    assert forge.catalog.has_privilege("bob", "SELECT", TABLE)


def test_reads_through_the_warehouse_apply_them_per_token(governed_table, dbx_forge, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", "tok-bob")
    rows = dbx_forge.table(TABLE).read().to_pylist()
    assert {r["dept"] for r in rows} == {"hr", "all"} and {r["text"] for r in rows} == {"[HIDDEN]"}
    monkeypatch.setenv("DATABRICKS_TOKEN", "tok-admin")
    assert dbx_forge.table(TABLE).read().num_rows == 4


def test_identity_aware_search_ands_the_uc_row_filter(governed_table, dbx_forge):
    vs = dbx_forge.vector_search
    vs.create_endpoint("ep")
    idx = vs.create_delta_sync_index(
        endpoint_name="ep",
        source_table_name=TABLE,
        index_name="main.gov.docs_idx",
        primary_key="id",
        embedding_source_column="text",
        columns_to_sync=["id", "text", "dept"],
    )
    for user, visible in (("bob", {"hr", "all"}), ("alice", {"engineering", "all"})):
        res = idx.similarity_search(columns=["id", "dept"], query_text="policy", num_results=10, user=user)
        assert {row[1] for row in res["result"]["data_array"]} == visible, user


def test_dropping_policies_removes_them_everywhere(governed_table, dbx_forge, forge, emulator):
    dbx_forge.data.set_row_filter(TABLE, None)
    dbx_forge.data.set_column_mask(TABLE, "text", None)
    assert forge.catalog.row_filter(TABLE) is None and forge.catalog.column_masks(TABLE) == {}
    info = emulator.workspace("admin").tables.get(TABLE)
    assert info.row_filter is None and "llmforge.row_filter" not in (info.properties or {})
    assert dbx_forge.data.row_filter(TABLE) is None


def test_only_the_owner_sets_policies_and_bad_specs_fail_first(governed_table, dbx_forge, monkeypatch):
    from llmforge.errors import ConfigError, DataError, PermissionDeniedError

    with pytest.raises(DataError, match="lacks"):
        dbx_forge.data.set_row_filter(TABLE, {**SPEC, "column": "nope"})
    with pytest.raises(ConfigError, match="row filter type"):
        dbx_forge.data.set_row_filter(TABLE, {"type": "everyone", "column": "dept"})
    monkeypatch.setenv("DATABRICKS_TOKEN", "tok-alice")
    with pytest.raises(PermissionDeniedError):
        dbx_forge.data.set_row_filter(TABLE, None)


def test_the_emulator_refuses_a_function_body_it_cannot_evaluate(governed_table, dbx_forge):
    from llmforge_databricks.sql import execute

    with pytest.raises(LLMForgeError, match="shapes llmforge renders"):
        execute(
            "emulated",
            "CREATE OR REPLACE FUNCTION main.gov.f(`dept` STRING) RETURNS BOOLEAN RETURN length(dept) > 2",
            "create a function",
        )


def test_the_local_data_source_keeps_the_same_contract(forge, rag_table):
    forge.data.set_row_filter(rag_table, {**SPEC, "always_visible": []})
    assert forge.data.row_filter(rag_table)["always_visible"] == []
    forge.data.set_column_mask(rag_table, "text", MASK)
    assert forge.catalog.column_masks(rag_table) == {"text": MASK}
    forge.data.grant("MODIFY", rag_table, "bob")
    assert forge.catalog.has_privilege("bob", "MODIFY", rag_table)
