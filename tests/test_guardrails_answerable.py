"""Abstention when the context does not address the question, sentence splitting at initials,
and bad input through every built-in guard: a defined verdict, never an exception."""

from __future__ import annotations

import pytest

from llmforge.errors import ConfigError
from llmforge.guard import PII, Faithfulness, FaithfulnessOptions, PromptInjection, apply_output_guards
from llmforge.guard.answerable import question_support, question_terms
from llmforge.guard.facts import extract, split_sentences
from llmforge.guard.faithfulness import check

CTX = [
    "Revolutions of 1830\nThe Belgian Revolution broke out on 25 August 1830 in Brussels. "
    "King William I sent a large military force to Brussels to suppress the insurrection.",
    "Lake Havasu City\nThe old bridge was bought by Robert P. McCulloch in 1968 and rebuilt in Lake Havasu City.",
]
STRICT = FaithfulnessOptions(semantic=False, min_question_support=0.5)


def test_question_support_is_high_when_one_passage_states_the_question():
    on, _, missing = question_support("when did the belgian revolution break out", CTX)
    off, best, missing_off = question_support("what caused the revolutions of 1848 in hungary", CTX)
    assert on > 0.8 and missing == []
    assert off < 0.5 and {"1848", "hungary"} <= set(missing_off) and best
    assert question_terms("how many is the name of it?") == []  # nothing to check
    assert question_support("how many?", CTX)[0] == 1.0
    assert question_support("when did it break out", [])[0] == 0.0


def test_a_value_of_the_asked_kind_counts_for_the_question():
    # "when ... due to ship?" is answered by a target date, though "due" and "ship" are not there
    dated = ["# Project Helix\n- Status: at risk\n- Target date: 2026-09-30\n- Owner: Dana Kim"]
    undated = ["# Project Helix\n- Status: at risk\n- Target date: next autumn\n- Owner: Dana Kim"]
    q = "When is Project Helix due to ship?"
    assert question_support(q, dated)[0] > question_support(q, undated)[0]
    assert question_support(q, dated)[2] == ["due", "ship"]  # the slot is no word to name
    many = ["Parental leave lasts 16 weeks.", "The office is in Lisbon."]
    assert question_support("how many weeks does parental leave last", many)[0] == 1.0
    assert question_support("how many weeks does the office stay open", many)[0] < 0.5


def test_faithful_answer_to_an_unaddressed_question_is_refused_with_a_reason():
    answer = "The Belgian Revolution broke out on 25 August 1830 in Brussels."
    q_off = "what caused the revolutions of 1848 in hungary"
    v = check(answer, CTX, STRICT, question=q_off)
    assert not v["passed"] and v["unanswerable"] and "does not address the question" in v["reason"]
    assert "hungary" in v["reason"]
    # the same answer to the question the passage does address passes
    ok = check(answer, CTX, STRICT, question="when did the belgian revolution break out")
    assert ok["passed"] and not ok["unanswerable"] and ok["question_support"] > 0.8
    # off (the option at 0) the score is still reported, nothing refused
    both_off = FaithfulnessOptions(semantic=False, min_question_support=0, min_question_similarity=0)
    off = check(answer, CTX, both_off, question=q_off)
    assert off["passed"] and off["question_support"] < 0.5
    # "I don't know" is what an unaddressed question should get: it passes
    assert check("I don't know.", CTX, STRICT, question=q_off)["passed"]


def test_the_questions_meaning_decides_where_its_words_fall_short():
    """Words under ``question_support_trusted`` send the question to the meaning check (MiniLM):
    an on-topic passage that answers something else is refused; a paraphrase the passage does
    answer ("uprising ... begin" over "revolution broke out") passes."""
    answer = "The Belgian Revolution broke out on 25 August 1830 in Brussels."

    def opts(**kw):
        return FaithfulnessOptions(semantic=False, min_question_support=0.1, **kw)

    q = "which opera was performed in brussels in august 1830"  # on topic; CTX names no opera
    v = check(answer, CTX, opts(question_support_trusted=0.5), question=q)
    assert not v["passed"] and v["unanswerable"] and "means something else" in v["reason"]
    assert 0.1 < v["question_support"] < 0.5 and v["question_similarity"] < 0.55
    # words that cover enough of the question skip the check; so does the option at 0
    assert check(answer, CTX, opts(question_support_trusted=0.4), question=q)["passed"]
    assert check(answer, CTX, opts(question_support_trusted=0.5, min_question_similarity=0), question=q)[
        "passed"
    ]
    para = check(
        answer, CTX, opts(question_support_trusted=0.5), question="when did the uprising in brussels begin"
    )
    assert para["passed"] and para["question_support"] < 0.5 and para["question_similarity"] > 0.55


@pytest.mark.parametrize("name", ["min_question_similarity", "question_support_trusted"])
def test_question_meaning_options_are_validated(name):
    with pytest.raises(ConfigError, match=name):
        FaithfulnessOptions(**{name: -0.1})


def test_min_question_support_is_validated():
    with pytest.raises(ConfigError, match="min_question_support"):
        FaithfulnessOptions(min_question_support=1.5)


def test_initials_and_titles_do_not_end_a_sentence():
    text = "It was bought by Robert P. McCulloch in 1968. Dr. Kim agreed.\nNext line"
    assert split_sentences(text) == [
        "It was bought by Robert P. McCulloch in 1968.",
        "Dr. Kim agreed.",
        "Next line",
    ]
    v = check("The bridge was bought by Robert P. McCulloch.", CTX, STRICT)
    assert v["passed"] and len(v["sentences"]) == 1


def test_names_joined_by_and_are_checked_one_by_one():
    got = [t for k, t, *_ in extract("Matthew Broderick voiced Adult Simba and Jonathan Taylor Thomas sang.")]
    assert "Adult Simba" in got and "Jonathan Taylor Thomas" in got
    ctx = ["Jonathan Taylor Thomas was cast as Young Simba. Matthew Broderick voiced Adult Simba."]
    assert check("Adult Simba and Jonathan Taylor Thomas were cast.", ctx, STRICT)["passed"]
    bad = check("Adult Simba and Jonathan Rhys Meyers were cast.", ctx, STRICT)
    assert not bad["passed"] and "Jonathan Rhys Meyers" in bad["reason"]


def test_a_code_matches_its_spaced_spelling_but_not_another_number():
    ctx = ["The PlayStation 3 launched in 2006 with a 60 GB model."]
    assert check("The PlayStation3 launched in 2006.", ctx, STRICT)["passed"]
    assert not check("The PlayStation4 launched in 2006.", ctx, STRICT)["passed"]


RU = "Бельгийская революция началась 25 августа 1830 года в Брюсселе."
AR = "اندلعت ثورة بلجيكا عام 1830 في بروكسل."
Q = "when did the belgian revolution break out"
GUARDS = [PromptInjection(None), Faithfulness(None, STRICT), PII(None)]


@pytest.mark.parametrize(
    ("answer", "contexts", "refused", "question"),
    [
        ("", CTX, False, Q),  # empty answer: nothing claimed
        ("The Belgian Revolution broke out in 1830.", [], True, Q),  # empty context: nothing supports it
        ("The Belgian Revolution broke out in 1830.", ["", "   "], True, Q),
        ("word " * 50_000, CTX, True, Q),  # enormous: not verified, refused with a reason
        # non-English: checked word by word like any text, so a translation of an English
        # context is not verified (refused, with the sentence named) ...
        ("Бельгийская революция началась 25 августа 1830 года.", CTX, True, Q),
        ("ベルギー革命は1830年に始まった。", CTX, True, Q),
        # ... and an answer in the context's own language is
        (
            "Бельгийская революция началась 25 августа 1830 года.",
            [RU],
            False,
            "когда началась бельгийская революция",
        ),
        (
            "ثورة بلجيكا اندلعت عام 1999",
            [AR],
            True,
            "متى اندلعت ثورة بلجيكا",
        ),  # a year the context does not state
    ],
)
def test_bad_input_gets_a_defined_verdict_from_every_guard(answer, contexts, refused, question):
    out = apply_output_guards(GUARDS, question, answer, contexts)
    assert [v.guard for v in out.verdicts] == ["prompt_injection", "faithfulness", "pii"]
    assert not any(v.details.get("error") for v in out.verdicts)  # no guard raised
    assert out.refused is refused
    faith = out.verdicts[1]
    assert faith.passed is not refused and (faith.passed or faith.reason)
    if refused and answer.strip() and any(c.strip() for c in contexts) and len(answer) < 1000:
        assert answer.split()[0] in faith.reason or "1999" in faith.reason  # says which claim failed


@pytest.mark.parametrize(
    ("question", "answer", "why"),
    [
        ("what are the names of the kings two sons", "The names of the kings two sons are", "restates"),
        ("what is the history of the song", "The original text is: [1]", "never comes"),
        (
            "who sang islands in the stream",
            "Kenny Rogers and Kenny Rogers and Kenny Rogers and Kenny",
            "repeats",
        ),
        ("Is remote work allowed?", "Remote work is allowed.", ""),  # a yes/no question restated is an answer
        ("Who owns Project Helix?", "Dana Kim owns Project Helix.", ""),
    ],
)
def test_an_answer_that_states_nothing_is_refused(question, answer, why):
    from llmforge.guard.answerable import states_nothing

    assert (why in states_nothing(question, answer)) if why else states_nothing(question, answer) == ""


def test_closest_sentences_rank_by_meaning_and_skip_titles():
    """The rag quote fallback's second chance: the retrieved sentences closest in meaning to the
    question, best first, never a context's bare title line, never under the threshold."""
    from llmforge.guard.semantic import closest_sentences

    ctx = [
        "Be Careful (Cardi B song)\n"
        "`` Be Careful '' is a song recorded by American rapper Cardi B. "
        "The track was produced by Boi-1da and Vinylz. It was released in March 2018.",
        "Lake Havasu City\nThe old bridge was bought by Robert P. McCulloch in 1968.",
    ]
    got = closest_sentences("who recorded the song be careful", ctx, 0.3)
    assert got and got[0][0] == 0 and "recorded by American rapper Cardi B" in got[0][1]
    assert all(text != "Be Careful (Cardi B song)" for _, text in got)  # the title says nothing
    assert len(got) <= 3 and [i for i, _ in got].count(1) <= 1
    assert closest_sentences("who recorded the song be careful", ctx, 0.99) == []
    assert closest_sentences("   ", ctx, 0.0) == [] and closest_sentences("who?", [], 0.0) == []
