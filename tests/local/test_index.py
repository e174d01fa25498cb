"""Delta-sync indexes: creation, search shape, persistence, incremental sync, crash safety."""

import pyarrow as pa
import pytest
from fixtures.data import DOCS
from fixtures.index import ENDPOINT, INDEX

import llmforge
from llmforge.errors import AlreadyExistsError, DataError, NotFoundError


def ids_of(resp):
    return [row[0] for row in resp["result"]["data_array"]]


def test_create_describe_and_search_shape(docs_index):
    d = docs_index.describe()
    assert d["index_type"] == "DELTA_SYNC"
    assert d["status"]["indexed_row_count"] == 5 and d["status"]["ready"]
    assert d["synced_version"] == 0 and d["delta_sync_index_spec"]["source_table"] == DOCS
    resp = docs_index.similarity_search(
        columns=["document_id", "content"], query_text="How long is parental leave?", num_results=2
    )
    assert resp["manifest"]["columns"] == [{"name": "document_id"}, {"name": "content"}, {"name": "score"}]
    assert resp["manifest"]["column_count"] == 3
    assert resp["result"]["row_count"] == 2
    top = resp["result"]["data_array"][0]
    assert top[0] == "d-hr-1" and isinstance(top[-1], float) and 0 < top[-1] <= 1
    assert top[-1] >= resp["result"]["data_array"][1][-1]


def test_list_get_delete(gov, docs_index):
    vs = gov.vector_search
    assert vs.list_indexes(ENDPOINT) == [
        {"name": INDEX, "endpoint_name": ENDPOINT, "primary_key": "document_id", "index_type": "DELTA_SYNC"}
    ]
    assert vs.get_endpoint(ENDPOINT)["num_indexes"] == 1
    with pytest.raises(AlreadyExistsError):
        vs.create_delta_sync_index(ENDPOINT, DOCS, INDEX, "document_id", "content")
    vs.delete_index(ENDPOINT, INDEX)
    assert vs.list_indexes() == []
    with pytest.raises(NotFoundError, match="does not exist"):
        vs.get_index(ENDPOINT, INDEX)


def test_reopen_needs_no_reembedding(gov, docs_index, encode_calls):
    other = llmforge.connect(backend="local", home=str(gov.home), user="admin")
    idx = other.vector_search.get_index(ENDPOINT, INDEX)
    assert idx.describe()["status"]["indexed_row_count"] == 5
    resp = idx.similarity_search(["document_id"], query_text="Which build tool do we use?", num_results=1)
    assert ids_of(resp) == ["d-eng-2"]
    assert encode_calls == [["Which build tool do we use?"]]  # only the query was embedded


def test_incremental_sync_inserts_updates_deletes(gov, docs_index, encode_calls):
    t = gov.table(DOCS)
    t.append(
        pa.table(
            {
                "document_id": ["d-eng-3"],
                "department": ["engineering"],
                "content": ["The cafeteria serves ramen on Fridays."],
                "salary": ["1"],
            }
        )
    )
    t.merge(
        pa.table(
            {
                "document_id": ["d-eng-1"],
                "department": ["engineering"],
                "content": ["Project Helix slipped to Q4."],
                "salary": ["150000"],
            }
        ),
        key="document_id",
    )
    t.delete("document_id = 'd-fin-1'")
    stats = docs_index.sync()
    assert (stats["inserted"], stats["updated"], stats["deleted"]) == (1, 1, 1)
    assert stats["mode"] == "changes" and stats["synced_version"] == t.version
    assert sorted(x for c in encode_calls for x in c) == [
        "Project Helix slipped to Q4.",
        "The cafeteria serves ramen on Fridays.",
    ]
    d = docs_index.describe()
    assert d["status"]["indexed_row_count"] == 5 and d["synced_version"] == t.version
    resp = docs_index.similarity_search(["document_id", "content"], query_text="Helix release quarter")
    assert resp["result"]["data_array"][0][:2] == ["d-eng-1", "Project Helix slipped to Q4."]
    assert "d-fin-1" not in ids_of(
        docs_index.similarity_search(["document_id"], query_text="travel", num_results=10)
    )
    before = d["index_version"]
    again = docs_index.sync()  # idempotent: nothing new
    assert (again["inserted"], again["updated"], again["deleted"]) == (0, 0, 0)
    assert docs_index.describe()["index_version"] == before


def test_sync_without_change_feed_diffs_by_key(gov, docs_index, monkeypatch, encode_calls):
    from llmforge_local.data.tables import Table

    def no_feed(self, *a, **k):
        raise DataError("no change data feed")

    monkeypatch.setattr(Table, "changes", no_feed)
    t = gov.table(DOCS)
    t.delete("document_id = 'd-eng-2'")
    t.merge(
        pa.table(
            {
                "document_id": ["d-hr-1"],
                "department": ["hr"],
                "content": ["Parental leave is 20 weeks."],
                "salary": ["90000"],
            }
        ),
        key="document_id",
    )
    stats = docs_index.sync()
    assert stats["mode"] == "diff"
    assert (stats["inserted"], stats["updated"], stats["deleted"], stats["unchanged"]) == (0, 1, 1, 3)
    assert [x for c in encode_calls for x in c] == ["Parental leave is 20 weeks."]
    assert docs_index.describe()["status"]["indexed_row_count"] == 4


def test_crash_mid_sync_leaves_old_version(gov, docs_index, monkeypatch):
    from llmforge_local.index.store import IndexStore

    old = docs_index.describe()
    gov.table(DOCS).delete("document_id = 'd-eng-2'")

    def crash(self, state):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(IndexStore, "write_state", crash)
    with pytest.raises(KeyboardInterrupt):
        docs_index.sync()
    monkeypatch.undo()
    reopened = llmforge.connect(backend="local", home=str(gov.home), user="admin")
    idx = reopened.vector_search.get_index(ENDPOINT, INDEX)
    assert idx.describe()["index_version"] == old["index_version"]
    assert idx.describe()["status"]["indexed_row_count"] == 5
    assert idx.sync()["deleted"] == 1
    assert idx.describe()["status"]["indexed_row_count"] == 4
    folder = gov.home / "indexes" / INDEX
    files = sorted(p.name for p in folder.iterdir() if p.name.startswith(("rows", "vec")))
    assert len(files) == 2  # the crashed generation's files were replaced, old ones removed


def test_long_documents_are_chunked_with_document_key(gov):
    forge = llmforge.connect(
        backend="local",
        home=str(gov.home),
        user="admin",
        index={"name": "local", "options": {"chunk_words": 12, "chunk_overlap": 2}},
    )
    long_text = (
        "The quarterly report covers revenue and hiring. " * 3
        + "The secret launch code for Falcon is orange-seven. " * 2
    )
    t = forge.table("main.knowledge.long_docs")
    t.create(pa.table({"id": [1, 2], "body": [long_text, "A short note about lunch."]}), primary_key="id")
    idx = forge.vector_search.create_delta_sync_index(
        ENDPOINT, "main.knowledge.long_docs", "main.knowledge.long_idx", "id", "body"
    )
    assert idx.describe()["status"]["indexed_row_count"] > 2  # chunks, not documents
    assert idx.describe()["indexed_document_count"] == 2
    resp = idx.similarity_search(["id", "_chunk_id", "body"], query_text="Falcon launch code", num_results=1)
    doc_id, chunk_id, text, _ = resp["result"]["data_array"][0]
    assert doc_id == 1 and chunk_id > 0 and "Falcon" in text and len(text.split()) <= 12
    t.delete("id = 1")
    assert idx.sync()["deleted"] == 1
    assert idx.describe()["status"]["indexed_row_count"] == 1  # every chunk of the document went


def test_hnsw_matches_exact_on_small_index(gov, docs_index):
    hnsw = gov.vector_search.create_delta_sync_index(
        ENDPOINT,
        DOCS,
        "main.knowledge.docs_hnsw",
        "document_id",
        "content",
        columns_to_sync=["department"],
        ann="hnsw",
    )
    assert hnsw.describe()["ann"] == "hnsw"
    for q in ("parental leave", "build tool", "office hours"):
        a = docs_index.similarity_search(["document_id"], query_text=q, num_results=3)
        b = hnsw.similarity_search(["document_id"], query_text=q, num_results=3)
        assert ids_of(a) == ids_of(b)
    filtered = hnsw.similarity_search(
        ["document_id", "department"],
        query_text="leave",
        num_results=5,
        filters={"department": "engineering"},
    )
    assert {r[1] for r in filtered["result"]["data_array"]} == {"engineering"}


def test_continuous_pipeline_syncs_before_each_query(gov):
    idx = gov.vector_search.create_delta_sync_index(
        ENDPOINT,
        DOCS,
        "main.knowledge.live_idx",
        "document_id",
        "content",
        pipeline_type="CONTINUOUS",
        columns_to_sync=["department"],
    )
    gov.table(DOCS).append(
        pa.table(
            {
                "document_id": ["d-new"],
                "department": ["all"],
                "content": ["Bicycles can be parked in the basement."],
                "salary": [None],
            },
            schema=gov.table(DOCS).schema,
        )
    )
    resp = idx.similarity_search(["document_id"], query_text="where to park a bicycle", num_results=1)
    assert ids_of(resp) == ["d-new"]


def test_a_commit_elsewhere_is_seen_by_cached_handles(gov, docs_index):
    other = llmforge.connect(backend="local", home=str(gov.home), user="admin")
    reader = other.vector_search.get_index(ENDPOINT, INDEX)
    assert "d-hr-1" in ids_of(reader.similarity_search(["document_id"], query_text="parental leave"))
    gov.table(DOCS).delete("document_id = 'd-hr-1'")
    docs_index.sync()  # a different component instance (another process, in effect) commits
    assert "d-hr-1" not in ids_of(reader.similarity_search(["document_id"], query_text="parental leave"))
    assert reader.describe()["index_version"] == docs_index.describe()["index_version"]
