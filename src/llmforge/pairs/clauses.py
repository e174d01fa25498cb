"""Questions from plain sentences: patterns over one clause, whatever the document's format.

A clause is split into subject, verb group and rest by a small verb lexicon and English
morphology (no tagger, no model: this runs inside a Spark UDF). Each shape gives its questions,
and the answer is always the sentence itself, so nothing is invented:

==================================  =====================================================
``Dana Kim owns the Helix migration``  Who owns the Helix migration? / What does Dana Kim own?
``The Q3 travel budget is $45,000``    What is the Q3 travel budget?
``The migration is on track``          What is the status of the migration?
``A sprint is a two-week block ...``   What is a sprint?
``Burn rate means ...``                What does burn rate mean?
``Orion was paused in May because ..`` Why was Orion paused in May? / When was Orion paused?
``Contractors must return laptops      Who must return laptops within 5 business days? /
within 5 business days``               Within how many business days must contractors return laptops?
``Alcohol is not reimbursed``          Is alcohol reimbursed?
==================================  =====================================================

Slots (a date, a duration, an amount, a frequency) in the rest of the clause each add a
``When`` / ``How long`` / ``How much`` / ``How often`` question with the slot taken out.
A pronoun subject (``It was paused ...``) takes the previous sentence's subject.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_BE = {"is", "are", "was", "were"}
_MODALS = {"must", "should", "shall", "will", "can", "cannot", "may", "might", "would", "could"}
_HAVE = {"has", "have", "had"}
_DO = {"does", "do", "did"}
_AUX = _BE | _MODALS | _HAVE | _DO
_BASES = (  # noqa: SIM905 - one readable word list
    "own lead manage run approve handle cover report require replace include start end expire "
    "launch move pause hire supply provide support negotiate sign review pay spend cost take need "
    "use serve sell buy build maintain host process receive send join leave close open rise fall "
    "grow drop increase decrease reduce change keep meet hold set plan schedule assign deliver ship "
    "release deploy win lose renew cancel delay rotate fix resolve create write publish update store "
    "delete track check audit reject fund employ contain belong apply allow offer give get make go "
    "come become remain stay last begin oversee approve chair coordinate sponsor invoice bill earn "
    "save owe lease rent order sponsor head mean refer define expect happen finish complete replace "
    "double triple cut raise lower limit cap protect restrict grant share"
).split()
_IRREGULAR = {
    "led": "lead", "ran": "run", "paid": "pay", "spent": "spend", "took": "take", "held": "hold",
    "set": "set", "met": "meet", "kept": "keep", "built": "build", "sold": "sell", "bought": "buy",
    "won": "win", "lost": "lose", "sent": "send", "left": "leave", "rose": "rise", "fell": "fall",
    "grew": "grow", "began": "begin", "became": "become", "made": "make", "gave": "give",
    "got": "get", "went": "go", "came": "come", "wrote": "write", "chose": "choose", "cut": "cut",
    "found": "find", "told": "tell", "brought": "bring", "oversaw": "oversee", "meant": "mean",
    "has": "have", "does": "do", "goes": "go",
}  # fmt: skip
_PARTICIPLES = {"owned", "led", "run", "paid", "spent", "taken", "held", "set", "kept", "built", "sold",
                "bought", "won", "lost", "sent", "made", "given", "written", "chosen", "cut", "found",
                "overseen", "done", "seen", "known", "begun", "grown"}  # fmt: skip
_DETERMINERS = {"the", "a", "an", "all", "each", "every", "any", "our", "its", "their", "this", "that",
                "these", "those", "some", "no", "new", "existing", "his", "her", "my", "your"}  # fmt: skip
_PRONOUNS = {"it", "they", "this", "he", "she", "that"}
_PEOPLE = {"staff", "employees", "employee", "contractors", "contractor", "managers", "manager", "team",
           "people", "customers", "customer", "users", "user", "engineers", "analysts", "hires",
           "everyone", "members", "directors", "owners", "officers", "workers", "interns",
           "admins", "leads", "approvers", "vendors", "partners", "candidates", "applicants"}  # fmt: skip
_NOT_SUBJECT = {"in", "on", "at", "by", "for", "with", "from", "above", "below", "under", "over", "after",
                "before", "during", "to", "of", "thanks", "thank", "please", "hi", "hello", "see", "note", "welcome", "questions",
                "if", "when", "where", "why", "how", "what", "who", "which", "there", "here"}  # fmt: skip
_RELATIVE = {"who", "which", "that", "whose", "whom", "where", "when", "if", "because", "although"}
_STATUS = re.compile(
    r"^(?:on track|at risk|off track|delayed|blocked|paused|on hold|in progress|complete|completed|"
    r"done|cancelled|canceled|live|late|ahead of schedule|behind schedule|green|amber|red|yellow)$",
    re.IGNORECASE,
)
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_TIME = r"\d{1,2}(?::\d\d)?\s?(?:am|pm)|\d{1,2}:\d\d"
_DATE = (
    rf"(?:{_MONTH}(?: \d{{1,2}}(?:st|nd|rd|th)?)?(?:,? \d{{4}})?|\d{{4}}-\d\d-\d\d|Q[1-4](?: \d{{4}})?|"
    rf"{_DAY}|(?:19|20)\d\d|(?:{_TIME})(?: to (?:{_TIME}))?(?: [A-Z][a-z]+)?|noon|midnight)"
)
_NUM = r"(?:\d+(?:[.,]\d+)?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a|an)"
_UNIT = r"(?P<unit>minute|hour|day|week|month|quarter|year)s?"
_SLOTS: list[tuple[re.Pattern, str]] = [
    (re.compile(rf"\b(?P<prep>within|after|in) (?:(?:their|the|its|his|her) )?(?:first )?{_NUM} "
                rf"(?:(?P<kind>business|working|calendar) )?{_UNIT}(?P<of> of \w+)?\b"), "within"),
    (re.compile(rf"\bfor (?:about |up to |at least )?{_NUM} (?:(?:business|working|calendar) )?{_UNIT}\b"),
     "how long"),
    (re.compile(rf"\b(?:every|each) (?:{_NUM} )?{_UNIT}\b|\b(?:daily|weekly|monthly|quarterly|"
                r"annually|yearly)\b"), "how often"),
    (re.compile(rf"\b(?P<prep>on|in|by|before|after|until|at|from|since|during|for) {_DATE}\b"), "when"),
    (re.compile(r"\b(?P<prep>up to|at|for) [$€£]\d[\d,]*(?:\.\d+)?(?: (?:million|billion|thousand))?"
                r"(?: per \w+)*"), "how much"),
]  # fmt: skip
_AMOUNT = re.compile(
    r"^(?:about |around |roughly |up to |over |under )?(?:[$€£]\d|\d[\d,.]*\s?(?:%|percent))"
)
_DURATION = re.compile(rf"^(?:about |around |roughly |up to |at least )?{_NUM} (?:\w+ )?{_UNIT}\b")
_PERSON = re.compile(r"^[A-Z][a-z]+(?:[ -][A-Z][a-z']+){1,2}$")
_BECAUSE = re.compile(r"(?:^|\s)because\s")
_CLAUSE_SPLIT = re.compile(r";\s+|,\s+(?:and|but|so)\s+(?=[A-Z])")


def _consonant_y(base: str) -> bool:
    return base.endswith("y") and base[-2] not in "aeiou"


def _third_person(base: str) -> str:
    """``own`` → ``owns``, ``approve`` → ``approves``, ``supply`` → ``supplies``."""
    if _consonant_y(base):
        return base[:-1] + "ies"
    return base + "es" if base.endswith(("s", "sh", "ch", "x", "o")) else base + "s"


def _past(base: str) -> str:
    if _consonant_y(base):
        return base[:-1] + "ied"
    return base + "d" if base.endswith("e") else base + "ed"


def _verbs() -> tuple[set[str], set[str]]:
    """Third-person and past forms of the lexicon's verbs (regular, plus the irregular ones)."""
    third = {_third_person(b) for b in _BASES}
    past = {_past(b) for b in _BASES} | set(_IRREGULAR) - {"has", "does", "goes"}
    return third, past


_THIRD, _PAST = _verbs()
_BASE_SET = set(_BASES)


def base_form(verb: str) -> str:
    """``owns`` → ``own``, ``approved`` → ``approve``, ``rose`` → ``rise`` (best effort)."""
    v = verb.lower()
    if v in _IRREGULAR:
        return _IRREGULAR[v]
    if v.endswith("ies"):
        return v[:-3] + "y"
    if v.endswith("ied"):
        return v[:-3] + "y"
    if v.endswith("ed"):
        stem = v[:-2]
        for cand in (stem, stem + "e", v[:-1]):
            if cand in _BASE_SET:
                return cand
        if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "lsfz":
            return stem[:-1]
        return (
            stem + "e" if stem.endswith(("at", "v", "c", "z", "ang", "rg", "dg", "us", "ur", "iz")) else stem
        )
    if v.endswith("es") and v[:-2] in _BASE_SET:
        return v[:-2]
    return v[:-1] if v.endswith("s") and not v.endswith("ss") else v


@dataclass
class Clause:
    subject: str
    aux: str  # the verb group's first word as written ("is", "must", "owns", "approved")
    rest: str  # everything after it
    sentence: str


def _is_verb(words: list[str], i: int) -> bool:
    w, prev = words[i], words[i - 1].lower()
    lw = w.lower()
    if not w.isalpha() or w[0].isupper():
        return False
    if lw in _AUX:
        return True
    if prev in _DETERMINERS or prev in {"of", "to", "for", "with", "from", "by"}:
        return False  # "an expired certificate", "of planned work", "new hires"
    if lw in _THIRD:
        return True
    if lw in _PAST:
        return True
    if (lw.endswith("ed") and len(lw) > 4) or lw.endswith(("ates", "izes", "ises", "ifies")):
        return True
    # plural subjects take the base form: "Existing customers keep the old price"
    return lw in _BASE_SET and prev.endswith("s") and not prev.endswith("ss")


def parse(sentence: str) -> Clause | None:
    """Subject / first verb / rest of a declarative sentence, or ``None``."""
    text = sentence.strip().rstrip(".").strip()
    if not text or text[-1] in "?!:" or "\n" in text:
        return None
    words = text.split()
    if len(words) < 3 or len(words) > 45 or words[0].lower().strip(",") in _NOT_SUBJECT:
        return None
    for i in range(1, min(len(words), 10)):
        if _is_verb(words, i):
            subject = words[:i]
            if any(w.lower().strip(",") in _RELATIVE for w in subject) or subject[-1].endswith(","):
                return None
            return Clause(" ".join(subject), words[i], " ".join(words[i + 1 :]), text + ".")
    return None


def _subject_case(subject: str, document: str) -> str:
    """The subject as it reads mid-sentence: "The budget" → "the budget", "Dana Kim" stays."""
    words = subject.split()
    first = words[0]
    lower = first.lower()
    if lower in _DETERMINERS:
        return lower + subject[len(first) :]
    if first.isupper() or _PERSON.match(subject) or (len(words) > 1 and words[1][:1].isupper()):
        return subject
    capitalised_elsewhere = re.search(rf"[a-z,;] +{re.escape(first)}\b", document) is not None
    plural = lower.endswith("s") and not lower.endswith(("ss", "as", "us", "is"))
    if re.search(rf"\b{re.escape(lower)}\b", document) is not None or (
        (len(words) > 1 or plural) and not capitalised_elsewhere
    ):
        return lower + subject[len(first) :]
    return subject


def _who(subject: str, cased: str) -> str:
    """``Who`` for people and proper names kept capitalised mid-sentence ("Finance"), else ``What``."""
    head = subject.split()[-1].lower()
    if _PERSON.match(subject) or head in _PEOPLE or (cased[:1].isupper() and len(subject.split()) <= 2):
        return "Who"
    return "What"


def _drop(rest: str, span: tuple[int, int]) -> str:
    return " ".join((rest[: span[0]] + rest[span[1] :]).split()).strip(" ,")


def _slot_questions(c: Clause, subj: str, lead: str, verb_tail: str, rest: str) -> Iterator[str]:
    """``When``/``How long``/... questions for each slot in ``rest``.

    ``lead`` is the inverted auxiliary ("was", "must", "does"), ``verb_tail`` what follows the
    subject before ``rest`` ("paused", "return", "") .
    """
    for pattern, kind in _SLOTS:
        m = pattern.search(rest)
        if not m:
            continue
        left = _drop(rest, m.span())
        if kind == "how much":
            left = left.split(" of ")[0] if left.startswith("of ") else left
            word = "How much" if m["prep"] == "up to" else f"{m['prep'].capitalize()} what amount"
        elif kind == "within":
            kind_word = f"{m['kind']} " if m["kind"] else ""
            word = f"{m['prep'].capitalize()} how many {kind_word}{m['unit']}s{m['of'] or ''}"
        elif kind == "when":
            word = {"by": "By when", "until": "Until when"}.get(m["prep"], "When")
        else:
            word = kind.capitalize()
        yield " ".join(f"{word} {lead} {subj} {verb_tail} {left}".split()) + "?"


def questions(c: Clause, subj: str) -> Iterator[str]:
    """Every question this clause answers (the sentence is the answer to each)."""
    aux, low = c.aux, c.aux.lower()
    rest = c.rest
    main, reason = ([*(x.strip() for x in _BECAUSE.split(rest, maxsplit=1)), ""])[:2]
    if low in _BE:
        comp = main
        negated = comp.startswith("not ")
        comp_pos = comp[4:] if negated else comp
        first = comp_pos.split()[0].lower() if comp_pos.split() else ""
        if reason:
            yield f"Why {low} {subj} {main}?"
        if low in {"means"}:
            return
        if _STATUS.match(comp_pos):
            yield f"What {low} the status of {subj}?"
        elif first.endswith("ed") or first in _PARTICIPLES or first in {"due", "scheduled", "expected"}:
            participle, _, tail = comp_pos.partition(" ")
            by = re.match(r"by ([A-Z][\w.-]*(?: [A-Z][\w.-]*){0,2})$", tail)
            if by:  # "Helix is owned by Dana Kim" → "Who owns Helix?"
                yield f"Who {_third_person(base_form(participle))} {subj}?"
            slots = list(_slot_questions(c, subj, low, participle, tail))
            yield from slots
            if not slots and not by and not reason:
                yield f"{low.capitalize()} {subj} {comp_pos}?"
        elif _DURATION.match(comp_pos):
            yield f"How long {low} {subj}?"
        elif first in {"the", "a", "an"} or _AMOUNT.match(comp_pos) or re.match(_DATE + r"$", comp_pos):
            if _PERSON.match(c.subject) and first in {"the", "a", "an"}:
                yield f"Who {low} {comp_pos}?"
            else:
                yield f"What {low} {subj}?"
        else:
            slots = list(_slot_questions(c, subj, low, "", comp_pos))
            yield from slots
            if not slots and not reason:
                yield f"{low.capitalize()} {subj} {comp_pos}?"
        return
    if low in {"means", "mean", "meant"} or (
        low in {"refers", "stands"} and main.startswith(("to ", "for "))
    ):
        yield f"What does {subj} {base_form(low)}{' ' + main.split()[0] if low != 'means' else ''}?"
        return
    if low in _MODALS or low in _HAVE or low in _DO:
        verb, _, tail = main.partition(" ")
        if low in _HAVE and not (verb.endswith("ed") or verb in _PARTICIPLES or verb in _PAST):
            # "has" as the main verb: "Kestrel has three sites"
            yield f"{_who(c.subject, subj)} {low} {main}?"
            yield f"What {'does' if low == 'has' else 'do' if low == 'have' else 'did'} {subj} have?"
            return
        if reason:
            yield f"Why {low} {subj} {main}?"
        yield f"{_who(c.subject, subj)} {low} {main}?"
        if verb.lower() == "not":
            verb, _, tail = tail.partition(" ")
        if verb == "be":
            verb2, _, tail = tail.partition(" ")
            verb = f"be {verb2}"
        if _AMOUNT.match(tail) and low in _HAVE:
            yield f"How much {low} {subj} {verb}?"
        yield from _slot_questions(c, subj, low, verb, tail)
        return
    # a main verb: "owns", "approved", "keep"
    if low in _THIRD or low in _IRREGULAR and low in {"has", "does", "goes"}:
        do = "does"
    elif low in _PAST or low.endswith("ed"):
        do = "did"
    else:
        do = "do"
    verb = base_form(low)
    if reason:
        yield f"Why {do} {subj} {verb} {main}?"
    if not main:
        return
    yield f"{_who(c.subject, subj)} {_third_person(verb) if do == 'do' else aux} {main}?"
    obj_first = main.split()[0].lower() if main.split() else ""
    if _DURATION.match(main):
        yield f"How long {do} {subj} {verb}?"
    elif _AMOUNT.match(main):
        yield f"How much {do} {subj} {verb}?"
    elif obj_first in _DETERMINERS or main[:1].isupper() or main[:1].isdigit() or obj_first.endswith("s"):
        obj = re.split(r"\b(?:on|in|by|at|within|until|before|after) (?=" + _DATE + r"|\d)", main)[0].strip()
        if obj == main:  # no slot after the object: ask about the object itself
            yield f"What {do} {subj} {verb}?"
    yield from _slot_questions(c, subj, do, verb, main)


def statement_pairs(text: str, document: str) -> Iterator[tuple[str, str]]:
    """``(question, sentence)`` for every clause of ``text`` that states something."""
    from llmforge.text import sentences

    previous: str | None = None
    for sentence in sentences(text):
        for part in _CLAUSE_SPLIT.split(sentence):
            c = parse(part)
            if c is None:
                continue
            answer = c.sentence if part is sentence else sentence
            if c.subject.lower() in _PRONOUNS:
                if previous is None:
                    continue
                c = Clause(previous, c.aux, c.rest, f"{previous} {c.aux} {c.rest}.")
                answer = sentence if part is not sentence else c.sentence
            previous = c.subject
            subj = _subject_case(c.subject, document)
            for q in questions(c, subj):
                q = " ".join(q.split()).replace(" ?", "?")
                yield q[0].upper() + q[1:], answer
