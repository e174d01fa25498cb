"""The RAG prompt: facts focused from retrieved chunks, the same messages for serving and training."""

from __future__ import annotations

import pytest

from llmforge.prompting import SYSTEM, context_block, facts, focus, rag_messages, trim_answer

STATUS_NOTE = """Orion weekly status, 12 March.

The Orion data migration is owned by Priya Natarajan, who took it over from the
platform group in January. Orion was paused in May because the storage vendor missed
two delivery deadlines. The remaining budget is $45,000 and the new go-live date
is 2026-08-14.

Contractors must return their laptops within 5 business days of leaving.
"""
POLICY = """---
title: Travel policy
department: finance
---
# Travel policy

| Item | Limit |
|---|---|
| Hotel per night | $180 |
| Meals per day | $60 |

- Economy class for flights under six hours.
"""


def test_facts_join_wrapped_prose_split_sentences_and_keep_table_rows():
    title, found = facts(STATUS_NOTE)
    assert title is None
    assert (
        "The Orion data migration is owned by Priya Natarajan, who took it over from the platform "
        "group in January." in found
    )
    assert "Contractors must return their laptops within 5 business days of leaving." in found
    title, found = facts(POLICY)
    assert title == "Travel policy"
    assert "Hotel per night $180" in found and "Economy class for flights under six hours." in found
    assert not any("---" in f or "department:" in f for f in found)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Who owns the Orion migration?", "Priya Natarajan"),
        ("Why was Orion paused?", "missed two delivery deadlines"),
        ("When is the new go-live date for Orion?", "2026-08-14"),
        ("How much budget is left for Orion?", "$45,000"),
        ("How long do contractors have to return laptops?", "5 business days"),
        ("What is the hotel limit per night?", "$180"),
    ],
)
def test_the_fact_that_answers_comes_first(question, expected):
    best = focus(question, [POLICY, STATUS_NOTE])
    assert expected in best[0][1], best


def test_facts_are_tagged_with_their_chunk_and_title():
    lines = context_block("What is the meal limit per day?", [STATUS_NOTE, POLICY]).splitlines()
    assert lines[0] == "[2] Travel policy - Meals per day $60"
    assert all(line.startswith(("[1] ", "[2] ")) for line in lines)


def test_weak_facts_are_left_out_and_empty_context_is_empty():
    assert len(focus("Why was Orion paused?", [STATUS_NOTE, POLICY])) < 6
    assert focus("anything", []) == [] and focus("anything", [""]) == []


def test_messages_use_the_template_and_the_system_instruction():
    msgs = rag_messages("Why was Orion paused?", [STATUS_NOTE], template="Q: {question}\n{context}")
    assert msgs[0] == {"role": "system", "content": SYSTEM}
    assert msgs[1]["content"].startswith("Q: Why was Orion paused?\n[1] ")
    assert rag_messages("q?", [STATUS_NOTE], system=None)[0]["role"] == "user"


def test_an_answer_is_cut_where_the_model_runs_on():
    assert trim_answer("Priya Natarajan owns it [1].\n\n[2] # All-hands notes ...") == (
        "Priya Natarajan owns it [1]."
    )
    assert trim_answer("Paused because of the vendor.\n[3] invented") == "Paused because of the vendor."
    assert trim_answer("  plain  ") == "plain"


def test_first_sentences_keeps_markers_and_skips_abbreviations():
    from llmforge.prompting import first_sentences

    text = "Dr. Kim owns Orion [1]. It was paused in May. [2] invented"
    assert first_sentences(text, 1) == "Dr. Kim owns Orion [1]."
    assert first_sentences("Budget is $2.4M, not $3M. [1] More.", 1) == "Budget is $2.4M, not $3M. [1]"
    assert first_sentences(text, 0) == text and first_sentences("no end", 1) == "no end"


def test_best_quote_only_when_a_fact_clearly_answers():
    from llmforge.prompting import best_quote

    assert best_quote("When is the new go-live date for Orion?", [POLICY, STATUS_NOTE])[0] == 1
    assert "2026-08-14" in best_quote("When is the new go-live date for Orion?", [STATUS_NOTE])[1]
    assert best_quote("What is the capital of France?", [STATUS_NOTE, POLICY]) is None


def test_an_answer_that_misses_the_evidence_value_disagrees():
    from llmforge.prompting import disagrees

    fact = "Project Juniper - Target date: 2027-04-15"
    assert disagrees("When is Project Juniper due to ship?", "It ships on 2027-05-15.", fact)
    assert not disagrees("When is Project Juniper due to ship?", "On 2027-04-15 [1].", fact)
    status = "Project Iris - Status: Paused"
    assert disagrees("What is the status of Project Iris?", "Project Iris is completed.", status)
    assert not disagrees("What is the status of Project Iris?", "It is paused.", status)
    # a prose fact that does not pin one value down never overrides the model
    assert not disagrees("Why was Orion paused?", "The vendor was late.", STATUS_NOTE.splitlines()[3])
