"""The real databricks-vectorsearch client against the emulator: index lifecycle, queries,
filters, identity, direct access, and the seed's Step 3 failures reproduced."""

from __future__ import annotations

import pytest

INDEX = "main.rag.docs_idx"


@pytest.fixture
def index(emulator, rag_table):
    client = emulator.vs_client("admin")
    client.create_endpoint(name="ep", endpoint_type="STANDARD")
    idx = client.create_delta_sync_index(
        endpoint_name="ep",
        source_table_name=rag_table,
        index_name=INDEX,
        primary_key="id",
        pipeline_type="TRIGGERED",
        embedding_source_column="text",
        embedding_model_endpoint_name="databricks-gte-large-en",
        columns_to_sync=["id", "text", "dept"],
    )
    grant_index(emulator, INDEX, "SELECT", "account users")
    return idx


def grant_index(emulator, index, privilege, principal):
    """A grant on the index itself, through the permissions API (querying needs SELECT on it)."""
    from databricks.sdk.service.catalog import PermissionsChange, Privilege

    emulator.workspace("admin").grants.update(
        securable_type="table",
        full_name=index,
        changes=[PermissionsChange(principal=principal, add=[Privilege(privilege)])],
    )


def _rows(result):
    names = [c["name"] for c in result["manifest"]["columns"]]
    return [dict(zip(names, row, strict=True)) for row in result["result"]["data_array"]]


def test_create_describe_and_wait_like_the_service(emulator, index):
    index.wait_until_ready()  # returns at once: detailed_state contains ONLINE
    desc = index.describe()
    assert desc["status"]["ready"] is True
    assert desc["status"]["detailed_state"] == "ONLINE_NO_PENDING_UPDATE"
    assert desc["status"]["indexed_row_count"] == 4
    assert desc["status"]["index_url"] == f"{emulator.url}/api/2.0/vector-search/indexes/{INDEX}"
    assert desc["delta_sync_index_spec"]["source_table"] == "main.rag.docs"
    again = emulator.vs_client().get_index(endpoint_name="ep", index_name=INDEX)
    assert again.describe()["name"] == INDEX
    listed = emulator.vs_client().list_indexes("ep")["vector_indexes"]
    assert [i["name"] for i in listed] == [INDEX]


def test_query_rows_are_lists_in_manifest_order_with_score_last(index):
    res = index.similarity_search(columns=["id", "text"], query_text="how many vacation days", num_results=2)
    names = [c["name"] for c in res["manifest"]["columns"]]
    assert names == ["id", "text", "score"]
    assert res["manifest"]["column_count"] == 3
    assert res["result"]["row_count"] == 2
    first = res["result"]["data_array"][0]
    assert isinstance(first, list) and first[0] == 1 and isinstance(first[-1], float)


def test_seed_step3_code_fails_as_written(index):
    # the seed calls similarity_search without `columns`: the client refuses before any request
    with pytest.raises(TypeError):
        index.similarity_search(query_text="vacation policy", num_results=3)
    res = index.similarity_search(columns=["id", "text"], query_text="vacation policy", num_results=3)
    with pytest.raises(TypeError):  # rows are lists, so the seed's r["content"] fails
        [r["content"] for r in res["result"]["data_array"]]


def test_filters_json_is_applied_and_the_sdk_post_path_works(emulator, index):
    res = index.similarity_search(
        columns=["id", "dept"], query_text="policy", num_results=4, filters={"dept": ["all"]}
    )
    assert {r["dept"] for r in _rows(res)} == {"all"}
    ws = emulator.workspace()
    sdk = ws.vector_search_indexes.query_index(
        index_name=INDEX,
        columns=["id", "dept"],
        query_text="policy",
        num_results=4,
        filters_json='{"dept NOT": "hr"}',
    )
    assert sdk.result.row_count == 2
    assert {row[1] for row in sdk.result.data_array} == {"engineering", "all"}


def test_row_filter_is_anded_with_any_request_filter(emulator, index):
    bob = emulator.vs_client("bob").get_index(endpoint_name="ep", index_name=INDEX)
    for filters in (
        None,
        {"dept": ["engineering", "hr", "all"]},
        {"dept": "engineering"},
        {"dept NOT": "hr"},
        {"id >=": 0},
    ):
        res = bob.similarity_search(
            columns=["id", "dept"], query_text="Project Helix owner", num_results=4, filters=filters
        )
        assert "engineering" not in {r["dept"] for r in _rows(res)}, filters
    alice = emulator.vs_client("alice").get_index(endpoint_name="ep", index_name=INDEX)
    res = alice.similarity_search(columns=["id", "dept"], query_text="Project Helix owner", num_results=4)
    assert {r["dept"] for r in _rows(res)} == {"engineering", "all"}


def test_bad_query_input_is_a_clear_400(emulator, index):
    from databricks.vector_search.exceptions import BadRequest, NotFound

    with pytest.raises(BadRequest, match="num_results"):
        index.similarity_search(columns=["id"], query_text="x", num_results=0)
    with pytest.raises(BadRequest):
        index.similarity_search(columns=["id"], query_text="x", filters={"dept BETWEEN": 1})
    with pytest.raises(BadRequest):
        index.similarity_search(columns=["nope"], query_text="x")
    r = emulator.request(
        "GET",
        f"/api/2.0/vector-search/indexes/{INDEX}/query",
        json={"columns": ["id"], "query_text": "x", "filters_json": "{oops"},
    )
    assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    with pytest.raises(NotFound):
        emulator.vs_client().get_index(endpoint_name="ep", index_name="main.rag.missing")


def test_sync_picks_up_source_table_changes(emulator, forge, index):
    import pyarrow as pa

    forge.table("main.rag.docs").append(
        pa.Table.from_pylist([{"id": 5, "text": "Expense reports are due monthly.", "dept": "all"}])
    )
    forge.table("main.rag.docs").delete("id = 1")
    index.sync()
    assert index.describe()["status"]["indexed_row_count"] == 4
    res = index.similarity_search(columns=["id"], query_text="expense reports", num_results=1)
    assert res["result"]["data_array"][0][0] == 5


def test_direct_access_upsert_query_scan_delete(emulator):
    client = emulator.vs_client()
    client.create_endpoint(name="ep")
    idx = client.create_direct_access_index(
        endpoint_name="ep",
        index_name="main.rag.vecs",
        primary_key="id",
        embedding_dimension=3,
        embedding_vector_column="vec",
        schema={"id": "integer", "label": "string", "vec": "array<float>"},
    )
    assert idx.describe()["status"]["detailed_state"] == "ONLINE_DIRECT_ACCESS"
    up = idx.upsert(
        [{"id": 1, "label": "x", "vec": [1.0, 0.0, 0.0]}, {"id": 2, "label": "y", "vec": [0.0, 1.0, 0.0]}]
    )
    assert up == {"status": "SUCCESS", "result": {"success_row_count": 2, "failed_primary_keys": []}}
    res = idx.similarity_search(columns=["id", "label"], query_vector=[0.9, 0.1, 0.0], num_results=1)
    assert res["result"]["data_array"][0][:2] == [1, "x"]
    page = idx.scan(num_results=10)
    assert [f["fields"][0]["value"] for f in page["data"]] == [{"number_value": 1}, {"number_value": 2}]
    emulator.workspace().vector_search_indexes.delete_data_vector_index(
        index_name="main.rag.vecs", primary_keys=["1"]
    )
    assert idx.describe()["status"]["indexed_row_count"] == 1
    client.delete_index(index_name="main.rag.vecs")
    assert client.list_indexes("ep") == {"vector_indexes": []}


def test_stopped_endpoint_rejects_queries_until_started(emulator, index):
    from databricks.vector_search.exceptions import BadRequest

    client = emulator.vs_client()
    client.stop_endpoint("ep")
    with pytest.raises(BadRequest, match="STOPPED"):
        index.similarity_search(columns=["id"], query_text="vacation")
    client.start_endpoint("ep")
    assert index.similarity_search(columns=["id"], query_text="vacation")["result"]["row_count"] > 0


def test_deleting_an_endpoint_with_indexes_is_refused(emulator, index):
    from databricks.vector_search.exceptions import BadRequest

    with pytest.raises(BadRequest, match="delete them first"):
        emulator.vs_client().delete_endpoint("ep")


def test_creating_an_index_needs_modify_on_its_schema_and_select_on_the_source(emulator, forge, rag_table):
    from databricks.vector_search.exceptions import PermissionDenied

    client = emulator.vs_client("bob")
    client.create_endpoint(name="ep2")

    def create():
        client.create_delta_sync_index(
            endpoint_name="ep2",
            source_table_name=rag_table,
            index_name="main.rag.bob_idx",
            primary_key="id",
            pipeline_type="TRIGGERED",
            embedding_source_column="text",
            embedding_model_endpoint_name="databricks-gte-large-en",
        )

    with pytest.raises(PermissionDenied, match="MODIFY"):
        create()
    forge.catalog.grant("MODIFY", "main.rag", "bob")
    forge.catalog.revoke("SELECT", rag_table, "account users")
    with pytest.raises(PermissionDenied, match="SELECT"):
        create()
    assert not forge.vector_search.index_exists(index_name="main.rag.bob_idx")


def test_only_the_creator_or_schema_modifiers_change_an_index(emulator, forge, index):
    from databricks.vector_search.exceptions import PermissionDenied

    client = emulator.vs_client()
    vecs = client.create_direct_access_index(
        endpoint_name="ep",
        index_name="main.rag.vecs",
        primary_key="id",
        embedding_dimension=2,
        embedding_vector_column="v",
        schema={"id": "integer", "v": "array<float>"},
    )
    vecs.upsert([{"id": 1, "v": [1.0, 0.0]}])
    bob = emulator.vs_client("bob")
    with pytest.raises(PermissionDenied, match="MODIFY"):
        bob.delete_index(index_name=INDEX)
    bob_vecs = bob.get_index(endpoint_name="ep", index_name="main.rag.vecs")
    with pytest.raises(PermissionDenied, match="MODIFY"):
        bob_vecs.upsert([{"id": 2, "v": [0.0, 1.0]}])
    with pytest.raises(PermissionDenied, match="SELECT"):
        bob_vecs.similarity_search(columns=["id"], query_vector=[1.0, 0.0])
    forge.catalog.grant("MODIFY", "main.rag", "bob")
    bob_vecs.upsert([{"id": 2, "v": [0.0, 1.0]}])
    assert vecs.describe()["status"]["indexed_row_count"] == 2
    assert (
        bob.get_index(endpoint_name="ep", index_name=INDEX).similarity_search(
            columns=["id"], query_text="vacation"
        )["result"]["row_count"]
        > 0
    )  # SELECT on the source table


def test_sdk_creates_an_index_through_the_indexes_path(emulator, rag_table):
    from databricks.sdk.service.vectorsearch import (
        DeltaSyncVectorIndexSpecRequest,
        EmbeddingSourceColumn,
        EndpointType,
        PipelineType,
        VectorIndexType,
    )

    ws = emulator.workspace()
    ep = ws.vector_search_endpoints.create_endpoint(name="sdk-ep", endpoint_type=EndpointType.STANDARD)
    ep = ep.result()  # waits for ONLINE
    assert ep.endpoint_status.state.value == "ONLINE"
    ws.vector_search_indexes.create_index(
        name="main.rag.sdk_idx",
        endpoint_name="sdk-ep",
        primary_key="id",
        index_type=VectorIndexType.DELTA_SYNC,
        delta_sync_index_spec=DeltaSyncVectorIndexSpecRequest(
            source_table=rag_table,
            pipeline_type=PipelineType.TRIGGERED,
            columns_to_sync=["id", "text"],
            embedding_source_columns=[
                EmbeddingSourceColumn(name="text", embedding_model_endpoint_name="databricks-gte-large-en")
            ],
        ),
    )
    got = ws.vector_search_indexes.get_index("main.rag.sdk_idx")
    assert got.status.ready and got.status.indexed_row_count == 4
    listed = ws.vector_search_indexes.list_indexes(endpoint_name="sdk-ep")
    assert [i.name for i in listed] == ["main.rag.sdk_idx"]


def test_service_principal_oauth_uses_the_index_url(emulator, index):
    from databricks.vector_search.client import VectorSearchClient

    sp = VectorSearchClient(
        workspace_url=emulator.url,
        service_principal_client_id="bob",
        service_principal_client_secret="tok-bob",
        disable_notice=True,
    )
    idx = sp.get_index(endpoint_name="ep", index_name=INDEX)
    assert idx.index_url == f"{emulator.url}/api/2.0/vector-search/indexes/{INDEX}"
    res = idx.similarity_search(columns=["dept"], query_text="Project Helix", num_results=4)
    assert {row[0] for row in res["result"]["data_array"]} <= {"hr", "all"}  # acts as bob
    bad = VectorSearchClient(
        workspace_url=emulator.url,
        service_principal_client_id="admin",
        service_principal_client_secret="tok-bob",
        disable_notice=True,
    )
    with pytest.raises(Exception, match="invalid_client|Invalid client"):
        bad.get_index(endpoint_name="ep", index_name=INDEX)
