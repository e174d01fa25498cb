"""Governed Delta tables: writes, versions, time travel, policies on every read path, permissions."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from fixtures.data import DEPT_FILTER, DOCS, documents_table

from llmforge.catalog import SYSTEM
from llmforge.errors import AlreadyExistsError, ConfigError, DataError, NotFoundError, PermissionDeniedError


def _row(doc_id, dept="engineering", content="new", salary="1"):
    return pa.table(
        {
            "document_id": [doc_id],
            "department": [dept],
            "content": [content],
            "salary": pa.array([salary], type=pa.string()),
        }
    )


def _ids(table) -> list[str]:
    return sorted(table.column("document_id").to_pylist())


def test_create_registers_the_table_and_its_owner(gov):
    t = gov.table(DOCS)
    assert t.exists and t.version == 0 and t.primary_key == "document_id"
    d = t.describe()
    assert d["owner"] == "admin" and d["num_rows"] == 5 and d["comment"] == "test documents"
    assert d["table_properties"]["delta.enableChangeDataFeed"] == "true"
    assert [c["name"] for c in d["columns"]] == ["document_id", "department", "content", "salary"]
    assert (gov.home / "tables" / "main" / "knowledge" / "documents" / "_delta_log").is_dir()
    assert gov.data.list_tables() == [DOCS] and gov.data.list_tables("ml.*") == []
    with pytest.raises(AlreadyExistsError):
        t.create(documents_table())


def test_create_from_a_schema_and_bad_names(forge):
    t = forge.table("main.s.empty")
    t.create(pa.schema([("id", pa.string()), ("n", pa.int64())]), primary_key="id")
    assert t.read().num_rows == 0 and t.read().schema.names == ["id", "n"]
    with pytest.raises(ConfigError, match="a table name is needed"):
        forge.table("main.documents")
    with pytest.raises(NotFoundError, match="create it"):
        forge.table("main.s.nope").read()


def test_append_merge_delete_overwrite_and_history(gov):
    t = gov.table(DOCS)
    assert t.append(_row("d-eng-3")) == 1
    assert t.merge(pa.concat_tables([_row("d-eng-3", content="changed"), _row("d-eng-4")])) == 2
    assert t.delete("department = 'finance'") == 3
    rows = {r["document_id"]: r for r in t.read().to_pylist()}
    assert rows["d-eng-3"]["content"] == "changed" and "d-eng-4" in rows and "d-fin-1" not in rows
    hist = t.history()
    assert [h["version"] for h in hist] == [3, 2, 1, 0]
    assert [h["operation"] for h in hist] == ["DELETE", "MERGE", "WRITE", "WRITE"]
    assert {h["user"] for h in hist} == {"admin"} and hist[0]["job"] == "delete"
    assert t.overwrite(pa.table({"document_id": ["x"], "department": ["all"], "body": ["new schema"]})) == 4
    assert t.read().column_names == ["document_id", "department", "body"]


def test_time_travel_reads_old_versions(gov):
    t = gov.table(DOCS)
    t.delete("document_id = 'd-eng-1'")
    t.append(_row("d-eng-9"))
    admin = gov.table(DOCS, user=SYSTEM)
    assert "d-eng-1" in _ids(admin.read(version=0)) and "d-eng-9" not in _ids(admin.read(version=0))
    assert "d-eng-1" not in _ids(admin.read(version=1))
    assert "d-eng-9" in _ids(admin.read())
    with pytest.raises(NotFoundError, match="no version 7"):
        admin.read(version=7)


def test_keys_and_schema_are_enforced_on_write(gov):
    t = gov.table(DOCS)
    with pytest.raises(DataError, match="reuses existing document_id"):
        t.append(_row("d-hr-1"))
    with pytest.raises(DataError, match="duplicate primary key"):
        t.append(pa.concat_tables([_row("n1"), _row("n1")]))
    with pytest.raises(DataError, match="missing column"):
        t.append(pa.table({"document_id": ["n2"]}))
    with pytest.raises(DataError, match="null"):
        t.merge(
            pa.table(
                {
                    "document_id": pa.array([None], type=pa.string()),
                    "department": ["x"],
                    "content": ["c"],
                    "salary": ["1"],
                }
            )
        )
    with pytest.raises(DataError, match="No field named nosuch"):
        t.delete("nosuch = 1")
    with pytest.raises(DataError, match="cannot write"):
        t.append(42)
    assert t.version == 0  # nothing above committed anything


def test_writes_accept_pandas_polars_and_rows(gov):
    t = gov.table(DOCS)
    t.append(_row("p1").to_pandas())
    import polars as pl

    t.append(pl.from_arrow(_row("p2")))
    t.append([{"document_id": "p3", "department": "hr", "content": "c", "salary": "2"}])
    assert {"p1", "p2", "p3"} <= set(_ids(gov.table(DOCS, user=SYSTEM).read()))


ALICE_SEES = ["d-all-1", "d-eng-1", "d-eng-2"]


@pytest.mark.parametrize("path", ["arrow", "pandas", "polars", "batches", "changes"])
def test_row_filter_and_mask_apply_on_every_read_path(gov, path):
    alice = gov.table(DOCS, user="alice")
    if path == "batches":
        batches = list(alice.read_batches(batch_size=2))
        assert all(b.num_rows <= 2 for b in batches)
        data = pa.Table.from_batches(batches)
    elif path == "changes":
        data = alice.changes(0)
        assert set(data.column("_change_type").to_pylist()) == {"insert"}
    else:
        data = alice.read(as_=path)
        data = (
            pa.Table.from_pandas(data) if path == "pandas" else data.to_arrow() if path == "polars" else data
        )
    assert _ids(data) == ALICE_SEES
    assert set(data.column("salary").to_pylist()) == {"[REDACTED]", None}


def test_exempt_and_unmasked_principals(gov):
    assert len(gov.table(DOCS, user="admin").read()) == 5  # admins are exempt from the filter
    assert "[REDACTED]" in gov.table(DOCS, user="admin").read().column("salary").to_pylist()
    bob = gov.table(DOCS, user="bob").read()
    assert _ids(bob) == ["d-all-1", "d-hr-1"] and "90000" in bob.column("salary").to_pylist()
    assert len(gov.table(DOCS, user=SYSTEM).read()) == 5
    assert "150000" in gov.table(DOCS, user=SYSTEM).read().column("salary").to_pylist()


def test_a_request_may_narrow_but_never_widen(gov):
    alice = gov.table(DOCS, user="alice")
    narrowed = alice.read(filter=pc.field("department") == "engineering")
    assert _ids(narrowed) == ["d-eng-1", "d-eng-2"]
    assert alice.read(filter=pc.field("department") == "hr").num_rows == 0
    # the extra filter sees masked values, so it cannot probe a mask
    assert alice.read(filter=pc.field("salary") == "150000").num_rows == 0
    only = alice.read(columns=["content"])
    assert only.column_names == ["content"] and only.num_rows == 3


def test_policies_follow_time_travel_and_column_selection(gov):
    gov.table(DOCS).append(_row("d-hr-2", dept="hr"))
    alice = gov.table(DOCS, user="alice")
    assert _ids(alice.read(version=0)) == ALICE_SEES
    assert alice.read(version=1, columns=["salary"]).column("salary").to_pylist().count("[REDACTED]") == 2


def test_reading_without_select_names_the_privilege(gov):
    gov.catalog.revoke("SELECT", "main.knowledge", "account users")
    for call in (
        lambda t: t.read(),
        lambda t: list(t.read_batches()),
        lambda t: t.changes(0),
        lambda t: t.history(),
        lambda t: t.describe(),
    ):
        with pytest.raises(PermissionDeniedError, match="lacks SELECT on table 'main.knowledge.documents'"):
            call(gov.table(DOCS, user="alice"))


def test_writes_need_modify_and_non_owners_write_only_what_they_see(gov):
    alice = gov.table(DOCS, user="alice")
    with pytest.raises(PermissionDeniedError, match="lacks MODIFY"):
        alice.append(_row("a1"))
    gov.catalog.grant("MODIFY", DOCS, "alice")
    assert alice.append(_row("a1", dept="hr")) == 1  # appending is allowed, even rows she cannot see
    alice.delete("document_id LIKE 'd-%'")  # only her visible rows go
    assert _ids(gov.table(DOCS, user=SYSTEM).read()) == ["a1", "d-fin-1", "d-hr-1"]
    with pytest.raises(PermissionDeniedError, match="hidden from 'alice'"):
        alice.overwrite(_row("z"))
    with pytest.raises(PermissionDeniedError, match="hidden from 'alice'"):
        alice.merge(_row("z"))


def test_creating_needs_modify_on_the_schema(gov):
    with pytest.raises(PermissionDeniedError, match="MODIFY on schema 'main.knowledge'"):
        gov.table("main.knowledge.notes", user="carol").create(_row("n"))
    gov.catalog.grant("MODIFY", "main.knowledge", "carol")
    gov.table("main.knowledge.notes", user="carol").create(_row("n"))
    assert gov.catalog.describe("main.knowledge.notes")["owner"] == "carol"
    # a new catalog is created for, and owned by, the creator
    gov.table("scratch.tmp.t", user="carol").create(_row("n"))
    assert gov.catalog.describe("scratch")["owner"] == "carol"


def test_a_policy_on_a_missing_column_is_refused_and_fails_closed(gov):
    with pytest.raises(DataError, match="column 'dept'"):
        gov.catalog.set_row_filter(DOCS, {"type": "department_membership", "column": "dept"})
    # a column dropped after the filter was set: reads fail closed rather than expose rows
    gov.catalog.set_row_filter(DOCS, DEPT_FILTER)
    gov.table(DOCS).overwrite(documents_table().drop_columns(["department"]))
    with pytest.raises(DataError, match="column 'department'"):
        gov.table(DOCS, user="alice").read()


def test_writes_record_lineage_into_the_new_version(gov):
    src = gov.table(DOCS).node()
    out = gov.table("ml.llm_training.pairs")
    out.create(
        pa.table({"pair_id": ["d-eng-1#0"], "document_id": ["d-eng-1"]}),
        primary_key="pair_id",
        sources=[src],
        job="prepare_training",
        run_id="run-1",
        row_keys={"d-eng-1": ["d-eng-1#0"]},
    )
    out.append(pa.table({"pair_id": ["d-hr-1#0"], "document_id": ["d-hr-1"]}), sources=[src], job="more")
    down = gov.catalog.downstream(src)
    assert [(e["target"], e["job"], e["run_id"]) for e in down] == [
        ("table:ml.llm_training.pairs@0", "prepare_training", "run-1"),
        ("table:ml.llm_training.pairs@1", "more", None),
    ]
    assert gov.catalog.upstream_rows("table:ml.llm_training.pairs@0", "d-eng-1#0")[0]["key"] == "d-eng-1"


def test_changes_between_versions(gov):
    t = gov.table(DOCS)
    t.merge(_row("d-eng-1", content="v2"))
    t.delete("document_id = 'd-eng-2'")
    ch = gov.table(DOCS, user=SYSTEM).changes(1)
    assert list(
        zip(
            ch.column("document_id").to_pylist(),
            ch.column("_change_type").to_pylist(),
            ch.column("_commit_version").to_pylist(),
        )
    ) == [("d-eng-1", "update_postimage", 1), ("d-eng-2", "delete", 2)]
    assert gov.table(DOCS, user=SYSTEM).changes(1, 1).num_rows == 1
    empty = gov.table(DOCS, user=SYSTEM).changes(9)
    assert empty.num_rows == 0 and "_change_type" in empty.column_names
    assert empty.schema.field("document_id").type == pa.string()
    assert gov.table(DOCS, user=SYSTEM).changes(2, 99).num_rows == 1  # the end is clamped


def test_replaying_changes_in_order_rebuilds_the_table(forge):
    t = forge.table("main.s.kv", user=SYSTEM)
    t.create(pa.table({"id": ["a", "b"], "v": [1, 2]}), primary_key="id")
    t.overwrite(pa.table({"id": ["b", "c"], "v": [20, 3]}))  # b deleted and re-inserted in one commit
    t.merge(pa.table({"id": ["c", "d"], "v": [30, 4]}))
    t.delete("id = 'b'")
    t.append(pa.table({"id": ["e"], "v": [5]}))
    state: dict[str, int] = {}
    for row in t.changes(0).to_pylist():
        if row["_change_type"] == "delete":
            state.pop(row["id"], None)
        else:
            state[row["id"]] = row["v"]
    assert state == dict(zip(*t.read().select(["id", "v"]).to_pydict().values(), strict=True))
    assert state == {"c": 30, "d": 4, "e": 5}


def test_a_create_that_died_before_its_commit_can_be_redone_by_the_owner(gov):
    # what a create killed between registering and its first Delta commit leaves behind
    gov.catalog.register_table("main.knowledge.half", owner="admin", path=str(gov.home / "nowhere"))
    gov.catalog.grant("SELECT", "main.knowledge.half", "carol")
    assert not gov.table("main.knowledge.half").exists
    gov.catalog.grant("MODIFY", "main.knowledge", "alice")
    with pytest.raises(PermissionDeniedError, match="OWNER"):
        gov.table("main.knowledge.half", user="alice").create(_row("x"))
    assert gov.table("main.knowledge.half").create(_row("x"), primary_key="document_id") == 0
    assert gov.table("main.knowledge.half", user="carol").read().num_rows == 1  # its grant survived
    assert gov.table("main.knowledge.half").primary_key == "document_id"


def test_list_tables_leaves_out_uncommitted_registrations(gov):
    gov.catalog.register_table("main.knowledge.ghost", owner="admin", path=str(gov.home / "nowhere"))
    assert gov.data.list_tables("main.knowledge.*") == [DOCS]


def test_drop_needs_ownership_and_removes_data_and_policies(gov):
    with pytest.raises(PermissionDeniedError, match="OWNER"):
        gov.table(DOCS, user="alice").drop()
    path = gov.table(DOCS).path
    src = gov.table(DOCS).node()
    gov.catalog.record_lineage([src], "index:main.knowledge.idx@1", job="sync")
    gov.table(DOCS).drop()
    assert not gov.table(DOCS).exists and not path.exists()
    assert gov.catalog.row_filter(DOCS) is None and gov.data.list_tables() == []
    assert gov.catalog.downstream(src)  # lineage outlives the table
    gov.table(DOCS).create(documents_table())
    assert gov.table(DOCS, user="alice").read().num_rows == 5  # the old filter is gone with the old table
    assert gov.table(DOCS).history()[0]["timestamp"].endswith("+00:00")


def test_time_travel_by_timestamp(gov):
    import time
    from datetime import UTC, datetime

    t = gov.table(DOCS, user=SYSTEM)
    time.sleep(0.02)
    between = datetime.now(UTC)
    time.sleep(0.02)
    gov.table(DOCS).append(_row("d-late"))
    assert t.version_at(between) == 0
    assert "d-late" not in _ids(t.read(timestamp=between.isoformat()))
    assert "d-late" in _ids(pa.Table.from_batches(list(t.read_batches(timestamp=datetime.now(UTC)))))
    with pytest.raises(NotFoundError, match="did not exist"):
        t.read(timestamp="2001-01-01T00:00:00")
