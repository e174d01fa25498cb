"""Search: direct access, query types, filters, identity (no leak), masks and bad input."""

import pytest
from fixtures.data import DOCS
from fixtures.index import ENDPOINT, INDEX

from llmforge.errors import DataError, NotFoundError, PermissionDeniedError
from llmforge.vector_filters import FilterError

SCHEMA = {"id": "long", "text": "string", "team": "string", "year": "integer", "vec": "array<float>"}


def ids_of(resp):
    return [row[0] for row in resp["result"]["data_array"]]


@pytest.fixture
def direct(forge):
    idx = forge.vector_search.create_direct_access_index(ENDPOINT, "main.vec.direct", "id", 3, "vec", SCHEMA)
    idx.upsert(
        [
            {"id": 1, "text": "red apples", "team": "a", "year": 2021, "vec": [1, 0, 0]},
            {"id": 2, "text": "green pears", "team": "b", "year": 2023, "vec": [0, 1, 0]},
            {"id": 3, "text": "blue berries", "team": "a", "year": 2025, "vec": [0, 0, 1]},
            {"id": 4, "text": "red cherries", "team": "b", "year": 2024, "vec": [0.9, 0.1, 0]},
        ]
    )
    return idx


def test_direct_access_upsert_delete_and_filters(direct):
    resp = direct.similarity_search(["id", "team"], query_vector=[1, 0, 0], num_results=2)
    assert ids_of(resp) == [1, 4] and resp["result"]["data_array"][0][-1] == pytest.approx(1.0)
    not_a = direct.similarity_search(["id"], query_vector=[1, 0, 0], filters={"team NOT": "a"})
    assert ids_of(not_a) == [4, 2]
    assert ids_of(direct.similarity_search(["id"], query_vector=[1, 0, 0], filters="year >= 2024")) == [4, 3]
    assert ids_of(direct.similarity_search(["id"], query_vector=[1, 0, 0], score_threshold=0.5)) == [1, 4]
    direct.upsert([{"id": 4, "text": "red cherries", "team": "b", "year": 2024, "vec": [0, 0, 1]}])
    assert ids_of(direct.similarity_search(["id"], query_vector=[1, 0, 0], num_results=1)) == [1]
    assert direct.delete([1, 99])["status"] == "SUCCESS"
    assert direct.describe()["status"]["indexed_row_count"] == 3
    kw = direct.similarity_search(
        ["id", "text"], query_text="red", query_vector=[0, 1, 0], query_type="HYBRID", num_results=2
    )
    assert set(ids_of(kw)) == {4, 2}  # keyword "red" and the nearest vector, fused
    full = direct.similarity_search(["id"], query_text="berries", query_type="FULL_TEXT")
    assert ids_of(full) == [3]
    scan = direct.scan(num_results=2)
    assert [f["fields"][0]["value"] for f in scan["data"]] == [{"number_value": 2}, {"number_value": 3}]
    assert scan["last_primary_key"] == 3


def test_direct_access_bad_input(forge, direct):
    with pytest.raises(DataError, match="has 2 dimensions; this index expects 3"):
        direct.similarity_search(["id"], query_vector=[1, 0])
    with pytest.raises(DataError, match="has 2 dimensions"):
        direct.upsert([{"id": 9, "vec": [1, 0]}])
    with pytest.raises(DataError, match="no embedding model; pass query_vector"):
        direct.similarity_search(["id"], query_text="apples")
    with pytest.raises(DataError, match="not in the index schema"):
        direct.upsert([{"id": 9, "vec": [1, 0, 0], "colour": "red"}])
    with pytest.raises(DataError, match="direct-access index; use upsert"):
        direct.sync()
    with pytest.raises(DataError, match="non-zero"):
        direct.similarity_search(["id"], query_vector=[0, 0, 0])
    with pytest.raises(DataError, match="array<float>"):
        forge.vector_search.create_direct_access_index(
            ENDPOINT, "main.vec.bad", "id", 3, "vec", {"id": "long", "vec": "string"}
        )
    with pytest.raises(DataError, match="positive integer"):
        forge.vector_search.create_direct_access_index(ENDPOINT, "main.vec.bad", "id", 0, "vec", SCHEMA)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_results": 0}, DataError, "num_results must be an integer from 1 to 10000"),
        ({"num_results": 10_001}, DataError, "from 1 to 10000"),
        ({"num_results": 201, "query_type": "HYBRID"}, DataError, "from 1 to 200"),
        ({"num_results": "5"}, DataError, "num_results"),
        ({"query_type": "SEMANTIC"}, DataError, "query_type"),
        ({"query_text": "   "}, DataError, "query_text is empty"),
        ({"query_text": None}, DataError, "needs query_text or query_vector"),
        (
            {"query_text": None, "query_vector": [0.1] * 384, "query_type": "HYBRID"},
            DataError,
            "needs query_text",
        ),
        ({"query_vector": [0.1] * 5}, DataError, "has 5 dimensions; this index expects 384"),
        ({"filters": {"salary_band": "x"}}, FilterError, r"\['salary_band'\].*not synced"),
        ({"filters": {"department ~": "x"}}, FilterError, "malformed filter key"),
        ({"filters": {"department": []}}, FilterError, "empty list"),
        ({"columns": ["document_id", "ssn"]}, DataError, r"cannot be returned.*choose from"),
    ],
)
def test_bad_queries_name_the_problem(docs_index, kwargs, error, message):
    args = {"columns": ["document_id"], "query_text": "leave", **kwargs}
    with pytest.raises(error, match=message):
        docs_index.similarity_search(**args)


def test_unknown_index_and_bad_name(forge):
    with pytest.raises(NotFoundError, match="'main.nope.idx' does not exist"):
        forge.vector_search.get_index(ENDPOINT, "main.nope.idx")
    with pytest.raises(DataError, match="index name"):
        forge.vector_search.get_index(ENDPOINT, "../etc")


LEAK_FILTERS = [
    None,
    {"department": ["hr", "engineering"]},
    {"department": "hr"},
    {"department NOT": "engineering"},
    {"department OR document_id": ["hr", "d-hr-1"]},
    {"document_id": "d-hr-1"},
    [{"department": "hr"}, {"department NOT": "x"}],
    "department IN ('hr', 'engineering')",
    "department = 'hr' OR document_id = 'd-hr-1'",
]


@pytest.mark.parametrize("query_type", ["ANN", "HYBRID", "FULL_TEXT"])
def test_no_leak_across_departments(docs_index, query_type):
    """alice (engineering) asks about the HR document: no filter she sends can reach it."""
    alice = docs_index.as_user("alice")
    for filters in LEAK_FILTERS:
        resp = alice.similarity_search(
            ["document_id", "department"],
            query_text="How long is parental leave?",
            num_results=10,
            filters=filters,
            query_type=query_type,
        )
        depts = {row[1] for row in resp["result"]["data_array"]}
        assert depts <= {"engineering", "all"}, (filters, depts)
        assert "d-hr-1" not in ids_of(resp)
    # the same question through the per-user keyword argument of a handle acting as admin
    resp = docs_index.similarity_search(
        ["document_id"], query_text="parental leave", num_results=10, query_type=query_type, user="alice"
    )
    assert "d-hr-1" not in ids_of(resp) and "d-fin-1" not in ids_of(resp)


def test_mask_cache_is_not_shared_across_identities(docs_index):
    admin_hit = docs_index.similarity_search(
        ["document_id"], query_text="parental leave", filters={"department": "hr"}, num_results=3
    )
    assert ids_of(admin_hit) == ["d-hr-1"]  # admin is exempt; this fills the mask cache
    alice = docs_index.similarity_search(
        ["document_id"],
        query_text="parental leave",
        filters={"department": "hr"},
        num_results=3,
        user="alice",
    )
    assert ids_of(alice) == []
    bob = docs_index.similarity_search(
        ["document_id"], query_text="parental leave", filters={"department": "hr"}, num_results=3, user="bob"
    )
    assert ids_of(bob) == ["d-hr-1"]


def test_masks_apply_to_returned_columns_and_filters(docs_index):
    bob = docs_index.similarity_search(
        ["document_id", "salary"], query_text="parental leave", num_results=1, user="bob"
    )
    assert bob["result"]["data_array"][0][1] == "90000"  # hr sees salaries
    carol = docs_index.similarity_search(
        ["document_id", "salary"], query_text="office opening hours", num_results=1, user="carol"
    )
    assert carol["result"]["data_array"][0][:2] == ["d-all-1", None]  # NULL stays NULL
    alice = docs_index.similarity_search(
        ["document_id", "salary"], query_text="build tool", num_results=1, user="alice"
    )
    assert alice["result"]["data_array"][0][:2] == ["d-eng-2", "[REDACTED]"]
    with pytest.raises(FilterError, match="masked for alice"):
        docs_index.similarity_search(["document_id"], query_text="x", filters={"salary >": "1"}, user="alice")
    scan = docs_index.scan(num_results=10, user="alice")
    seen = {f["fields"][0]["value"]["string_value"] for f in scan["data"]}
    assert seen == {"d-eng-1", "d-eng-2", "d-all-1"}


def test_select_privilege_required(gov, docs_index):
    gov.catalog.add_principal("mallory", groups=[], departments=["hr"])
    gov.catalog.revoke("SELECT", "main.knowledge", "account users")
    with pytest.raises(PermissionDeniedError, match="SELECT"):
        docs_index.similarity_search(["document_id"], query_text="leave", user="mallory")


def test_row_filter_on_unsynced_column_fails_closed(gov):
    idx = gov.vector_search.create_delta_sync_index(
        ENDPOINT, DOCS, "main.knowledge.thin_idx", "document_id", "content"
    )
    with pytest.raises(FilterError, match="does not sync"):
        idx.similarity_search(["document_id"], query_text="leave", user="alice")
    assert ids_of(idx.similarity_search(["document_id"], query_text="leave", num_results=1)) == ["d-hr-1"]
    assert INDEX not in [i["name"] for i in gov.vector_search.list_indexes()]
