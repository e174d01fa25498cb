"""Emulator fidelity, each checked through the real client: columns synced by default, SELECT on
the index, endpoint-scoped lookups, paging, non-negative scores with a 0.0 default threshold."""

from __future__ import annotations

import pytest

INDEX = "main.rag.all_idx"


@pytest.fixture
def all_columns_index(emulator, rag_table):
    client = emulator.vs_client("admin")
    client.create_endpoint(name="ep", endpoint_type="STANDARD")
    return client.create_delta_sync_index(
        endpoint_name="ep",
        source_table_name=rag_table,
        index_name=INDEX,
        primary_key="id",
        pipeline_type="TRIGGERED",
        embedding_source_column="text",
        embedding_model_endpoint_name="databricks-gte-large-en",
    )


def test_a_delta_sync_index_without_columns_to_sync_syncs_every_column(all_columns_index):
    res = all_columns_index.similarity_search(
        columns=["id", "text", "dept"], query_text="vacation", num_results=4
    )
    names = [c["name"] for c in res["manifest"]["columns"]]
    assert names == ["id", "text", "dept", "score"]
    assert {row[2] for row in res["result"]["data_array"]} <= {"hr", "engineering", "all"}


def test_querying_needs_select_on_the_index(emulator, all_columns_index):
    from databricks.vector_search.exceptions import PermissionDenied
    from test_emulator_vector_search import grant_index

    bob = emulator.vs_client("bob").get_index(endpoint_name="ep", index_name=INDEX)
    with pytest.raises(PermissionDenied, match="SELECT on index"):
        bob.similarity_search(columns=["id"], query_text="vacation")
    grant_index(emulator, INDEX, "SELECT", "bob")
    rows = bob.similarity_search(columns=["id", "dept"], query_text="vacation", num_results=4)["result"][
        "data_array"
    ]
    assert rows and {r[1] for r in rows} <= {"hr", "all"}  # and the source row filter still applies
    perms = emulator.workspace("admin").grants.get(securable_type="table", full_name=INDEX)
    assert [(a.principal, [p.value for p in a.privileges]) for a in perms.privilege_assignments] == [
        ("bob", ["SELECT"])
    ]


def test_get_index_under_a_wrong_endpoint_is_an_error(emulator, all_columns_index):
    from databricks.vector_search.exceptions import NotFound

    client = emulator.vs_client("admin")
    with pytest.raises(NotFound, match="other"):
        client.get_index(endpoint_name="other", index_name=INDEX)
    assert client.get_index(endpoint_name="ep", index_name=INDEX).describe()["endpoint_name"] == "ep"


def test_long_results_page_and_the_clients_follow_next_page_token(emulator, all_columns_index, monkeypatch):
    from llmforge_emulator import vector_search_pages

    monkeypatch.setattr(vector_search_pages, "PAGE_SIZE", 1)
    res = all_columns_index.similarity_search(columns=["id"], query_text="policy", num_results=3)
    assert res["result"]["row_count"] == 3 and len(res["result"]["data_array"]) == 3  # three pages joined
    sdk = emulator.workspace("admin").vector_search_indexes
    first = sdk.query_index(index_name=INDEX, columns=["id"], query_text="policy", num_results=3)
    assert first.result.row_count == 1 and first.next_page_token
    second = sdk.query_next_page(index_name=INDEX, endpoint_name="ep", page_token=first.next_page_token)
    assert second.result.row_count == 1 and second.next_page_token
    from databricks.sdk.errors import BadRequest

    with pytest.raises(BadRequest, match="page_token"):  # a token is good once
        sdk.query_next_page(index_name=INDEX, endpoint_name="ep", page_token=first.next_page_token)


def test_scores_are_non_negative_and_the_default_threshold_is_zero(emulator, all_columns_index):
    res = all_columns_index.similarity_search(
        columns=["id"], query_text="zzz qqq unrelated", num_results=4, score_threshold=-5.0
    )
    assert all(row[-1] >= 0.0 for row in res["result"]["data_array"])
    default = all_columns_index.similarity_search(
        columns=["id"], query_text="zzz qqq unrelated", num_results=4
    )
    assert all(row[-1] >= 0.0 for row in default["result"]["data_array"])
    high = all_columns_index.similarity_search(
        columns=["id"], query_text="vacation", num_results=4, score_threshold=0.99
    )
    assert all(row[-1] >= 0.99 for row in high["result"]["data_array"])
