"""Does the retrieved context address the question at all? (abstention on unanswerable questions)

Retrieval always returns *something*, and a passage on the right topic often does not hold
the answer (ClapNQ's unanswerable questions come with exactly such passages). A small model
then copies a faithful but irrelevant sentence, which the faithfulness check cannot refuse.

:func:`question_support` scores how much of the question one stretch of the context (a
sentence and its neighbours, :func:`llmforge.guard.facts.windows`) states: the weighted share
of the question's content words found in the best window, each word weighted by how rare it
is across the windows (a word every window holds, such as the document's subject, says little
about which sentence answers). The document's title words count as present everywhere in it.
A question asking for a date or a number ("when ...", "how many ...") also counts a window
holding a value of that kind as stating the asked-for part. The faithfulness guard refuses an
answer when this score is under its ``min_question_support`` option (see its comment, and
``benchmarks/bench_rag_clapnq.py`` for the dev/test figures).

It is lexical: a paraphrase the context words differently ("ship" for "target date") scores
lower, which is why the default threshold is conservative.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from llmforge.guard.facts import Window, norm, windows, word_list
from llmforge.text import STOP_WORDS

#: question words that name no subject ("what is the name of ...", "how many ...")
QUESTION_WORDS = frozenset(
    {
        "many",
        "much",
        "called",
        "name",
        "named",
        "does",
        "did",
        "mean",
        "means",
        "meaning",
        "stand",
        "known",
        "list",
    }
)


#: irregular English verbs: a question's "when did it break out" is answered by "broke out"
_IRREGULAR = {
    base: forms.split()
    for base, forms in {
        "be": "was were been",
        "become": "became",
        "begin": "began begun",
        "break": "broke broken",
        "bring": "brought",
        "build": "built",
        "buy": "bought",
        "choose": "chose chosen",
        "come": "came",
        "die": "died dead death",
        "do": "did done",
        "draw": "drew drawn",
        "drive": "drove driven",
        "eat": "ate eaten",
        "fall": "fell fallen",
        "fight": "fought",
        "find": "found",
        "fly": "flew flown",
        "get": "got gotten",
        "give": "gave given",
        "go": "went gone",
        "grow": "grew grown",
        "hold": "held",
        "know": "knew known",
        "lead": "led",
        "leave": "left",
        "lose": "lost",
        "make": "made",
        "meet": "met",
        "pay": "paid",
        "ride": "rode ridden",
        "rise": "rose risen",
        "run": "ran",
        "say": "said",
        "see": "saw seen",
        "sell": "sold",
        "send": "sent",
        "shoot": "shot",
        "sing": "sang sung song",
        "sink": "sank sunk",
        "speak": "spoke spoken",
        "spend": "spent",
        "stand": "stood",
        "steal": "stole stolen",
        "strike": "struck",
        "take": "took taken",
        "teach": "taught",
        "tell": "told",
        "think": "thought",
        "throw": "threw thrown",
        "wear": "wore worn",
        "win": "won",
        "write": "wrote written writer",
    }.items()
}
_FORMS = {w: [base, *forms] for base, forms in _IRREGULAR.items() for w in [base, *forms]}


def _holds(win: Window, term: str) -> bool:
    """``win`` states ``term``: the word, one of its irregular forms, or its document's title."""
    if term in win.topic or norm(term) in {norm(t) for t in win.topic}:
        return True
    return any(win.has_word(f) for f in _FORMS.get(term, [term]))


def question_terms(question: str) -> list[str]:
    """The question's content words, in order, each once."""
    words = word_list(question or "")
    return list(
        dict.fromkeys(w for w in words if len(w) > 1 and w not in STOP_WORDS and w not in QUESTION_WORDS)
    )


_KINDS = [
    ("date", re.compile(r"^\s*when\b|\b(what|which) (date|day|year|month|time)\b", re.I)),
    (
        "number",
        re.compile(
            r"\bhow (much|many|long|old|far|big|tall|often)\b|\bwhat (percentage|number|amount)\b", re.I
        ),
    ),
]


def asked_kind(question: str) -> str:
    """``date`` or ``number`` when the question asks for a value of that kind, else empty."""
    return next((kind for kind, pattern in _KINDS if pattern.search(question or "")), "")


def _has_kind(win: Window, kind: str) -> bool:
    if kind == "date":
        return bool(win.dates) or any(1000 <= v <= 2100 and v == int(v) for v in win.values)
    return bool(win.values)


def question_support(
    question: str, contexts: Sequence[str], wins: Sequence[Window] | None = None
) -> tuple[float, str, list[str]]:
    """``(score in [0, 1], best window's text, question words it lacks)``.

    1.0 for a question without content words (nothing to check); 0.0 without context.
    """
    terms = question_terms(question)
    if not terms:
        return 1.0, "", []
    wins = list(wins) if wins is not None else windows([c for c in contexts if c and c.strip()])
    if not wins:
        return 0.0, "", terms
    found = {t: [_holds(w, t) for w in wins] for t in terms}
    slot = asked_kind(question)
    if slot:  # "when ...": a window holding a date states the asked-for part of the question
        terms = [*terms, f"<{slot}>"]
        found[f"<{slot}>"] = [_has_kind(w, slot) for w in wins]
    n = len(wins)
    weight = {t: math.log(1 + n / (1 + sum(hits))) for t, hits in found.items()}
    total = sum(weight.values()) or 1.0
    best, best_i = -1.0, 0
    for i in range(n):
        s = sum(weight[t] for t in terms if found[t][i]) / total
        if s > best:
            best, best_i = s, i
    missing = [t for t in terms if not found[t][best_i] and not t.startswith("<")]
    return round(best, 4), wins[best_i].text[:300], missing


#: words that answer a yes/no question on their own
_YES_NO = re.compile(
    r"^\s*(is|are|was|were|am|can|could|do|does|did|will|would|should|shall|has|have|had|may|must)\b", re.I
)
_MARKERS = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_ANSWER_WORDS = frozenset({"yes", "no", "not", "never", "none", "true", "false"})


def states_nothing(question: str, answer: str) -> str:
    """Empty, or why ``answer`` gives no answer: it only restates the question ("The names of
    the king's two sons are"), stops where the answer should start ("The original text is:")
    or repeats itself ("the island of the island of ...")."""
    words = [w for w in word_list(answer or "") if len(w) > 1 or w.isdigit()]
    if not words:
        return ""
    asked = {norm(w) for w in word_list(question or "")}
    new = [w for w in words if (w not in STOP_WORDS or w in _ANSWER_WORDS) and norm(w) not in asked]
    if not new and not _YES_NO.match(question or ""):  # "Is X allowed?" "X is allowed." answers
        return "the answer only restates the question: it states nothing the question does not"
    if _MARKERS.sub("", answer).rstrip().endswith(":"):
        return "the answer announces an answer that never comes (it ends with a colon)"
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    if grams and max(grams.count(g) for g in set(grams)) >= 3:
        return "the answer repeats itself instead of stating an answer"
    return ""
