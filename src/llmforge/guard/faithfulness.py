"""Is the answer supported by the retrieved context? Facts first, then each sentence.

Three signals per answer sentence:

- **facts** (:mod:`llmforge.guard.facts`): every name, number, date, code and amount must be
  found in the context next to the rest of its sentence;
- **words**: the share of the sentence's content words found in the context;
- **meaning** (:mod:`llmforge.guard.semantic`, optional): cosine to the closest context sentence.

Given the question, two more checks (:mod:`llmforge.guard.answerable`): the answer must state
something beyond restating the question, and some stretch of the context must state enough of
the question, in words (``min_question_support``) or, where the words fall short of
``question_support_trusted``, in meaning (``min_question_similarity``): a faithful copy of an
on-topic passage that does not answer is refused ("I don't know") rather than passed.

The answer's score is the lowest sentence score, where a sentence scores
``min(weakest fact, (words + meaning) / 2)`` and an unsupported fact weighs under 0.4: one
swapped fact or one invented sentence is enough to fail. Evaluation uses the same function (:func:`faithfulness_score`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmforge.components import Guardrail, GuardResult
from llmforge.guard.answerable import question_support, states_nothing
from llmforge.guard.facts import Window, check_facts, split_sentences, windows, word_list
from llmforge.text import STOP_WORDS

#: answers longer than this are not checked claim by claim; they fail with a clear reason
MAX_ANSWER_CHARS = 20_000
POLICIES = ("flag", "block", "regenerate")


@dataclass(frozen=True)
class FaithfulnessOptions:
    #: an answer scoring below this fails (tuned on the ClapNQ dev half, see bench_guard.py)
    threshold: float = 0.45
    #: what a failing answer does: ``flag`` (kept, marked), ``block`` (replaced by a refusal),
    #: ``regenerate`` (retried with a stricter prompt, then blocked)
    policy: str = "block"
    #: retries for ``regenerate``
    max_retries: int = 1
    #: share of the sentence's other keywords (and facts) a fact's context window must hold
    min_alignment: float = 0.25
    #: add the MiniLM sentence-similarity signal (falls back to words only if unavailable); off by
    #: default: on ClapNQ it added no AUROC over facts + words at 20-30x the cost (bench_guard.py)
    semantic: bool = False
    #: cosine that counts as full semantic support (similarities are rescaled to [0, 1])
    semantic_full: float = 0.7
    #: context sentences on each side of a sentence that form one matching window
    window: int = 1
    #: a who/when/how-much question needs an answer stating a supported fact of that kind
    require_answer: bool = True
    #: with the question known: an answer fails when no stretch of the context states this share
    #: of the question's content words (:mod:`llmforge.guard.answerable`): the passage is on
    #: topic but does not answer. 0 = off. The three question thresholds are chosen together on
    #: the dev half of ClapNQ (ordinary prose, 597 questions; bench_rag_clapnq.py): they answered
    #: 83.3% of the test half's answerable questions and refused 76.2% of its unanswerable ones,
    #: and answer 81.3% of examples/enterprise right (bench_rag_answers.py). Terse ``key: value``
    #: records lose most to the meaning check ("When is Juniper due to ship?" over "Target date:
    #: ..." is far in meaning): for a corpus of such records ``min_question_support: 0.25,
    #: min_question_similarity: 0.5, question_support_trusted: 0.4`` answered 92.0% there, but
    #: refused only 48.3% of ClapNQ's unanswerable questions
    min_question_support: float = 0.213
    #: the question's meaning (MiniLM): the mean of its best cosine to one context window and to
    #: one whole context. Where the question's words are covered under
    #: ``question_support_trusted``, a question under this is refused as unanswerable. On ClapNQ
    #: meaning separates unanswerable questions far better than words (AUROC 0.88 vs 0.67 end
    #: to end). 0 = off (and off without the sentence model).
    min_question_similarity: float = 0.59
    #: share of the question's words at or above which the meaning check is not needed
    question_support_trusted: float = 0.8
    #: legacy switch: ``block: false`` means ``policy: flag``
    block: bool = True

    def __post_init__(self) -> None:
        from llmforge.errors import ConfigError

        if self.policy not in POLICIES:
            raise ConfigError(f"faithfulness policy {self.policy!r} is not one of {list(POLICIES)}")
        if not 0.0 <= self.min_question_support <= 1.0:
            raise ConfigError(
                f"faithfulness min_question_support must be in [0, 1], not {self.min_question_support}"
            )
        for name in ("min_question_similarity", "question_support_trusted"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"faithfulness {name} must be in [0, 1], not {getattr(self, name)}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"faithfulness threshold must be in [0, 1], not {self.threshold}")
        if self.max_retries < 0:
            raise ConfigError("faithfulness max_retries must be >= 0")

    @property
    def action(self) -> str:
        return self.policy if self.block else "flag"


DEFAULT = FaithfulnessOptions()


def _coverage(sentence: str, wins: Sequence[Window]) -> float:
    words = [w for w in word_list(sentence) if w not in STOP_WORDS]
    if not words:
        return 1.0
    if not wins:
        return 0.0
    return sum(any(w.has_word(x) for w in wins) for x in words) / len(words)


_ASKS = [
    (re.compile(r"^\s*(who|whom|whose)\b|\bwho (owns|leads|runs|is|was|are)\b", re.I), ("entity",), "who"),
    (re.compile(r"^\s*when\b|\b(what|which) (date|day|year|month)\b", re.I), ("date", "number"), "when"),
    (
        re.compile(r"\bhow (much|many)\b|\bwhat (percentage|share|amount|number)\b", re.I),
        ("number", "amount"),
        "how much",
    ),
]
_MARKERS = re.compile(r"\s?\[\d+(?:\s*,\s*\d+)*\]")
_REFUSAL = re.compile(
    r"\b(i don'?t know|not (stated|mentioned|in the context)|cannot answer|can't answer)\b", re.I
)


def _answers_question(question: str, rows: list[dict]) -> str:
    """Empty, or why the answer does not state the kind of fact the question asks for."""
    qwords = set(word_list(question))
    for pattern, kinds, label in _ASKS:
        if not pattern.search(question):
            continue
        facts = [f for r in rows for f in r["facts"] if f["kind"] in kinds and f["supported"]]
        new = [f for f in facts if f["kind"] != "entity" or not set(word_list(f["text"])) <= qwords]
        if not new:
            return f"the question asks {label}, but the answer states no such fact from the context"
    return ""


def _candidates(answer_sentences: Sequence[str], contexts: Sequence[str], per_sentence: int = 3) -> list[str]:
    """The context sentences worth embedding: for each answer sentence, the few that share
    the most words with it. Encoding every context sentence costs 5-10x more and rarely
    changes the closest one."""
    pool = [x for c in contexts for x in split_sentences(c)]
    if len(pool) <= per_sentence * len(answer_sentences):
        return pool
    bags = [set(word_list(x)) - STOP_WORDS for x in pool]
    keep: dict[int, None] = {}
    for a in answer_sentences:
        words = set(word_list(a)) - STOP_WORDS
        ranked = sorted(range(len(pool)), key=lambda i: -len(words & bags[i]))
        keep.update(dict.fromkeys(ranked[:per_sentence]))
    return [pool[i] for i in sorted(keep)]


def check(
    answer: str, contexts: Sequence[str], options: FaithfulnessOptions = DEFAULT, question: str = ""
) -> dict[str, Any]:
    """The full verdict: ``score``, ``passed``, the failed claims and why, per-sentence rows.

    With ``question``, a who/when/how-much question also needs an answer that states a
    supported fact of that kind ("The team owns Project Helix." does not say who).
    """
    answer = answer or ""
    contexts = [c for c in (contexts or []) if isinstance(c, str) and c.strip()]
    if not answer.strip():
        return {"score": 1.0, "passed": True, "reason": "empty answer: nothing to check", "sentences": []}
    if len(answer) > MAX_ANSWER_CHARS:
        return {
            "score": 0.0,
            "passed": False,
            "reason": f"answer has {len(answer)} characters; over {MAX_ANSWER_CHARS} it is not verified",
            "sentences": [],
        }
    # "I don't know" claims nothing, so it cannot be unfaithful; [n] markers cite, not claim
    sents = [_MARKERS.sub("", x) for x in split_sentences(answer) if not _REFUSAL.search(x)]
    if not sents:
        return {"score": 1.0, "passed": True, "reason": "", "sentences": [], "refusal": True}
    wins = windows(contexts, options.window)
    facts = check_facts(sents, wins, options.min_alignment)
    sem: list[tuple[float, int]] | None = None
    semantic_note = "off"
    if options.semantic and sents:
        try:
            from llmforge.guard.semantic import sentence_support

            sem = sentence_support(sents, _candidates(sents, contexts))
            semantic_note = "all-MiniLM-L6-v2"
        except Exception as exc:  # a missing model degrades the signal; it is reported
            semantic_note = f"unavailable ({type(exc).__name__}: {exc})"
    rows = []
    for i, sf in enumerate(facts):
        words = _coverage(sf.text, wins)
        fact_share = min((f.strength for f in sf.facts), default=1.0)
        meaning = None
        if sem is not None:
            meaning = max(0.0, min(1.0, sem[i][0] / options.semantic_full))
        support = words if meaning is None else (words + meaning) / 2
        rows.append(
            {
                "sentence": sf.text,
                "score": round(min(fact_share, support), 4),
                "words": round(words, 3),
                "semantic": None if sem is None else round(sem[i][0], 3),
                "facts": [f.as_dict() for f in sf.facts],
            }
        )
    score = min((r["score"] for r in rows), default=1.0)
    failed = [f for r in rows for f in r["facts"] if not f["supported"]]
    weak = [
        r["sentence"]
        for r in rows
        if r["score"] < options.threshold and not any(not f["supported"] for f in r["facts"])
    ]
    passed = score >= options.threshold
    evasive = ""
    if question and options.require_answer and passed and not _REFUSAL.search(answer):
        evasive = states_nothing(question, answer) or _answers_question(question, rows)
        if evasive:
            passed, score = False, min(score, options.threshold / 2)
    support = similarity = None
    if question and contexts:
        support, best, missing = question_support(question, contexts, wins)
        checking = passed and not evasive and not _REFUSAL.search(answer)
        if checking and support < options.min_question_support:
            passed, score = False, min(score, options.threshold / 2)
            evasive = (
                f"the context does not address the question: at most {support:.0%} of its key words "
                f"(missing {', '.join(missing[:6]) or 'none'}) in any passage, under "
                f"{options.min_question_support:.0%}"
            )
        elif options.min_question_similarity and support < options.question_support_trusted:
            similarity = question_similarity(question, contexts, wins)
            if checking and similarity is not None and similarity < options.min_question_similarity:
                passed, score = False, min(score, options.threshold / 2)
                evasive = (
                    f"the context does not address the question: its closest passage means "
                    f"something else (similarity {similarity:.2f} < {options.min_question_similarity}) "
                    f"and holds only {support:.0%} of its key words (missing "
                    f"{', '.join(missing[:6]) or 'none'})"
                )
    reason = evasive
    if not contexts:
        reason = "no retrieved context to support the answer"
    elif not passed and not evasive:
        parts = [f"{f['kind']} '{f['text']}': {f['why']}" for f in failed[:5]]
        parts += [f"sentence not supported: '{s[:120]}'" for s in weak[:3]]
        reason = "; ".join(parts) or f"score {score:.2f} < {options.threshold}"
    return {
        "score": round(score, 4),
        "passed": passed,
        "reason": reason,
        "failed_claims": failed,
        "sentences": rows,
        "semantic_model": semantic_note,
        "question_support": support,
        "question_similarity": similarity,
        "unanswerable": support is not None
        and (
            support < options.min_question_support
            or (similarity is not None and similarity < options.min_question_similarity)
        ),
    }


def question_similarity(question: str, contexts: Sequence[str], wins: Sequence[Window]) -> float | None:
    """How close the question's meaning comes to the context: the mean of its best cosine to one
    window (a sentence and its neighbours) and to one whole context; ``None`` when the sentence
    model cannot load (the check then rests on words alone)."""
    from llmforge.errors import ModelError

    try:
        from llmforge.guard.semantic import sentence_support

        (best_window, _), (best_context, _) = (
            sentence_support([question], texts)[0] for texts in ([w.text for w in wins], list(contexts))
        )
    except (ImportError, OSError, ModelError):  # no sentence model here: words alone decide
        return None
    return round((best_window + best_context) / 2, 4)


def faithfulness_score(
    answer: str, contexts: Sequence[str], options: FaithfulnessOptions = DEFAULT
) -> tuple[float, list[dict]]:
    """``(score in [0, 1], per-sentence rows)``: the guard's own measure, for evaluation."""
    v = check(answer, contexts, options)
    return v["score"], v["sentences"]


class Faithfulness(Guardrail):
    name = "faithfulness"
    description = "names, numbers, dates, codes and sentences of the answer must be supported by the context"
    Options = FaithfulnessOptions

    def check_output(self, question: str, answer: str, contexts: Sequence[str]) -> GuardResult:
        v = check(answer, contexts, self.options, question=question)
        action = self.options.action
        flagged = not v["passed"] and action == "flag"
        details = {**v, "policy": action, "threshold": self.options.threshold}
        if flagged:
            details["flagged"] = True
        # ``flag`` keeps the answer: the verdict passes, marked, with the failed claims
        return GuardResult(self.name, v["passed"] or flagged, v["score"], v["reason"], details)
