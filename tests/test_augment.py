"""Fact-level augmentation: phrasings, reverse questions, short answers, replay; policy kept."""

from __future__ import annotations

import pyarrow as pa
import pytest

from llmforge.errors import DataError
from llmforge.pairs.augment import AugmentOptions, augment_table, replay_table, reverse_question, short_answer


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
