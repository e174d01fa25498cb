"""Checkable facts in an answer (names, numbers, dates, codes, amounts) and where the context
supports them.

A fact is *supported* when it occurs in a window of the context (a sentence and its
neighbours) and that window also holds enough of the other keywords of the answer sentence
the fact came from: "Dana Kim owns Helix" is not supported by a context that names Dana Kim
only as the owner of Aurora. Names match token by token with light stemming and prefixes
("Dadaist" ~ "Dada", "Canadian" ~ "Canada"); numbers, amounts and dates match by value
("$2.4M" = "$2,400,000", "2026-09-30" = "September 30, 2026"); codes match exactly.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from llmforge.text import STOP_WORDS, stem

MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}
_MONTH = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mn": 1e6, "million": 1e6, "b": 1e9, "bn": 1e9, "billion": 1e9}
_SCALE_RE = r"(?:thousand|million|billion|bn|mn|k|m|b)\b"
_CURRENCY = r"[$€£¥₹]|usd|eur|gbp"

DATE_PATTERNS = [
    ("ymd", re.compile(r"(?<![\d-])(\d{4})-(\d{1,2})-(\d{1,2})(?![\d-])")),
    ("mdy", re.compile(rf"\b({_MONTH})\s+(\d{{1,2}})(?:st|nd|rd|th)?\s*,?\s*(\d{{4}})\b", re.I)),
    ("dmy", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH})\s*,?\s*(\d{{4}})\b", re.I)),
    ("my", re.compile(rf"\b({_MONTH})\s+(\d{{4}})\b", re.I)),
]
AMOUNT = re.compile(
    rf"(?:(?P<cur>{_CURRENCY})\s?(?P<n1>{_NUM})(?:\s?(?P<s1>{_SCALE_RE}))?)"
    rf"|(?:(?<![\w.])(?P<n2>{_NUM})\s?(?P<s2>thousand|million|billion|bn)\b)",
    re.I,
)
CODE = re.compile(r"(?<![\w-])(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:[-_/.][A-Za-z0-9]+)*(?![\w-])")
_NUMBER_SUFFIX = re.compile(r"^\d+(?:\.\d+)?(?:am|pm|st|nd|rd|th|s|k|m|bn|x|%)?$", re.I)
NUMBER = re.compile(rf"(?<![\w.,])(?:{_NUM})(?![\d])")
_CAP = r"(?<![\w'’-])[A-Z][\w'’&-]*"
#: "and" does not join names: "Adult Simba and Jonathan Taylor Thomas" are two claims
ENTITY = re.compile(rf"{_CAP}(?:(?:\s+(?:of|de|la|le|du|von|van|der|del|da|the|for))*\s+{_CAP})*")
_CONNECTORS = {"of", "de", "la", "le", "du", "von", "van", "der", "del", "da", "the", "and", "&", "for"}
_WORD = re.compile(r"\w+(?:['’]\w+)?")
_SPACED_CODE = re.compile(r"\b[A-Za-z][A-Za-z]*[ -]\d+[A-Za-z]?\b")


def _code(code: str) -> str:
    """A code compared without case or separators (``HLX-42`` = ``hlx42``)."""
    return re.sub(r"[\W_]+", "", code.lower())


_POSSESSIVE = re.compile(r"'s?$")


@dataclass
class Fact:
    """One checkable claim in an answer sentence."""

    kind: str  # entity | number | date | code | amount
    text: str
    #: what is compared: tokens (entity), a value (number, amount), a date tuple, a code string
    key: tuple
    sentence: int = 0
    supported: bool = False
    aligned: float = 0.0
    why: str = ""
    evidence: str = ""
    #: for a name not found whole: the largest share of its words found in one window
    partial: float = 0.0
    found: bool = False

    @property
    def strength(self) -> float:
        """1 when supported; under 0.4 otherwise, so one bad fact sinks its sentence."""
        if self.supported:
            return 1.0
        if self.found:
            return 0.4 * self.aligned
        return 0.3 * self.partial

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "text": self.text,
            "sentence": self.sentence,
            "supported": self.supported,
            "alignment": round(self.aligned, 3),
            "why": self.why,
            "evidence": self.evidence,
        }


def _value(num: str) -> float:
    return float(num.replace(",", ""))


def _date_key(kind: str, groups: tuple[str, ...]) -> tuple:
    if kind == "ymd":
        y, m, d = (int(g) for g in groups)
    elif kind == "mdy":
        m, d, y = MONTHS[groups[0].lower().rstrip(".")], int(groups[1]), int(groups[2])
    elif kind == "dmy":
        d, m, y = int(groups[0]), MONTHS[groups[1].lower().rstrip(".")], int(groups[2])
    else:
        m, d, y = MONTHS[groups[0].lower().rstrip(".")], None, int(groups[1])
    return (y, m, d)


def word_list(text: str) -> list[str]:
    """Lower-cased words without accents or possessive 's (``Khloé's`` -> ``khloe``)."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return [_POSSESSIVE.sub("", w.lower().replace("’", "'")) for w in _WORD.findall(text)]


def norm(word: str) -> str:
    """Light stemming that also handles short words (``owns``/``owned`` -> ``own``)."""
    if word[:1].isdigit():
        return word
    for suffix in ("ingly", "edly", "ing", "ies", "ed", "es", "s", "ly", "'s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def extract(text: str) -> list[tuple[str, str, tuple, int, int]]:
    """``(kind, text, key, start, end)`` for every fact in ``text``, each span used once."""
    taken = [False] * len(text)
    out: list[tuple[str, str, tuple, int, int]] = []

    def free(a: int, b: int) -> bool:
        return not any(taken[a:b])

    def take(kind: str, m: re.Match, key: tuple) -> None:
        a, b = m.span()
        for i in range(a, b):
            taken[i] = True
        out.append((kind, m.group(0), key, a, b))

    for kind, pat in DATE_PATTERNS:
        for m in pat.finditer(text):
            if free(*m.span()):
                try:
                    key = _date_key(kind, m.groups())
                except (KeyError, ValueError):
                    continue
                take("date", m, key)
    for m in AMOUNT.finditer(text):
        if free(*m.span()):
            n, s = (m["n1"], m["s1"]) if m["n1"] else (m["n2"], m["s2"])
            take("amount", m, (_value(n) * _SCALE.get((s or "").lower(), 1.0),))
    for m in CODE.finditer(text):
        if free(*m.span()) and not _NUMBER_SUFFIX.match(m.group(0)):
            take("code", m, (m.group(0).lower(),))
    for m in NUMBER.finditer(text):
        if free(*m.span()):
            take("number", m, (_value(m.group(0)),))
    for m in ENTITY.finditer(text):
        if not free(*m.span()):
            continue
        toks = [w for w in word_list(m.group(0)) if w not in _CONNECTORS and w not in STOP_WORDS]
        at_start = not text[: m.start()].strip(" \t`'\"(") or text[: m.start()].rstrip()[-1:] in ".!?\n:;"
        if at_start and len(toks) == 1:  # "During", "Due": capitalised only by position
            continue
        if toks:
            take("entity", m, tuple(toks))
    out.sort(key=lambda f: f[3])
    return out


class Window:
    """One stretch of context (a sentence with its neighbours) indexed for matching."""

    def __init__(self, text: str, context: int, topic: frozenset[str] = frozenset()) -> None:
        self.text, self.context = text, context
        #: words of the context's title or headings: what every sentence of it is about
        self.topic = topic
        words = word_list(text)
        self.tokens = set(words)
        self.stems = {norm(w) for w in words} | {stem(w) for w in words}
        self.prefixes = {w[:k] for w in words for k in range(3, len(w) + 1)}
        self.values: set[float] = set()
        self.dates: set[tuple] = set()
        self.codes: set[str] = set()
        self.entities: set[tuple] = set()
        for kind, _, key, _, _ in extract(text):
            if kind == "entity":
                self.entities.add(key)
            elif kind in ("number", "amount"):
                self.values.add(key[0])
            elif kind == "date":
                self.dates.add(key)
                self.values.add(float(key[0]))
                if key[2] is not None:
                    self.values.add(float(key[2]))
            elif kind == "code":
                self.codes.add(_code(key[0]))
        # "PlayStation 3" states the code "PlayStation3"
        for m in _SPACED_CODE.finditer(text):
            self.codes.add(_code(m.group(0)))
        # bare numbers inside codes and words ("9:00", "1990s") still count as numbers
        for n in re.findall(r"\d+(?:\.\d+)?", text.replace(",", "")):
            self.values.add(float(n))

    def has_word(self, w: str) -> bool:
        """Token match with light stemming and prefixes ("dadaist" ~ "dada")."""
        if w in self.tokens or norm(w) in self.stems or stem(w) in self.stems:
            return True
        if (len(w) >= 4 and w in self.prefixes) or (len(norm(w)) == 3 and norm(w) in self.prefixes):
            return True
        lo = max(5, math.ceil(0.6 * len(w)))
        if any(w[:k] in self.prefixes for k in range(lo, len(w))):
            return True
        return any(w[:k] in self.tokens for k in range(4, len(w)))

    def has_fact(self, kind: str, key: tuple) -> bool:
        if kind == "entity":
            return all(self.has_word(t) for t in key)
        if kind in ("number", "amount"):
            return key[0] in self.values
        if kind == "date":
            y, m, d = key
            return any(
                c[0] == y and (m is None or c[1] == m) and (d is None or c[2] in (d, None))
                for c in self.dates
            ) or (m is None and float(y) in self.values)
        return _code(key[0]) in self.codes

    def is_topic(self, kind: str, key: tuple) -> bool:
        return kind == "entity" and bool(self.topic) and all(t in self.topic for t in key)

    def rivals(self, kind: str, key: tuple) -> bool:
        """Holds another fact of the same kind (another name; another number or date)."""
        if kind == "entity":
            return any(e != key and not self.is_topic(kind, e) for e in self.entities)
        if kind == "code":
            return any(c != _code(key[0]) for c in self.codes)
        value = float(key[0]) if kind != "date" else None
        return bool(self.dates - {key}) if kind == "date" else any(v != value for v in self.values)


#: how much better a rival stretch of context must hold the sentence to refute a found fact
RIVAL_MARGIN = 0.25
_HEADING = re.compile(r"^\s*#{1,6}\s+(.+)$", re.M)


def _topic(ctx: str) -> frozenset[str]:
    """Content words of the context's headings and of its title line (a short first line
    without closing punctuation)."""
    lines = _HEADING.findall(ctx)
    first = ctx.strip().split("\n", 1)[0].strip()
    if first and len(first.split()) <= 8 and first[-1] not in ".!?:;,":
        lines.append(first)
    return frozenset(w for line in lines for w in word_list(line) if w not in STOP_WORDS)


_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n+")
_ABBREV = re.compile(r"(?:\b[A-Z]|\b(?:Dr|Mr|Mrs|Ms|Prof|St|Jr|Sr|Inc|Ltd|Co|Corp|vs|No|Gen|Lt|Col|Mt))\.$")


def split_sentences(text: str) -> list[str]:
    """Sentences (as :func:`llmforge.text.sentences`: at ``.!?`` before a capital, and at line
    breaks), but not after an initial or a title ("Robert P. McCulloch", "Dr. Kim"): a name
    cut in two would be checked as two claims."""
    out: list[str] = []
    start = 0
    for m in _SPLIT.finditer(text):
        piece = text[start : m.start()]
        if "\n" not in m.group(0) and _ABBREV.search(piece):
            continue
        out.append(piece)
        start = m.end()
    out.append(text[start:])
    return [x.strip() for x in out if x.strip()]


def windows(contexts: Sequence[str], radius: int = 1) -> list[Window]:
    """Overlapping windows of ``2 * radius + 1`` sentences over each context."""
    out = []
    for ci, ctx in enumerate(contexts):
        sents = split_sentences(ctx or "")
        topic = _topic(ctx or "")
        for i in range(len(sents)):
            out.append(Window(" ".join(sents[max(0, i - radius) : i + radius + 1]), ci, topic))
    return out


@dataclass
class SentenceFacts:
    text: str
    keywords: list[str]
    facts: list[Fact] = field(default_factory=list)


def keywords(text: str) -> list[str]:
    return [w for w in word_list(text) if w not in STOP_WORDS and not w.isdigit() and len(w) > 1]


def check_facts(
    answer_sentences: Sequence[str], wins: Sequence[Window], min_alignment: float
) -> list[SentenceFacts]:
    """Facts of each sentence with ``supported``/``aligned``/``why`` filled in."""
    out = []
    for si, sent in enumerate(answer_sentences):
        sf = SentenceFacts(sent, keywords(sent))
        found = extract(sent)
        for i, (kind, text, key, _, _) in enumerate(found):
            fact = Fact(kind, text, key, sentence=si)
            own = set(key) if kind == "entity" else set(word_list(text))
            others = [k for k in sf.keywords if k not in own]
            other_facts = [(k2, key2) for j, (k2, _, key2, _, _) in enumerate(found) if j != i]
            _align(fact, others, other_facts, wins, min_alignment)
            sf.facts.append(fact)
        out.append(sf)
    return out


def _share(w: Window, others: Sequence[str], other_facts: Sequence[tuple[str, tuple]]) -> float:
    """How much of the rest of the sentence ``w`` holds; the context's topic words say nothing
    about alignment (every sentence of a document about Helix is about Helix)."""
    words = [k for k in others if k not in w.topic]
    facts = [f for f in other_facts if not w.is_topic(*f)]
    share = sum(w.has_word(k) for k in words) / len(words) if words else 1.0
    if facts:  # the other names and numbers of the sentence must be nearby too
        share = (share + sum(w.has_fact(*f) for f in facts) / len(facts)) / 2
    return share


def _align(
    fact: Fact,
    others: Sequence[str],
    other_facts: Sequence[tuple[str, tuple]],
    wins: Sequence[Window],
    min_alignment: float,
) -> None:
    """Fill in whether ``fact`` is supported, how well aligned, and why not.

    A fact found in the context is refused only when it sits away from the rest of its
    sentence *and* another stretch of the context states the rest of the sentence with a
    different fact of the same kind ("Owner: Dana Kim" against "Rosa Duarte owns Helix"). A
    paraphrase with no rival ("due" for "target date") stands.
    """
    kind, key = fact.kind, fact.key
    # a document's subject is stated by all of it, but only where the rest of the sentence is
    holding = [
        (w, _share(w, others, other_facts)) for w in wins if w.has_fact(kind, key) or w.is_topic(kind, key)
    ]
    if not holding:
        fact.why = "not found in the retrieved context"
        if kind == "entity" and wins:
            fact.partial = max(sum(w.has_word(t) for t in key) / len(key) for w in wins)
        return
    best_win, best = max(holding, key=lambda p: p[1])
    fact.found, fact.aligned, fact.evidence = True, best, best_win.text[:300]
    if best >= min_alignment:
        fact.supported = True
        return
    rival = max(
        (
            (w, _share(w, others, other_facts))
            for w in wins
            if not (w.has_fact(kind, key) or w.is_topic(kind, key)) and w.rivals(kind, key)
        ),
        key=lambda p: p[1],
        default=(None, 0.0),
    )
    if rival[0] is None or rival[1] < max(min_alignment, best + RIVAL_MARGIN):
        fact.supported = True
        fact.why = "weakly aligned, but nothing in the context contradicts it"
        return
    fact.why = (
        f"found in the context, but not next to the rest of the sentence ({best:.0%} of it nearby); "
        f"the context says: '{rival[0].text[:160]}'"
    )
