"""Lineage edges, traversal both ways, row-key lineage."""

from __future__ import annotations

import pytest

from llmforge.errors import ConfigError


@pytest.fixture
def chain(catalog):
    catalog.record_lineage(
        ["table:main.knowledge.documents@3"],
        "table:ml.llm_training.pairs@0",
        job="prepare_training",
        run_id=None,
        row_keys={"d-1": ["d-1#0", "d-1#1"], "d-2": "d-2#0"},
    )
    catalog.record_lineage(
        ["table:ml.llm_training.pairs@0", "table:ml.llm_training.extra@2"],
        "mlflow_run:r1",
        job="finetune",
        run_id="r1",
    )
    catalog.record_lineage(["mlflow_run:r1"], "model:assistant/1", job="register", run_id="r1")
    catalog.record_lineage(["table:main.knowledge.documents@4"], "index:main.knowledge.idx@1", job="sync")
    return catalog


def test_downstream_walks_to_the_model(chain):
    edges = chain.downstream("table:main.knowledge.documents@3")
    assert [(e["target"], e["depth"]) for e in edges] == [
        ("table:ml.llm_training.pairs@0", 1),
        ("mlflow_run:r1", 2),
        ("model:assistant/1", 3),
    ]
    assert edges[1]["job"] == "finetune" and edges[1]["run_id"] == "r1"
    assert [e["target"] for e in chain.downstream("table:main.knowledge.documents@3", depth=1)] == [
        "table:ml.llm_training.pairs@0"
    ]


def test_upstream_walks_back_to_every_source(chain):
    edges = chain.upstream("model:assistant/1")
    assert {e["source"] for e in edges} == {
        "mlflow_run:r1",
        "table:ml.llm_training.pairs@0",
        "table:ml.llm_training.extra@2",
        "table:main.knowledge.documents@3",
    }
    assert max(e["depth"] for e in edges) == 3


def test_a_table_node_without_version_matches_every_version(chain):
    targets = {e["target"] for e in chain.downstream("table:main.knowledge.documents", depth=1)}
    assert targets == {"table:ml.llm_training.pairs@0", "index:main.knowledge.idx@1"}
    # "_" in a name is not a LIKE wildcard: a similar name must not match
    chain.record_lineage(["table:main.knowledgeXdocuments@1"], "index:x@1", job="j")
    assert "index:x@1" not in {e["target"] for e in chain.downstream("table:main.knowledge_documents")}


def test_row_keys_both_ways(chain):
    down = chain.downstream_rows("table:main.knowledge.documents@3", "d-1")
    assert [(r["node"], r["key"]) for r in down] == [
        ("table:ml.llm_training.pairs@0", "d-1#0"),
        ("table:ml.llm_training.pairs@0", "d-1#1"),
    ]
    up = chain.upstream_rows("table:ml.llm_training.pairs@0", "d-2#0")
    assert [(r["node"], r["key"], r["job"]) for r in up] == [
        ("table:main.knowledge.documents@3", "d-2", "prepare_training")
    ]
    assert chain.upstream_rows("table:ml.llm_training.pairs@0", "nope") == []


def test_cycles_do_not_loop(catalog):
    catalog.record_lineage(["table:a.b.c@1"], "table:a.b.d@1", job="j")
    catalog.record_lineage(["table:a.b.d@1"], "table:a.b.c@1", job="j")
    assert len(catalog.downstream("table:a.b.c@1")) == 2


@pytest.mark.parametrize("node", ["documents", "table:", "file:/x", "table:a b"])
def test_bad_nodes_are_rejected(catalog, node):
    with pytest.raises(ConfigError, match="lineage node"):
        catalog.record_lineage([node], "model:m/1", job="j")


def test_a_job_is_required(catalog):
    with pytest.raises(ConfigError, match="job"):
        catalog.record_lineage(["table:a.b.c@1"], "model:m/1", job="")
