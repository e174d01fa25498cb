"""DatabricksDataSource (databricks-sdk underneath) against the emulator's Unity Catalog and
SQL Statement Execution subset; the token's identity decides what is read."""

from __future__ import annotations

import pytest

from llmforge.errors import ConfigError, PermissionDeniedError


def test_list_describe_and_exists(dbx_forge, rag_table):
    data = dbx_forge.data
    assert data.list_tables() == [rag_table]
    assert data.list_tables("main.other.*") == []
    t = dbx_forge.table(rag_table)
    assert t.exists and not dbx_forge.table("main.rag.missing").exists
    desc = t.describe()
    assert desc["owner"] == "admin"
    assert [(c["name"], c["type"]) for c in desc["columns"]] == [
        ("id", "bigint"),
        ("text", "string"),
        ("dept", "string"),
    ]


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


def test_reads_and_writes_need_a_warehouse(home, databricks_env, rag_table):
    import llmforge

    f = llmforge.connect(backend="databricks", home=str(home), user="admin", generator="local")
    with pytest.raises(ConfigError, match="warehouse_id"):
        f.table(rag_table).read()
    with pytest.raises(ConfigError, match="warehouse_id"):
        f.table(rag_table).append([{"id": 9, "text": "x", "dept": "all"}])
    for op, args in (("merge", ([{"id": 1}],)), ("overwrite", ([{"id": 1}],)), ("delete", ("id = 1",))):
        with pytest.raises(ConfigError, match="warehouse_id"):
            getattr(f.table(rag_table), op)(*args)
    with pytest.raises(ConfigError, match="not a table name"):
        f.table("main.rag")


def test_create_and_append_are_one_parameterised_statement_each(dbx_forge, forge):
    """Writes go through SQL Statement Execution: values as typed parameters, never SQL text."""
    import datetime as dt

    import pyarrow as pa

    forge.catalog.add_principal("admin", groups=["admins"])
    t = dbx_forge.table("main.logs.events")
    schema = pa.schema(
        [("id", pa.string()), ("n", pa.int64()), ("ok", pa.bool_()), ("ts", pa.timestamp("us", tz="UTC"))]
    )
    assert t.create(schema, primary_key="id", comment="it's a log") == 0
    hostile = "x'); DROP TABLE main.logs.events; --"
    now = dt.datetime(2026, 12, 1, 12, 30, tzinfo=dt.UTC)
    v = t.append(pa.table({"id": ["a", hostile], "n": [1, None], "ok": [True, False], "ts": [now, now]}))
    assert v == 1 and t.version == 1 and [h["version"] for h in t.history()] == [1, 0]
    local = forge.table("main.logs.events")  # the emulator's side: one Delta table, two commits
    assert local.primary_key == "id" and local.describe()["comment"] == "it's a log"
    rows = local.read().to_pylist()
    assert [r["id"] for r in rows] == ["a", hostile] and rows[1]["n"] is None and rows[0]["ts"] == now
    assert dbx_forge.table("main.logs.events").read().column("id").to_pylist() == ["a", hostile]
    with pytest.raises(ConfigError, match="primary_key"):
        dbx_forge.table("main.logs.other").create(schema, primary_key="missing")


def test_overwrite_merge_and_delete_are_one_statement_each(dbx_forge, forge):
    import pyarrow as pa

    forge.catalog.add_principal("admin", groups=["admins"])
    t = dbx_forge.table("main.logs.items")
    t.create(pa.table({"id": [1, 2, 3], "name": ["a", "b", "c"], "score": [0.5, 1.5, 2.5]}), primary_key="id")
    local = forge.table("main.logs.items")

    def rows():
        return sorted((r["id"], r["name"], r["score"]) for r in local.read().to_pylist())

    v = t.merge(pa.table({"id": [2, 4], "name": ["B", "it's"], "score": [9.0, 4.0]}))
    assert rows() == [(1, "a", 0.5), (2, "B", 9.0), (3, "c", 2.5), (4, "it's", 4.0)]
    v2 = t.delete("name = 'it''s' OR (score > 9 AND id IN (1, 2)) OR name IS NULL")
    assert v2 == v + 1 and rows() == [(1, "a", 0.5), (2, "B", 9.0), (3, "c", 2.5)]
    t.delete("score >= 9.0")
    assert rows() == [(1, "a", 0.5), (3, "c", 2.5)]
    t.overwrite(pa.table({"id": [7], "name": ["z"], "score": [7.0]}))
    assert rows() == [(7, "z", 7.0)]
    t.overwrite(
        pa.table(
            {
                "id": pa.array([], pa.int64()),
                "name": pa.array([], pa.string()),
                "score": pa.array([], pa.float64()),
            }
        )
    )
    assert rows() == [] and [h["version"] for h in t.history(limit=1)] == [t.version]


@pytest.mark.parametrize(
    "predicate",
    [
        "1 = 1; DROP TABLE main.logs.items",
        "id = 1 OR true",
        "lower(name) = 'a'",
        "id = (SELECT 1)",
        "name = 'a' --",
        "",
    ],
)
def test_delete_refuses_anything_but_a_simple_predicate(dbx_forge, forge, predicate):
    import pyarrow as pa

    forge.catalog.add_principal("admin", groups=["admins"])
    t = dbx_forge.table("main.logs.items")
    t.create(pa.table({"id": [1, 2], "name": ["a", "b"]}), primary_key="id")
    with pytest.raises(ConfigError, match="not a simple expression"):
        t.delete(predicate)
    assert forge.table("main.logs.items").read().num_rows == 2


def test_a_table_name_the_workspace_rejects_is_a_clear_error(dbx_forge, forge):
    import pyarrow as pa

    from llmforge.errors import DataError, NotFoundError

    with pytest.raises(ConfigError, match="not a table name"):
        dbx_forge.table("main.bad-name.x")
    with pytest.raises(NotFoundError, match="does not exist"):
        dbx_forge.table("main.logs.missing").append(pa.table({"id": [1]}))
    with pytest.raises((DataError, ConfigError)):
        dbx_forge.table("main.logs.items").create(pa.schema([("x", pa.list_(pa.int64()))]))
