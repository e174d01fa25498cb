"""The RAG prompt: the same messages at serving (``forge.rag.ask``) and at training
(retrieval-augmented fine-tuning builds its examples with :func:`rag_messages`).

Small models read short contexts far better than long ones, so the retrieved chunks are
first *focused*: split into facts (sentences, list items, table rows, ``key: value`` lines),
each fact scored against the question (shared content words, weighted by rarity, plus a bonus
when it holds the kind of answer the question asks for: a person for "who", a date for
"when", an amount for "how much"), and the best few kept in the chunk order they came from,
each tagged with the title of its document and the ``[n]`` of its chunk.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from llmforge.text import STOP_WORDS

SYSTEM = (
    "You answer questions using only the numbered context. Reply with one short sentence that "
    "states the answer, copied from the context, and cite its source as [n]. If the context does "
    "not contain the answer, reply exactly: I don't know."
)
DEFAULT_TEMPLATE = "Context:\n{context}\n\nQuestion: {question}"
#: where an answer ends: a blank line, the model starting a new context entry or turn, or an
#: end-of-turn marker that leaked into the text
STOP = ("\n\n", "\n[", "\nQuestion:", "\nContext:", "<|im_end|>", "<|endoftext|>", "</s>")
#: a line that starts a new passage or a new prompt turn: the answer is over
_CONTINUATION = re.compile(r"(?:^|\n)\s*(?:\[\d+\]|Question\s*:|Context\s*:|Answer\s*:|#{1,6}\s)", re.I)
#: an inline marker followed by a heading or a new passage's title: invented context
_INLINE_CONTINUATION = re.compile(r"\[\d+\]\s*#")
NO_ANSWER_TEXT = "I don't know."

_WORD = re.compile(r"[a-z0-9][a-z0-9$%.'-]*")
# the shared list, but "own" is content here ("Who owns X?" must match "Owner: Y"), and a few
# question words that carry no subject are added
_STOPWORDS = (STOP_WORDS - {"own"}) | {"after", "before", "current", "currently", "many", "much"}
_SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "ers", "er", "ied", "ies", "ed", "es", "s")
_DATE = re.compile(
    r"\b(\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? "
    r"\d{1,2}(st|nd|rd|th)?,? \d{4}|\d{1,2} (jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{4}|"
    r"q[1-4] \d{4}|(19|20)\d{2})\b",
    re.I,
)
_AMOUNT = re.compile(
    r"([$€£¥]\s?\d[\d,.]*\s?[kmb]?n?\b|\b\d[\d,.]*\s?(%|percent|usd|eur|dollars|million|billion)\b)", re.I
)
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_NAME = re.compile(r"\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+\b")
_FRONT_MATTER = re.compile(r"^---\n(.*?)\n---\n", re.S)
#: weight of a question word found only in the fact's document title (its subject)
TITLE_WEIGHT = 0.75
#: score added to a matching fact that holds the kind of value the question asks for
TYPED_BONUS = 2.5


def stem(word: str) -> str:
    """Stronger than :func:`llmforge.text.stem`: it also strips ``-er``, ``-ment`` and
    ``-ation``, so a fact's noun meets the question's verb (``Owner:`` / ``owns``)."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def terms(text: str) -> list[str]:
    """Content words of ``text``, lower-cased and crudely stemmed."""
    return [stem(w.strip(".'-")) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def _clean(text: str) -> str:
    text = re.sub(r"[*_`#>|]+", " ", text)
    text = re.sub(r"^\s*(?:[-+•]|\d+[.)])\s+", "", text)
    return re.sub(r"\s+", " ", text).strip(" :;")


def _blocks(body: str) -> list[str]:
    """Lines joined into paragraphs (prose wrapped over lines), while list items, table rows,
    headings and ``key: value`` lines stay one block each."""
    blocks: list[str] = []
    prose: list[str] = []
    for line in body.splitlines():
        stripped = line.strip()
        single = (
            not stripped
            or stripped[0] in "#|-+*•>"
            or re.match(r"^\d+[.)]\s", stripped)
            or re.match(r"^[\w ]{1,40}:\s", stripped)
        )
        if single:
            if prose:
                blocks.append(" ".join(prose))
                prose = []
            if stripped:
                blocks.append(stripped)
        else:
            prose.append(stripped)
    if prose:
        blocks.append(" ".join(prose))
    return blocks


def facts(text: str) -> tuple[str | None, list[str]]:
    """``(title, facts)`` of one chunk: front matter's ``title:`` or the first heading, then one
    entry per sentence, list item, table row or ``key: value`` line."""
    title, body = None, text or ""
    m = _FRONT_MATTER.match(body)
    if m:
        for line in m.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip():
                title = value.strip()
        body = body[m.end() :]
    out: list[str] = []
    for block in _blocks(body):
        if re.match(r"^\|?[\s:|-]*-{3,}[\s:|-]*$", block):  # a table's separator row
            continue
        if block.startswith("#"):
            heading = _clean(block)
            if heading and title is None:
                title = heading
            continue
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", block):
            fact = _clean(sentence)
            if len(fact) > 3:
                out.append(fact)
    return title, out


def _wants(question: str) -> re.Pattern | None:
    q = question.lower()
    if re.search(r"\b(when|what date|which date|what day|deadline|due)\b", q):
        return _DATE
    if re.search(r"\b(how much|budget|cost|price|amount|revenue|salary|spend)\b", q):
        return _AMOUNT
    if re.search(r"\b(how many|how long|how old|what percentage|number of)\b", q):
        return _NUMBER
    if re.search(r"\b(who|whom|whose)\b", q):
        return _NAME
    return None


def focus(question: str, contexts: Sequence[str], max_facts: int = 6) -> list[tuple[int, str]]:
    """The facts of ``contexts`` that best match ``question``, best first: ``[(chunk index,
    fact)]``, each prefixed with its document's title when it does not name it."""
    q_terms = set(terms(question))
    wants = _wants(question)
    cands: list[tuple[int, str, set[str], set[str], bool]] = []
    for i, text in enumerate(contexts):
        title, found = facts(text)
        title_terms = set(terms(title or ""))
        for fact in found:
            own = set(terms(fact))
            typed = wants is not None and wants.search(fact) is not None
            if title and title.lower() not in fact.lower():
                fact = f"{title} - {fact}"
            cands.append((i, fact, own, title_terms - own, typed))
    if not cands:
        return []
    df = Counter(t for _, _, own, extra, _ in cands for t in own | extra)
    idf = {t: math.log(1 + len(cands) / n) for t, n in df.items()}
    scored = []
    for pos, (i, _, own, extra, typed) in enumerate(cands):
        # words of the fact itself count fully; its document's title (the subject) half; and
        # holding the kind of value the question asks for counts like a shared rare word
        score = sum(idf[t] for t in q_terms & own) + TITLE_WEIGHT * sum(idf[t] for t in q_terms & extra)
        if typed and score > 0:
            score += TYPED_BONUS
        scored.append((score - 0.05 * i, -pos))
    scored.sort(reverse=True)
    best = scored[0][0]
    # best first (a small model reads the top of its context most closely); facts far weaker
    # than the best are left out rather than padding the prompt
    keep = [-p for score, p in scored[:max_facts] if score > 0 and score >= 0.4 * best] or [-scored[0][1]]
    return [(cands[p][0], cands[p][1]) for p in keep]


def best_quote(question: str, contexts: Sequence[str], min_coverage: float = 0.5) -> tuple[int, str] | None:
    """The single fact that answers ``question``, to quote when the model's own answer cannot be
    trusted: the best focused fact, if it pins the answer down (a ``key: value`` whose key the
    question names) or holds a new value of the kind the question asks for (a date for "when",
    a name for "who" — one the question does not already say) and shares a word with it; for
    other questions, if it shares at least ``min_coverage`` of the question's content words."""
    found = focus(question, contexts, max_facts=1)
    if not found:
        return None
    i, fact = found[0]
    q_terms = set(terms(question))
    title, _ = facts(contexts[i])
    own = fact.removeprefix(f"{title} - ") if title else fact
    shared = q_terms & set(terms(fact))
    kv = _KEY_VALUE.match(fact)
    key = set(terms(kv["key"])) if kv else set()
    if key and len(key & q_terms) * 2 >= len(key):  # the question names the key
        return i, fact
    wants = _wants(question)
    if wants is not None:
        asked = _norm(question)
        new = [m.group(0) for m in wants.finditer(own) if _norm(m.group(0)) not in asked]
        return (i, fact) if new and shared else None
    if q_terms and len(shared) / len(q_terms) >= min_coverage:
        return i, fact
    return None


_KEY_VALUE = re.compile(r"^(?:.+? - )?(?P<key>[A-Za-z][\w ()/-]{0,40}):\s*(?P<value>\S.*)$")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9$%.]+", " ", text.lower()).strip()


def expected_values(question: str, fact: str) -> set[str]:
    """The values ``fact`` gives as the answer to ``question``: the values of the asked kind (dates
    for "when", amounts for "how much", ...) or, for a ``key: value`` fact whose key the question
    names, the value. Empty when the fact does not pin the answer down."""
    wants = _wants(question)
    kv = _KEY_VALUE.match(fact)
    key = set(terms(kv["key"])) if kv else set()
    if key and len(key & set(terms(question))) * 2 >= len(key):
        return {_norm(kv["value"])}
    if wants is None or wants is _NAME:
        return set()
    return {_norm(m.group(0)) for m in wants.finditer(fact)}


def disagrees(question: str, answer: str, fact: str) -> bool:
    """``answer`` states none of the values ``fact`` gives for ``question`` (see
    :func:`expected_values`): the model read something else than the best evidence."""
    values = {v for v in expected_values(question, fact) if v}
    return bool(values) and not any(v in _norm(answer) for v in values)


_ABBREVIATIONS = frozenset(
    [
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "jr",
        "sr",
        "inc",
        "ltd",
        "co",
        "corp",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "no",
        "fig",
        "approx",
        "dept",
    ]
)
_SENTENCE_END = re.compile(r"[.!?](?:\s*\[\d+(?:\s*,\s*\d+)*\])?(?=\s+[A-Z0-9\"'(\[]|\s*$)")


def first_sentences(text: str, n: int) -> str:
    """The first ``n`` sentences of ``text`` (a ``[n]`` marker right after one stays with it)."""
    text = text.strip()
    if n <= 0:
        return text
    count = 0
    for m in _SENTENCE_END.finditer(text):
        word = text[: m.start()].rsplit(maxsplit=1)[-1] if text[: m.start()].strip() else ""
        if word.lower().strip("(") in _ABBREVIATIONS or (len(word) == 1 and word.isupper()):
            continue  # "Dr. Kim", "J. Smith": not a sentence end
        count += 1
        if count == n:
            return text[: m.end()].strip()
    return text


def context_block(question: str, contexts: Sequence[str], max_facts: int = 6) -> str:
    """The ``[n] fact`` lines the model reads (``n`` = the chunk's citation number)."""
    return "\n".join(f"[{i + 1}] {fact}" for i, fact in focus(question, contexts, max_facts))


def rag_messages(
    question: str,
    contexts: Sequence[str],
    template: str | None = None,
    system: str | None = SYSTEM,
    max_facts: int = 6,
) -> list[dict[str, str]]:
    """Chat messages for a question over retrieved chunks (serving and training alike)."""
    user = (template or DEFAULT_TEMPLATE).format(
        context=context_block(question, contexts, max_facts), question=question
    )
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def trim_answer(text: str) -> str:
    """The answer up to where the model ran on: a stop sequence it produced anyway, or the
    first invented context continuation (``[5] # All-hands notes ...``)."""
    text = text or ""
    cut = len(text)
    for stop in STOP:
        at = text.find(stop)
        if at != -1:
            cut = min(cut, at)
    m = _CONTINUATION.search(text)
    if m and m.start() > 0:
        cut = min(cut, m.start())
    m = _INLINE_CONTINUATION.search(text)
    if m:
        cut = min(cut, m.start())
    return text[:cut].strip()
