"""``forge.rag.ask`` on the databricks backend (real clients, the emulator behind them), as a
department user: citations only from rows that user may read, the answer logged through the
same table contract as locally (SQL statements on the workspace), tokens charged."""

from __future__ import annotations

import pytest
from fixtures.index import EchoGenerator, EchoPlugin

INDEX = "main.rag.docs_idx"
LOG = "main.llmforge.request_log"


@pytest.fixture
def dbx_rag_forge(home, databricks_env, rag_table):
    """A databricks-backend project (data, index, trainer) answering with the test echo generator."""
    from llmforge import config as cfg
    from llmforge.forge import Forge
    from llmforge.plugins import make_plugin_manager
    from llmforge.registry import collect

    EchoGenerator.prompts.clear()
    conf = cfg.validate(
        {
            "backend": "databricks",
            "home": str(home),
            "components": {
                "generator": "echo",
                "data_source": {"name": "databricks", "options": {"warehouse_id": "emulated"}},
            },
            "rag": {"index": INDEX, "num_results": 4, "score_threshold": 0.0, "request_log": LOG},
            "quotas": {"hr": 1_000_000},
        }
    )
    forge = Forge(conf, home.parent, collect(make_plugin_manager(extra=(EchoPlugin(),))), user="admin")
    vs = forge.vector_search
    vs.create_endpoint("ep")
    vs.create_delta_sync_index(
        endpoint_name="ep",
        source_table_name=rag_table,
        index_name=INDEX,
        primary_key="id",
        embedding_source_column="text",
        columns_to_sync=["id", "text", "dept"],
    )
    return forge


def test_department_user_gets_an_answer_citing_only_rows_they_may_read(dbx_rag_forge, forge):
    from llmforge_databricks.vector_search import DatabricksIndex

    assert isinstance(dbx_rag_forge.vector_search.get_index(index_name=INDEX), DatabricksIndex)
    depts = {r["id"]: r["dept"] for r in forge.table("main.rag.docs").read().to_pylist()}
    for user, visible in (("bob", {"hr", "all"}), ("alice", {"engineering", "all"})):
        ans = dbx_rag_forge.rag.ask("How many days of paid vacation leave do employees get?", user=user)
        assert ans.citations and not ans.no_answer
        assert {depts[c["primary_key"]] for c in ans.citations} <= visible, user
        assert all(c["source_table"] == "main.rag.docs" for c in ans.citations)
        if user == "bob":
            assert ans.text.startswith("Vacation policy") and ans.citations[0]["primary_key"] == 1
            charged = ans.usage.total_tokens
        else:
            assert all(c["primary_key"] != 1 for c in ans.citations)
    # answers were logged through the table contract: CREATE TABLE + INSERT on the workspace
    log = sorted(forge.table(LOG).read().to_pylist(), key=lambda r: r["ts"])
    assert [r["user"] for r in log] == ["bob", "alice"]
    assert dbx_rag_forge.rag.lineage(log[0]["request_id"], user="bob")["request"]["user"] == "bob"
    # and bob's department was charged what the generator reported
    hr = next(r for r in dbx_rag_forge.quotas.usage() if r["department"] == "hr")
    assert hr["used"] == charged > 0 and hr["reserved"] == 0


def test_a_request_filter_cannot_widen_what_the_identity_allows(dbx_rag_forge, forge):
    depts = {r["id"]: r["dept"] for r in forge.table("main.rag.docs").read().to_pylist()}
    for filters in ({"dept": ["hr", "engineering"]}, {"dept NOT": "x"}, [{"id >=": 0}]):
        ans = dbx_rag_forge.rag.ask("salary bands and vacation policy", user="alice", filters=filters)
        assert {depts[c["primary_key"]] for c in ans.citations} <= {"engineering", "all"}, filters
