"""DatabricksVectorSearch (the real VectorSearchClient underneath) against the emulator."""

from __future__ import annotations

import pytest

from llmforge.errors import DataError, NotFoundError

INDEX = "main.rag.docs_idx"


@pytest.fixture
def dbx_index(dbx_forge, rag_table):
    vs = dbx_forge.vector_search
    vs.create_endpoint("ep")
    return vs.create_delta_sync_index(
        endpoint_name="ep",
        source_table_name=rag_table,
        index_name=INDEX,
        primary_key="id",
        embedding_source_column="text",
        columns_to_sync=["id", "text", "dept"],
    )


def test_same_api_as_the_local_index(dbx_forge, dbx_index):
    from llmforge_databricks.vector_search import DatabricksVectorSearch

    vs = dbx_forge.vector_search
    assert isinstance(vs, DatabricksVectorSearch)
    desc = dbx_index.describe()
    assert desc["status"]["indexed_row_count"] == 4
    assert (
        desc["delta_sync_index_spec"]["embedding_source_columns"][0]["embedding_model_endpoint_name"]
        == "databricks-gte-large-en"
    )  # the option's default: the service needs an endpoint
    assert [i["name"] for i in vs.list_indexes()] == [INDEX]
    assert vs.index_exists(index_name=INDEX) and not vs.index_exists(index_name="main.rag.none")
    assert vs.get_endpoint("ep")["endpoint_status"]["state"] == "ONLINE"


def test_similarity_search_defaults_to_all_columns_like_local(dbx_index):
    res = dbx_index.similarity_search(query_text="paid leave days", num_results=1)
    assert [c["name"] for c in res["manifest"]["columns"]] == ["id", "text", "dept", "score"]
    assert res["result"]["data_array"][0][0] == 1


def test_user_narrows_results_with_the_catalog_row_filter(dbx_index):
    for filters in (None, {"dept": ["engineering", "hr", "all"]}, {"id >=": 0}):
        res = dbx_index.similarity_search(
            columns=["id", "dept"], query_text="Project Helix", num_results=4, filters=filters, user="bob"
        )
        assert {row[1] for row in res["result"]["data_array"]} <= {"hr", "all"}, filters
    res = dbx_index.as_user("alice").similarity_search(columns=["dept"], query_text="Helix", num_results=4)
    assert {row[0] for row in res["result"]["data_array"]} == {"engineering", "all"}


def test_client_errors_become_llmforge_errors(dbx_forge, dbx_index):
    with pytest.raises(NotFoundError, match="main.rag.missing"):
        dbx_forge.vector_search.get_index(endpoint_name="ep", index_name="main.rag.missing")
    with pytest.raises(DataError, match="Databricks refused to query index"):
        dbx_index.similarity_search(columns=["id"], query_text="x", num_results=0)


def test_direct_access_upsert_delete_and_sync(dbx_forge, dbx_index):
    vs = dbx_forge.vector_search
    idx = vs.create_direct_access_index(
        endpoint_name="ep",
        index_name="main.rag.vecs",
        primary_key="id",
        embedding_dimension=2,
        embedding_vector_column="v",
        schema={"id": "integer", "tag": "string", "v": "array<float>"},
    )
    assert idx.upsert([{"id": 7, "tag": "a", "v": [1.0, 0.0]}])["status"] == "SUCCESS"
    res = idx.similarity_search(query_vector=[1.0, 0.0], num_results=1)
    assert [c["name"] for c in res["manifest"]["columns"]] == ["id", "tag", "score"]
    assert res["result"]["data_array"][0][:2] == [7, "a"]
    idx.delete([7])
    assert idx.scan()["data"] == []
    dbx_index.sync()
    vs.delete_index(index_name="main.rag.vecs")
    assert [i["name"] for i in vs.list_indexes("ep")] == [INDEX]
