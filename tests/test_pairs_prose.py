"""Pairs from ordinary prose: a held-out set of plain-sentence documents (tests/data/prose)
that share nothing with the sample corpus's Markdown shape."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from llmforge.pairs import create_training_pair, pairs_table
from llmforge.text import sentences

PROSE = Path(__file__).parent / "data" / "prose"
#: the only body sentences that state nothing
NOT_FACTS = {"Thanks to everyone who helped this week."}


def documents() -> list[tuple[str, str]]:
    docs = [(p.stem, p.read_text()) for p in sorted(PROSE.glob("*.txt"))]
    assert len(docs) >= 19
    return docs


def body_sentences(text: str) -> list[str]:
    """Sentences below the title line."""
    return [s for s in sentences(text.split("\n", 1)[1]) if s not in NOT_FACTS]


@pytest.mark.parametrize(("name", "text"), documents(), ids=[n for n, _ in documents()])
def test_every_fact_stating_sentence_yields_a_question(name, text):
    pairs = create_training_pair(text, kinds=("statement",))
    answered = {p["response"] for p in pairs}
    missing = [s for s in body_sentences(text) if s not in answered]
    assert not missing, f"{name}: no question for {missing}"
    assert all(p["prompt"].endswith("?") and p["prompt"][0].isupper() for p in pairs)
    assert not NOT_FACTS & answered


@pytest.mark.parametrize(
    ("doc", "question", "answer"),
    [
        ("helix-status", "Who owns the Helix migration?", "Dana Kim owns the Helix migration."),
        ("helix-status", "What does Dana Kim own?", "Dana Kim owns the Helix migration."),
        ("helix-status", "What is the status of the migration?", "The migration is on track."),
        ("helix-status", "When is Cutover scheduled?", "Cutover is scheduled for June 12, 2026."),
        ("travel-budget", "What is the Q3 travel budget?", "The Q3 travel budget is $45,000."),
        (
            "orion-pause",
            "Why was Orion paused in May?",
            "Orion was paused in May because the vendor missed two deadlines.",
        ),
        (
            "laptop-policy",
            "Within how many business days must contractors return laptops?",
            "Contractors must return laptops within 5 business days.",
        ),
        ("glossary", "What is a sprint?", "A sprint is a two-week block of planned work."),
        (
            "glossary",
            "What does burn rate mean?",
            "Burn rate means the money a project spends each month.",
        ),
        (
            "incident-0412",
            "Why did the outage happen?",
            "The outage happened because an expired certificate was not rotated.",
        ),
        ("expense-rules", "Is Alcohol reimbursed?", "Alcohol is not reimbursed."),
        (
            "data-retention",
            "How long are customer records kept?",
            "Customer records are kept for seven years.",
        ),
        (
            "pricing-change",
            "How much does the Basic plan cost?",
            "The Basic plan costs $12 per user per month.",
        ),
        (
            "security-training",
            "How often must all staff complete security training?",
            "All staff must complete security training every year.",
        ),
    ],
)
def test_question_shapes_for_owner_status_date_amount_reason_definition_rule(doc, question, answer):
    pairs = create_training_pair((PROSE / f"{doc}.txt").read_text(), kinds=("statement",))
    assert (question, answer) in [(p["prompt"], p["response"]) for p in pairs]


def test_pairs_table_on_the_prose_set_has_pairs_for_every_document():
    docs = documents()
    table = pa.table({"document_id": [n for n, _ in docs], "content": [t for _, t in docs]})
    pairs = pairs_table(table, kinds=("fact", "statement", "acronym", "heading", "summary"))
    per_doc = {n: 0 for n, _ in docs}
    for d in pairs.column("document_id").to_pylist():
        per_doc[d] += 1
    assert min(per_doc.values()) >= 3, per_doc
    assert pairs.num_rows >= 3 * len(docs)


def test_pronoun_subject_takes_the_previous_subject_and_questions_and_headings_do_not():
    pairs = create_training_pair(
        "Atlas was paused in May. It restarted on June 3.\n\nWhat happens next?", kinds=("statement",)
    )
    prompts = [p["prompt"] for p in pairs]
    assert "When did Atlas restart?" in prompts
    assert not any("next" in p for p in prompts)


def test_passive_owner_and_joined_clauses():
    pairs = create_training_pair(
        "Helix is owned by Dana Kim. Sam Ortiz leads Atlas; Mia Chen leads Nova.", kinds=("statement",)
    )
    asked = {p["prompt"]: p["response"] for p in pairs}
    assert asked["Who owns Helix?"] == "Helix is owned by Dana Kim."
    assert (
        asked["Who leads Atlas?"] == asked["Who leads Nova?"] == "Sam Ortiz leads Atlas; Mia Chen leads Nova."
    )
