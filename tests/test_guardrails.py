"""Faithfulness guard: facts aligned with the context, sentence support, defined verdicts."""

from __future__ import annotations

import pytest

from llmforge.errors import ConfigError
from llmforge.guard.facts import extract
from llmforge.guard.faithfulness import Faithfulness, FaithfulnessOptions, check

CTX = [
    "Project Helix is owned by Dana Kim. Its budget is $2,400,000. Helix ships on September 30, 2026. "
    "The build ticket is HLX-42.",
    "Project Aurora is owned by Lee Park. Aurora is on track.",
]
WORDS = FaithfulnessOptions(semantic=False)


def kinds(text: str) -> list[tuple[str, str]]:
    return [(k, t) for k, t, *_ in extract(text)]


def test_extracts_names_numbers_dates_codes_amounts():
    got = kinds("Dana Kim said on 2026-09-30 that HLX-42 costs $2.4M and 1,200 people use it.")
    assert got == [
        ("entity", "Dana Kim"),
        ("date", "2026-09-30"),
        ("code", "HLX-42"),
        ("amount", "$2.4M"),
        ("number", "1,200"),
    ]
    assert kinds("During the war nothing happened.") == []  # capitalised only by position
    assert kinds("It rises with pH and cAMP.") == []


@pytest.mark.parametrize(
    "answer",
    [
        "Dana Kim owns Project Helix.",
        "Helix has a budget of $2.4 million.",  # amounts compare by value
        "Helix ships on 2026-09-30.",  # dates compare by value
        "The Helix build ticket is HLX-42.",
    ],
)
def test_supported_answers_pass(answer):
    v = check(answer, CTX, WORDS)
    assert v["passed"], v["reason"]
    assert v["failed_claims"] == []


@pytest.mark.parametrize(
    ("answer", "claim"),
    [
        ("Project Helix is owned by Maria Chen.", "Maria Chen"),  # not in the context
        ("Helix ships on 2026-10-30.", "2026-10-30"),
        ("Helix has a budget of $3.1M.", "$3.1M"),
        ("The Helix build ticket is HLX-43.", "HLX-43"),
        ("Project Helix is owned by Lee Park.", "Lee Park"),  # in the context, but about Aurora
    ],
)
def test_swapped_fact_fails_and_names_the_claim(answer, claim):
    v = check(answer, CTX, WORDS)
    assert not v["passed"]
    failed = [f["text"] for f in v["failed_claims"]]
    assert claim in failed or (claim == "Lee Park" and "Project Helix" in failed)
    assert all(f["why"] for f in v["failed_claims"])


def test_misaligned_fact_says_why():
    v = check("Project Helix is owned by Lee Park.", CTX, WORDS)
    whys = " ".join(f["why"] for f in v["failed_claims"])
    assert "not next to the rest of the sentence" in whys


def test_evasive_answer_to_who_question_fails():
    v = check("The team owns Project Helix.", CTX, WORDS, question="Who owns Project Helix?")
    assert not v["passed"] and "asks who" in v["reason"]
    assert check("Dana Kim owns Project Helix.", CTX, WORDS, question="Who owns Project Helix?")["passed"]


def test_defined_verdicts_for_bad_input():
    assert check("", CTX, WORDS)["passed"]  # nothing claimed
    assert check("I don't know.", CTX, WORDS)["passed"]
    empty = check("Dana Kim owns Project Helix.", [], WORDS)
    assert not empty["passed"] and "no retrieved context" in empty["reason"]
    huge = check("word " * 10_000, CTX, WORDS)
    assert not huge["passed"] and "not verified" in huge["reason"]
    other = check("Helix は 2026-09-30 に出荷されます。", CTX, WORDS)  # non-English: the date is checked
    assert other["sentences"][0]["facts"][0]["supported"]


def test_options_are_validated():
    with pytest.raises(ConfigError, match="policy"):
        FaithfulnessOptions(policy="shout")
    with pytest.raises(ConfigError, match="threshold"):
        FaithfulnessOptions(threshold=2)


def test_guard_flag_policy_keeps_answer_but_marks_it():
    g = Faithfulness(None, FaithfulnessOptions(semantic=False, policy="flag"))
    r = g.check_output("Who owns Helix?", "Maria Chen owns Helix.", CTX)
    assert r.passed and r.details["flagged"] and r.details["failed_claims"][0]["text"] == "Maria Chen"
    b = Faithfulness(None, FaithfulnessOptions(semantic=False)).check_output(
        "q", "Maria Chen owns Helix.", CTX
    )
    assert not b.passed and b.score < 0.45


def test_semantic_signal_per_sentence():
    v = check(
        "Dana Kim owns Project Helix. Bananas grow on tall trees in Peru.",
        CTX,
        FaithfulnessOptions(semantic=True),
    )
    assert v["semantic_model"] == "all-MiniLM-L6-v2"
    first, second = v["sentences"]
    assert first["semantic"] > second["semantic"]
    assert not v["passed"]


DOC = """# Project Helix

Project Helix rewrites the billing ledger.
The team has 9 engineers.

- **Status:** At risk
- **Owner:** Dana Kim
- **Target date:** 2026-09-30
- **Budget:** $2.4M
- **Executive sponsor:** Rosa Duarte
"""


@pytest.mark.parametrize(
    ("question", "answer", "passed"),
    [
        ("Who owns Project Helix?", "Dana Kim owns Project Helix [1].", True),  # heading = subject
        ("Who owns Project Helix?", "Rosa Duarte owns Project Helix.", False),  # the doc says Dana Kim
        ("Who owns Project Helix?", "The team owns Project Helix.", False),  # says no one
        ("When does Helix ship?", "Project Helix is due on 2026-09-30.", True),  # paraphrase, no rival
        ("How many engineers?", "Project Helix has 7 engineers.", False),
    ],
)
def test_structured_document_alignment(question, answer, passed):
    # the setting documented for terse key: value records: the default meaning check (tuned on
    # prose) finds "When does Helix ship?" far from "Target date: ..."; this test is about facts
    terse = FaithfulnessOptions(
        semantic=False, min_question_support=0.25, min_question_similarity=0.5, question_support_trusted=0.4
    )
    v = check(answer, [DOC], terse, question=question)
    assert v["passed"] is passed, v["reason"]


def test_rival_fact_is_quoted_in_the_reason():
    v = check("Rosa Duarte owns Project Helix.", [DOC], WORDS)
    assert "Owner:** Dana Kim" in v["reason"]
