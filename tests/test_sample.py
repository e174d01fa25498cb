"""The sample enterprise corpus: deterministic, complete, and consistent with its questions."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import pytest
from llmforge_local.quickstart.sample import DEFAULT_SEED, generate_corpus, sample_corpus_path

from llmforge.loaders import load_documents
from llmforge.pairs import pairs_table

REPO_COPY = Path(__file__).resolve().parents[1] / "examples" / "enterprise"


@pytest.fixture(scope="module")
def corpus() -> Path:
    return REPO_COPY


@pytest.fixture(scope="module")
def documents(corpus: Path):
    table, report = load_documents(corpus / "docs", on_error="raise")
    assert report.ok
    return {row["document_id"]: row for row in table.to_pylist()}


@pytest.fixture(scope="module")
def questions(corpus: Path) -> list[dict]:
    return [
        json.loads(line) for line in (corpus / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    ]


def test_repo_copy_is_what_the_packaged_generator_writes(corpus: Path, tmp_path: Path):
    committed = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    fresh = generate_corpus(tmp_path / "a")
    assert fresh == committed  # the committed corpus is what the generator writes today
    assert generate_corpus(tmp_path / "b") == fresh
    assert (tmp_path / "a" / "manifest.json").read_bytes() == (tmp_path / "b" / "manifest.json").read_bytes()
    other = generate_corpus(tmp_path / "c", seed=DEFAULT_SEED + 1)
    assert other["files"] != fresh["files"]
    on_disk = sorted(
        p.relative_to(tmp_path / "a").as_posix()
        for p in (tmp_path / "a").rglob("*")
        if p.is_file() and p.name != "manifest.json"
    )
    assert on_disk == sorted(fresh["files"])


def test_regenerating_replaces_docs_and_keeps_other_files(tmp_path: Path):
    generate_corpus(tmp_path, seed=3)
    (tmp_path / "docs" / "stale.md").write_text("old", encoding="utf-8")
    (tmp_path / "README.md").write_text("mine", encoding="utf-8")
    generate_corpus(tmp_path)
    assert not (tmp_path / "docs" / "stale.md").exists()
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "mine"
    assert not any(p.name.startswith(".generating-") for p in tmp_path.iterdir())


def test_generated_files_equal_the_committed_ones(tmp_path: Path):
    made = sample_corpus_path(tmp_path / "corpus")
    files = json.loads((REPO_COPY / "manifest.json").read_text(encoding="utf-8"))["files"]
    for rel in [*files, "manifest.json"]:
        assert (made / rel).read_bytes() == (REPO_COPY / rel).read_bytes(), rel


def test_dest_generates_once(tmp_path: Path):
    target = tmp_path / "cache"
    assert sample_corpus_path(target) == target
    stamp = (target / "manifest.json").stat().st_mtime_ns
    assert sample_corpus_path(target) == target
    assert (target / "manifest.json").stat().st_mtime_ns == stamp


def test_corpus_size_departments_and_sensitive_docs(corpus: Path, documents: dict):
    assert len(documents) >= 240
    per_dept = collections.Counter(d["department"] for d in documents.values())
    assert {"engineering", "hr", "finance", "sales", "all"} <= set(per_dept)
    assert min(per_dept[d] for d in ("engineering", "hr", "finance", "sales")) >= 30
    assert sum(p.stat().st_size for p in (corpus / "docs").rglob("*.md")) < 2_000_000
    bands = [d for d in documents.values() if "salary bands" in d["title"]]
    assert len(bands) >= 10 and {d["department"] for d in bands} == {"hr"}
    assert all("salary" not in d["content"].lower() for d in documents.values() if d["department"] != "hr")
    helix = documents["engineering/project-helix"]
    for fact in (
        "**Owner:** Dana Kim",
        "**Status:** At risk",
        "**Target date:** 2026-09-30",
        "**Budget:** $2.4M",
    ):
        assert fact in helix["content"]


def test_questions_point_at_their_answers(questions: list[dict], documents: dict):
    assert len(questions) >= 60 and len({q["id"] for q in questions}) == len(questions)
    for q in questions:
        doc = documents[q["document_id"]]
        assert q["answer"] in doc["content"], q
        assert q["department"] == doc["department"]
        assert q["visible_to_asker"] == (doc["department"] in (q["asked_by"], "all"))
        assert q["question"].endswith("?") and len(q["answer"]) <= 60
    assert {"engineering", "hr", "finance", "sales", "all"} <= {q["department"] for q in questions}
    cross = [q for q in questions if not q["visible_to_asker"]]
    assert len(cross) >= 5 and {q["department"] for q in cross} >= {"engineering", "hr"}


def test_principals_directory_loads_into_the_catalog(corpus: Path, tmp_path: Path):
    from llmforge.catalog import Catalog

    loaded = {p.name: p for p in Catalog(tmp_path / "catalog.db").load_directory(corpus / "principals.yaml")}
    for dept in ("engineering", "hr", "finance", "sales"):
        assert any(p.departments == {dept} and "admins" not in p.groups for p in loaded.values())
    assert "admins" in loaded["admin"].groups and "admins" in loaded["frank@acme.example"].groups
    assert "hr" in loaded["erin@acme.example"].groups and "hr" not in loaded["alice@acme.example"].groups


def test_every_document_yields_instruction_pairs(documents: dict):
    import pyarrow as pa

    table = pa.Table.from_pylist(list(documents.values()))
    pairs = pairs_table(table, kinds=("fact", "acronym", "heading", "summary"))
    per_doc = collections.Counter(pairs.column("document_id").to_pylist())
    assert set(per_doc) == set(documents)
    prompts = dict(zip(pairs.column("prompt").to_pylist(), pairs.column("response").to_pylist(), strict=True))
    assert prompts["Who is the owner of Project Helix?"] == "The owner of Project Helix is Dana Kim."
