"""The deterministic pair rules, the model-based generator's parsing, and the pairs table."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass

import pyarrow as pa
import pytest

from llmforge.errors import ConfigError, DataError
from llmforge.pairs import (
    KINDS,
    ModelPairGenerator,
    create_training_pair,
    pair_id,
    pairs_table,
    training_format,
)
from llmforge.pairs.rules import RAW_CHUNK_CHARS

HELIX = """# Project Helix

Project Helix rewrites the billing ledger. It replaces the nightly batch jobs.

- **Owner:** Dana Kim
- **Status:** At risk
- Target date: 2026-09-30
- Note: this line is advice, not a fact

## Risks

The vendor SDK (software development kit) is late.
We review it weekly with the CAB (change advisory board).

| Milestone | Date |
|---|---|
| Beta | 2026-06-28 |

## Glossary

- SLO: service level objective
- Our service level agreement (SLA) covers uptime.
- MTTR stands for mean time to recovery.
- Dana Kim (Engineering) owns it; Q3 (third quarter) numbers are due.
"""


def by_kind(pairs: list[dict], kind: str) -> list[tuple[str, str]]:
    return [(p["prompt"], p["response"]) for p in pairs if p["kind"] == kind]


def test_key_value_and_table_facts():
    facts = by_kind(create_training_pair(HELIX), "fact")
    assert facts == [
        ("Who is the owner of Project Helix?", "The owner of Project Helix is Dana Kim."),
        ("What is the status of Project Helix?", "The status of Project Helix is At risk."),
        ("What is the target date of Project Helix?", "The target date of Project Helix is 2026-09-30."),
        ("What is the date for Beta in Project Helix?", "The date for Beta in Project Helix is 2026-06-28."),
    ]


def test_acronyms_in_every_written_form_and_no_false_ones():
    acronyms = dict(by_kind(create_training_pair(HELIX), "acronym"))
    assert acronyms == {
        "What does SDK stand for?": "SDK stands for software development kit.",
        "What does CAB stand for?": "CAB stands for change advisory board.",
        "What does SLO stand for?": "SLO stands for service level objective.",
        "What does SLA stand for?": "SLA stands for service level agreement.",
        "What does MTTR stand for?": "MTTR stands for mean time to recovery.",
    }


def test_headings_and_summary_use_lead_sentences():
    pairs = create_training_pair(HELIX)
    headings = dict(by_kind(pairs, "heading"))
    assert headings["What does the Project Helix document say about risks?"] == (
        "The vendor SDK (software development kit) is late. "
        "We review it weekly with the CAB (change advisory board)."
    )
    assert by_kind(pairs, "summary") == [
        (
            "Summarize Project Helix.",
            "Project Helix rewrites the billing ledger. "
            "The vendor SDK (software development kit) is late. "
            "Our service level agreement (SLA) covers uptime.",
        )
    ]


def test_title_argument_names_the_subject_and_plain_text_works():
    pairs = create_training_pair("Owner: Priya Patel\n\nThe plan is simple.", "Project Aurora")
    assert by_kind(pairs, "fact") == [
        ("Who is the owner of Project Aurora?", "The owner of Project Aurora is Priya Patel.")
    ]
    assert create_training_pair("", None) == []
    assert [p["kind"] for p in create_training_pair("Just one sentence.")] == ["raw"]


def test_raw_chunks_cover_the_text_in_paragraph_order():
    paragraphs = [f"Paragraph {i} " + "word " * 60 for i in range(80)]
    text = "\n\n".join(p.strip() for p in paragraphs) + "\n\n" + "x" * (RAW_CHUNK_CHARS + 10)
    raw = [p for p in create_training_pair(text, kinds=("raw",))]
    assert all(p["prompt"] == "" and p["messages"] == [] for p in raw)
    chunks = [p["response"] for p in raw]
    assert all(len(c) <= RAW_CHUNK_CHARS for c in chunks) and len(chunks) > 5
    assert "".join(chunks).replace("\n\n", "") == text.replace("\n\n", "")


def test_output_shape_kinds_filter_and_determinism():
    pairs = create_training_pair(HELIX)
    assert pairs == create_training_pair(HELIX)
    assert [p["kind"] for p in pairs] == sorted((p["kind"] for p in pairs), key=KINDS.index)
    for p in pairs:
        assert set(p) == {"prompt", "response", "messages", "kind"}
        if p["kind"] != "raw":
            assert p["messages"] == [
                {"role": "user", "content": p["prompt"]},
                {"role": "assistant", "content": p["response"]},
            ]
    assert {p["kind"] for p in create_training_pair(HELIX, kinds=("fact",))} == {"fact"}
    prompts = [p["prompt"].lower() for p in pairs if p["kind"] != "raw"]
    assert len(prompts) == len(set(prompts))
    with pytest.raises(ConfigError, match="unknown pair kind"):
        create_training_pair(HELIX, kinds=("facts",))


def test_training_format_is_a_picklable_json_udf_body():
    fn = pickle.loads(pickle.dumps(training_format))
    assert json.loads(fn(HELIX)) == create_training_pair(HELIX)
    assert json.loads(fn(None)) == []


def docs_table() -> pa.Table:
    return pa.table(
        {
            "document_id": ["eng/helix", "hr/pto"],
            "title": [None, "PTO policy"],
            "content": [HELIX, "Annual PTO: 25 days\n\nRequest it early."],
        }
    )


def test_pairs_table_schema_ids_and_lineage_keys():
    table = pairs_table(docs_table())
    assert table.column_names == ["document_id", "pair_id", "kind", "prompt", "response", "messages", "text"]
    assert table.schema.field("messages").type == pa.list_(
        pa.struct([("role", pa.string()), ("content", pa.string())])
    )
    rows = table.to_pylist()
    assert len({r["pair_id"] for r in rows}) == len(rows)
    pto = [r for r in rows if r["document_id"] == "hr/pto" and r["kind"] == "fact"]
    assert pto[0]["prompt"] == "What is the annual PTO of PTO policy?"
    assert pto[0]["text"] == "What is the annual PTO of PTO policy?\nThe annual PTO of PTO policy is 25 days."
    raw = [r for r in rows if r["kind"] == "raw"]
    assert raw and all(r["text"] == r["response"] and r["prompt"] == "" for r in raw)
    assert pto[0]["pair_id"] == pair_id("hr/pto", "fact", pto[0]["prompt"], pto[0]["response"])
    assert pairs_table(docs_table()).equals(table)
    assert set(pairs_table(docs_table(), kinds=("raw",)).column("kind").to_pylist()) == {"raw"}


def test_pairs_table_bad_input():
    with pytest.raises(DataError, match="lacks column"):
        pairs_table(pa.table({"text": ["x"]}))
    with pytest.raises(DataError, match="null document_id"):
        pairs_table(pa.table({"document_id": [None], "content": ["Owner: X"]}))


@dataclass
class FakeCompletion:
    text: str


class FakeModel:
    """Stands in for a chat model: answers from a script keyed by a word in the passage."""

    def __init__(self, script: dict[str, str]) -> None:
        self.script = script
        self.batches: list[int] = []

    def chat_batch(self, conversations, max_tokens=256):
        self.batches.append(len(conversations))
        out = []
        for conv in conversations:
            assert [m["role"] for m in conv] == ["system", "user", "assistant", "user"]
            passage = conv[-1]["content"]
            assert passage.startswith("Passage:") and "Travel" not in passage
            out.append(FakeCompletion(next((v for k, v in self.script.items() if k in passage), "no idea")))
        return out


SCRIPT = {
    "rewrites": "Q: Who owns Project Helix?\nA: Dana Kim\nQ: What does Helix rewrite\nA: the ledger\n"
    "Q: When does Helix ship?\nA: 2031-01-01\nQ: Who owns Project Helix?\nA: Dana Kim",
    "vendor": '[{"question": "What is late?", "answer": "The vendor SDK"}, {"question": "", "answer": "x"},'
    ' "junk", {"question": "Who reviews it weekly?", "answer": "We review it weekly with the CAB"},'
    ' {"question": "What is the vendor?", "answer": "The vendor"}, {"question": "What is late?",'
    ' "answer": "The vendor is late again"}]',
    "service level": "Sure! Here you go:\nQ: Which tool is used to book travel?\nA: Dana Kim\n"
    "Q: What does SLO stand for?\nA: service level objective\nthanks",
}


def test_model_generator_parses_validates_and_keeps_order():
    model = FakeModel(SCRIPT)
    gen = ModelPairGenerator(model, batch_size=2, pairs_per_passage=4)
    pairs = gen(HELIX, "Project Helix")
    assert [(p["prompt"], p["response"]) for p in pairs] == [
        (
            "Who owns Project Helix?",
            "Dana Kim",
        ),  # the question without "?", the ungrounded date, the repeat: dropped
        ("What is late?", "The vendor SDK"),
        ("Who reviews it weekly?", "We review it weekly with the CAB"),
        ("What does SLO stand for?", "service level objective"),
    ]
    assert {p["kind"] for p in pairs} == {"model"}
    assert pairs[0]["messages"][1] == {"role": "assistant", "content": "Dana Kim"}
    assert model.batches == [2, 1] and gen(HELIX, "Project Helix") == pairs


def test_model_generator_in_pairs_table_with_rule_kinds():
    gen = ModelPairGenerator(FakeModel(SCRIPT), rule_kinds=("raw",))
    table = pairs_table(docs_table(), generator=gen)
    kinds = list(zip(table.column("document_id").to_pylist(), table.column("kind").to_pylist(), strict=True))
    assert ("eng/helix", "model") in kinds and ("hr/pto", "raw") in kinds and ("hr/pto", "model") not in kinds
    with pytest.raises(ConfigError, match="chat_batch"):
        ModelPairGenerator(object())
    with pytest.raises(ConfigError, match="min_support"):
        ModelPairGenerator(FakeModel({}), min_support=2.0)


def test_grounded_keeps_copied_answers_to_questions_about_their_sentence():
    from llmforge.pairs.model import grounded, passages

    (passage,) = passages(
        "Northwind notes\n\nThe annual contract value is $1.2 million. Northwind pays invoices within 45 days.",
        1500,
    )
    assert passage.startswith("Northwind notes\n\n")  # a plain title line is the heading
    ok = [
        ("What is the annual contract value?", "$1.2 million"),
        ("How fast does Northwind pay invoices?", "within 45 days"),
    ]
    bad = [
        ("What is the annual contract value?", "Northwind pays invoices within 45 days"),  # other sentence
        ("What is the contract value?", "$1.3 million"),  # not in the passage
        ("What are the Northwind notes?", "Northwind notes"),  # the heading, not the text
        ("What is the annual contract value?", "The annual contract value"),  # says nothing new
        (
            "What is the value of the contract and the value of the invoices?",
            "The annual contract value is the annual contract value of the invoices, not the notes.",
        ),  # a long answer whose words are mostly repeats
    ]
    assert all(grounded(q, a, passage, 0.85) for q, a in ok)
    assert not any(grounded(q, a, passage, 0.85) for q, a in bad)
