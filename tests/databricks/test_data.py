"""DatabricksDataSource (databricks-sdk underneath) against the emulator's Unity Catalog and
SQL Statement Execution subset; the token's identity decides what is read."""

from __future__ import annotations

import pytest

from llmforge.errors import ConfigError, LLMForgeError, PermissionDeniedError


def test_list_describe_and_exists(dbx_forge, rag_table):
    data = dbx_forge.data
    assert data.list_tables() == [rag_table]
    assert data.list_tables("main.other.*") == []
    t = dbx_forge.table(rag_table)
    assert t.exists and not dbx_forge.table("main.rag.missing").exists
    desc = t.describe()
    assert desc["owner"] == "admin"
    assert [(c["name"], c["type"]) for c in desc["columns"]] == [("id", "bigint"), ("text", "string"),
                                                                 ("dept", "string")]


def test_read_goes_through_sql_and_the_tokens_row_filter(dbx_forge, rag_table, monkeypatch):
    t = dbx_forge.table(rag_table)
    everything = t.read()
    assert everything.num_rows == 4 and everything.column("id").to_pylist() == [1, 2, 3, 4]
    assert t.read(columns=["dept"], limit=2).column_names == ["dept"]
    monkeypatch.setenv("DATABRICKS_TOKEN", "tok-bob")  # the token is the identity
    assert set(dbx_forge.table(rag_table).read().column("dept").to_pylist()) == {"hr", "all"}


def test_grants_round_trip(dbx_forge, forge, rag_table):
    t = dbx_forge.table(rag_table)
    assert {"principal": "account users", "privilege": "SELECT"} in t.show_grants()
    t.grant("MODIFY", "bob")
    assert forge.catalog.has_privilege("bob", "MODIFY", rag_table)
    t.revoke("MODIFY", "bob")
    assert not forge.catalog.has_privilege("bob", "MODIFY", rag_table)
    with pytest.raises(ConfigError, match="privilege"):
        t.grant("FLY", "bob")


def test_non_owner_cannot_grant(dbx_forge, rag_table, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", "tok-alice")
    with pytest.raises(PermissionDeniedError):
        dbx_forge.table(rag_table).grant("MODIFY", "alice")


def test_reads_need_a_warehouse_and_writes_say_where_to_go(home, databricks_env, rag_table):
    import llmforge

    f = llmforge.connect(backend="databricks", home=str(home), user="admin", generator="local")
    with pytest.raises(ConfigError, match="warehouse_id"):
        f.table(rag_table).read()
    with pytest.raises(LLMForgeError, match="Spark or SQL"):
        f.table(rag_table).append([{"id": 9}])
    with pytest.raises(ConfigError, match="not a table name"):
        f.table("main.rag")
