"""Fact-level augmentation: phrasings, reverse questions, short answers, replay; policy kept."""

from __future__ import annotations

import pyarrow as pa
import pytest

from llmforge.errors import DataError
from llmforge.pairs.augment import (
    AugmentOptions,
    augment_table,
    relation_questions,
    replay_table,
    reverse_question,
    short_answer,
)


def pairs() -> pa.Table:
    return pa.table(
        {
            "document_id": ["orion", "budget", "raw"],
            "kind": ["statement", "statement", "raw"],
            "prompt": ["Who owns the Orion migration?", "What is the remaining budget?", ""],
            "response": [
                "The Orion migration is owned by Priya Natarajan.",
                "The remaining budget is $45,000.",
                "A raw chunk of text.",
            ],
            "department": ["engineering", "finance", "all"],
        }
    )


def test_each_fact_gets_phrasings_a_short_answer_and_its_reverse():
    out = augment_table(pairs(), AugmentOptions(phrasings=3, seed=1)).to_pylist()
    orion = [r for r in out if r["document_id"] == "orion"]
    kinds = sorted(r["kind"] for r in orion)
    assert kinds == [
        "statement",
        "statement+phrasing",
        "statement+phrasing",
        "statement+reverse",
        "statement+short",
    ]
    questions = {r["prompt"] for r in orion if r["kind"] in ("statement", "statement+phrasing")}
    assert len(questions) == 3 and all("owns the Orion migration" in q for q in questions)
    reverse = next(r for r in orion if r["kind"] == "statement+reverse")
    assert reverse["prompt"] == "What does Priya Natarajan own?" and "Orion" in reverse["response"]
    assert next(r for r in orion if r["kind"] == "statement+short")["response"] == "Priya Natarajan"
    # policy columns travel with every derived row; raw chunks pass through unchanged
    assert {r["department"] for r in orion} == {"engineering"}
    assert [r["response"] for r in out if r["document_id"] == "raw"] == ["A raw chunk of text."]
    assert all(r["messages"][-1]["content"] == r["response"] for r in out if r["prompt"])


def test_deterministic_given_a_seed():
    a = augment_table(pairs(), AugmentOptions(seed=3))
    assert a.equals(augment_table(pairs(), AugmentOptions(seed=3)))
    assert len({r["pair_id"] for r in a.to_pylist()}) == a.num_rows


def test_short_answer_and_reverse_only_when_they_exist():
    assert short_answer("What is the remaining budget?", "The remaining budget is $45,000.") == "$45,000"
    assert short_answer("Is it done?", "Done.") is None
    assert reverse_question("Helix was approved by the board.") is None  # no named agent
    assert reverse_question("Vega is managed by Tom Berg.") == "What does Tom Berg manage?"


def test_short_answer_keeps_function_words_that_belong_to_the_value():
    assert short_answer("What is the status of Helix?", "The status of Helix is At risk.") == "At risk"
    assert short_answer("What does WFH stand for?", "WFH stands for work from home.") == "work from home"
    assert short_answer("Who owns Orion?", "Orion is owned by Priya Natarajan.") == "Priya Natarajan"


def test_relation_questions_reword_the_attribute_by_the_answers_type():
    owner = relation_questions(
        "Who is the owner of Project Helix?", "The owner of Project Helix is Dana Kim."
    )
    assert owner[:2] == ["Who owns Project Helix?", "Who is responsible for Project Helix?"]
    assert "Who is Project Helix's owner?" in owner
    # a lower-case subject gets its article; a qualified agent keeps its qualifier
    assert "Who owns the ledger-api service?" in relation_questions(
        "Who is the service owner of ledger-api service?",
        "The service owner of ledger-api service is Sofia Weber.",
    )
    assert "Who owns the contract with Beacon Payroll?" in relation_questions(
        "Who is the contract owner of Beacon Payroll?", "The contract owner of Beacon Payroll is Priya Mori."
    )
    date = relation_questions(
        "What is the renewal date of Coastal Bank?", "The renewal date of Coastal Bank is 2027-01-31."
    )
    assert "When does Coastal Bank renew?" in date and "When is the renewal date of Coastal Bank?" in date
    money = relation_questions("What is the budget of Vega?", "The budget of Vega is $2.4M.")
    assert "How much budget does Vega have?" in money
    # a date question is not asked as an amount, nor an amount as a date
    assert not any(q.startswith("When") for q in money)
    assert not any(q.startswith("How much") for q in date)
    assert relation_questions("What does SLO stand for?", "SLO stands for service level objective.")[0] == (
        "What is SLO short for?"
    )
    assert relation_questions("Why did Helix slip?", "The vendor was late.") == []


def test_relation_rewordings_join_the_table_capped_by_the_option():
    table = pa.table(
        {
            "document_id": ["helix"],
            "kind": ["fact"],
            "prompt": ["Who is the owner of Project Helix?"],
            "response": ["The owner of Project Helix is Dana Kim."],
        }
    )
    rows = augment_table(table, AugmentOptions(phrasings=1, relations=2)).to_pylist()
    assert [r["prompt"] for r in rows if r["kind"] == "fact+relation"] == [
        "Who owns Project Helix?",
        "Who is responsible for Project Helix?",
    ]
    assert not [
        r for r in augment_table(table, AugmentOptions(relations=0)).to_pylist() if "relation" in r["kind"]
    ]


def test_replay_keeps_the_base_models_own_answers():
    t = replay_table(lambda ps: [f"answer to {p}" for p in ps], prompts=["Name a colour."], department="all")
    row = t.to_pylist()[0]
    assert (
        row["kind"] == "replay"
        and row["response"] == "answer to Name a colour."
        and row["department"] == "all"
    )
    with pytest.raises(DataError, match="replies"):
        replay_table(lambda ps: [], prompts=["x"])


def test_bad_input():
    with pytest.raises(DataError, match="lacks column"):
        augment_table(pairs().drop(["prompt"]))
    with pytest.raises(DataError, match="phrasings"):
        AugmentOptions(phrasings=0)


def test_model_paraphrases_join_only_when_they_keep_names_and_numbers():
    from llmforge.pairs.augment import valid_paraphrase

    q = "Who owns Project Helix in 2026?"
    assert (
        valid_paraphrase(q, "Who is the owner of Project Helix in 2026?")
        == "Who is the owner of Project Helix in 2026?"
    )
    assert valid_paraphrase(q, 'Rewritten question: "Which person owns Project Helix in 2026?"\nMore') == (
        "Which person owns Project Helix in 2026?"
    )
    assert valid_paraphrase(q, "Who owns Project Orion in 2026?") is None  # a name changed
    assert valid_paraphrase(q, "Who owns Project Helix?") is None  # the year dropped
    assert valid_paraphrase(q, "Who owns Project Helix in 2026?") is None  # not a rewrite
    assert valid_paraphrase(q, "Dana Kim owns it.") is None  # an answer, not a question
    assert valid_paraphrase(q, "") is None


def test_augment_with_a_paraphraser_adds_valid_rewrites_deterministically():
    def fake(questions):  # a model's output: one good rewrite, one that loses a name
        return [
            q.replace("Who owns", "Who is the owner of") if "Orion" in q else "What is it?" for q in questions
        ]

    base = pairs()
    a = augment_table(base, AugmentOptions(phrasings=1, seed=0), paraphrase=fake)
    assert a.equals(augment_table(base, AugmentOptions(phrasings=1, seed=0), paraphrase=fake))
    para = [r for r in a.to_pylist() if r["kind"].endswith("+paraphrase")]
    assert [r["prompt"] for r in para] == [
        "Who is the owner of the Orion migration?"
    ]  # "What is it?" lost the budget
    with pytest.raises(DataError, match="paraphrase"):
        augment_table(base, paraphrase=lambda qs: [])


def test_model_paraphraser_drives_a_generator_and_filters_its_slips(home, chat_model_dir):
    from fixtures.generation import generator_config

    import llmforge
    from llmforge.pairs.augment import model_paraphraser

    gen = llmforge.connect(
        backend="local", home=str(home), generator=generator_config(chat_model_dir)
    ).generator
    seen = []
    para = model_paraphraser(gen, 8)
    out = augment_table(
        pairs(), AugmentOptions(phrasings=1), paraphrase=lambda qs: seen.extend(para(qs)) or seen
    )
    assert len(seen) == 2 and all(isinstance(t, str) for t in seen)  # the model was asked each question
    # a random tiny model writes no valid question: nothing it wrote joins the table
    assert not [r for r in out.to_pylist() if r["kind"].endswith("+paraphrase")]
