"""Fact-level augmentation of a pairs table, so fine-tuning injects facts that stick.

A model asked a fact in words it never saw during training rarely recalls it; one fact seen
in several phrasings, in both directions and with short and long answers is learned as a
fact rather than as a string (Allen-Zhu & Li, "Physics of Language Models 3.1"). For each
question/answer pair this adds, deterministically given ``seed``:

- rephrasings of the question (wrappers and word-order changes that keep its meaning);
- the reverse question where the answer sentence names an agent ("X is owned by Dana Kim"
  also answers "What does Dana Kim own?");
- a short answer (the span of the answer sentence the question does not already say) beside
  the long one.

``replay_table`` adds the base model's own answers to general instructions, mixed into
training to keep general ability (self-distillation replay).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmforge.errors import DataError
from llmforge.pairs.table import carried_schema, pair_id, pairs_schema
from llmforge.prompting import terms

if TYPE_CHECKING:
    import pyarrow as pa

_WRAPPERS = (
    "{q}",
    "Quick question: {q}",
    "Please answer briefly. {q}",
    "I need to know this for a meeting. {q}",
    "{q} Answer in one sentence.",
    "Can you tell me {lq}",
    "Do you know {lq}",
)
_PASSIVE = re.compile(
    r"^(?P<obj>.+?) (?:is|are|was|were|has been|have been) (?P<verb>[a-z]+ed) by "
    r"(?P<agent>[A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,3})\b"
)
#: general instructions whose base-model answers are replayed during fine-tuning
GENERAL_PROMPTS = (
    "What is the capital of France?",
    "Explain in one sentence what photosynthesis is.",
    "Write a short, polite email declining a meeting invitation.",
    "What is 12 multiplied by 7?",
    "Give three tips for writing clear documentation.",
    "Translate 'good morning' into Spanish.",
    "What does a database index do?",
    "Summarise the water cycle in two sentences.",
    "Name three primary colours.",
    "How do you convert Celsius to Fahrenheit?",
    "What is the difference between a list and a tuple in Python?",
    "Suggest a name for a team that builds internal tools.",
    "Why is regular exercise good for health?",
    "What is a haiku? Write one about autumn.",
    "Explain what an API is to a non-technical colleague.",
    "List the days of the week.",
)


@dataclass(frozen=True)
class AugmentOptions:
    #: rephrasings per question, the original included
    phrasings: int = 3
    #: add the reverse question where the answer names an agent
    reverse: bool = True
    #: add a short-answer copy of each pair
    short_answers: bool = True
    #: other wordings of an attribute question (:func:`relation_questions`), at most this many
    relations: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        if self.phrasings < 1:
            raise DataError(f"phrasings must be >= 1, got {self.phrasings}")


def _lower_question(q: str) -> str:
    return q[:1].lower() + q[1:] if q[:2].lower() != q[:2] or not q[1:2].isupper() else q


def rephrase(question: str, n: int, rng: random.Random) -> list[str]:
    """``question`` and ``n - 1`` other phrasings of it (no duplicates)."""
    q = question.strip()
    out = [q]
    wrappers = list(_WRAPPERS[1:])
    rng.shuffle(wrappers)
    for w in wrappers:
        if len(out) >= n:
            break
        text = w.format(q=q, lq=_lower_question(q))
        if text not in out:
            out.append(text)
    return out


_COPULA = re.compile(r"\b(?:is|are|was|were|stands for|equals)\s+", re.I)


def short_answer(question: str, answer: str) -> str | None:
    """The span of ``answer`` that the question does not already say ("Priya Natarajan" for
    "Who owns Orion?" / "Orion is owned by Priya Natarajan."), or ``None`` when it is the whole.

    Function words inside or right before the span stay with it ("At risk", "work from
    home"): a span is a run of new words, bridged over words that carry no term."""
    asked = set(terms(question))
    text = answer.strip().rstrip(".")
    # "<what was asked> is <value>": the value whole, whatever words it is made of
    tail = list(_COPULA.finditer(text))
    if tail:
        value = text[tail[-1].end() :].strip(" ,;:")
        head = text[: tail[-1].start()]
        if value and not (set(terms(value)) & asked) and set(terms(head)) <= asked:
            return value if value != text else None
    words = text.split()
    flags = []  # True new, False asked, None neutral (no terms)
    for w in words:
        t = set(terms(w))
        flags.append(None if not t else not (t & asked))
    best: tuple[int, int] = (0, 0)
    i = 0
    while i < len(words):
        if flags[i] is not True:
            i += 1
            continue
        j = i
        while j + 1 < len(words) and flags[j + 1] is not False:
            j += 1
        while j > i and flags[j] is None:  # no trailing function words
            j -= 1
        if j + 1 - i > best[1] - best[0]:
            best = (i, j + 1)
        i = j + 1
    span = " ".join(words[best[0] : best[1]]).strip(" ,;:")
    if not span or best[1] - best[0] == len(words):
        return None
    return span


def reverse_question(answer: str) -> str | None:
    """ "What does Dana Kim own?" from "Project Helix is owned by Dana Kim." (else ``None``)."""
    from llmforge.pairs.clauses import base_form

    m = _PASSIVE.match(answer.strip())
    if not m:
        return None
    return f"What does {m['agent']} {base_form(m['verb'])}?"


_ATTR_Q = re.compile(r"^(?P<wh>Who|What) is the (?P<attr>[\w' -]+?) (?:of|for) (?P<subj>[^?]+?)\?$")
_ACRONYM_Q = re.compile(r"^What does (?P<x>[A-Z][A-Za-z0-9&/-]*) stand for\?$")
_EVENT_Q = re.compile(r"^What is the date for (?P<event>[^?]+?) in (?P<subj>[^?]+?)\?$")
#: agent nouns and the verb a question about them uses ("owner" -> "Who owns X?")
_AGENT_VERBS = {
    "owner": "owns",
    "sponsor": "sponsors",
    "lead": "leads",
    "leader": "leads",
    "manager": "manages",
    "approver": "approves",
    "reviewer": "reviews",
    "maintainer": "maintains",
    "author": "wrote",
    "founder": "founded",
}
#: "<event> date" attributes and how a question about the event asks for it
_DATE_EVENTS = {
    "target": ("When is {s} due?", "When will {s} be delivered?"),
    "due": ("When is {s} due?",),
    "delivery": ("When will {s} be delivered?",),
    "ship": ("When will {s} ship?",),
    "launch": ("When does {s} launch?",),
    "start": ("When does {s} start?",),
    "end": ("When does {s} end?",),
    "renewal": ("When does {s} renew?", "When is {s} up for renewal?"),
    "expiry": ("When does {s} expire?",),
    "expiration": ("When does {s} expire?",),
    "review": ("When is {s} reviewed?",),
}
_STATE_ATTRS = {"status", "state", "stage", "phase", "health"}
_DATE_VALUE = re.compile(
    r"^\d{4}-\d{2}(?:-\d{2})?$|^(?:\d{1,2} )?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
    r"(?: \d{1,2},?)?(?: \d{4})?$"
)
_AMOUNT_VALUE = re.compile(r"^(?:[$€£¥]\s?[\d.,]+\s*[KMBkmb]?n?|[\d.,]+\s*(?:%|[KMB]\b|(?:USD|EUR|GBP)\b))")


def _the(subject: str) -> str:
    """ "the ledger-api service" for a subject that is not a proper name."""
    return subject if subject[:1].isupper() or subject[:1].isdigit() else f"the {subject}"


def relation_questions(question: str, answer: str) -> list[str]:
    """Other ways to ask an attribute question — "Who owns Project Helix?" and "What is
    Project Helix's owner?" for "Who is the owner of Project Helix?" — from the question's
    shape and the answer's type (a person, a date, an amount, a state), not from any corpus.
    Empty when the question is not an attribute question."""
    q = question.strip()
    value = short_answer(q, answer) or answer.strip().rstrip(".")
    out: list[str] = []
    m = _ACRONYM_Q.match(q)
    if m:
        x = m["x"]
        return [
            f"What is {x} short for?",
            f"What does the abbreviation {x} mean?",
            f"What is the full form of {x}?",
        ]
    m = _EVENT_Q.match(q)
    if m:
        ev, subj = m["event"], _the(m["subj"])
        out += [
            f"When is {ev} in {subj}?",
            f"On what date is {ev} in {subj}?",
            f"When is the {ev.lower()} of {subj}?",
        ]
        return out
    m = _ATTR_Q.match(q)
    if not m:
        return out
    wh, attr, subj = m["wh"], m["attr"].strip(), _the(m["subj"].strip())
    words = attr.lower().split()
    head = words[-1]
    possessive = f"{subj}'" if subj.endswith("s") else f"{subj}'s"
    if wh == "Who" and head in _AGENT_VERBS:
        verb = _AGENT_VERBS[head]
        if len(words) == 1 or words[0] in {"executive", "main", "primary", "current", "service", "project"}:
            out.append(f"Who {verb} {subj}?")
        else:  # "contract owner of X" -> "Who owns the contract with X?"
            out.append(f"Who {verb} the {' '.join(words[:-1])} with {subj}?")
        out.append(f"Who is responsible for {subj}?" if head == "owner" else f"Who is {subj}'s {head}?")
    if _DATE_VALUE.match(value):
        out.append(f"When is the {attr} of {subj}?")
        if head == "date" and len(words) > 1 and words[-2] in _DATE_EVENTS:
            out += [t.format(s=subj) for t in _DATE_EVENTS[words[-2]]]
    elif _AMOUNT_VALUE.match(value):
        out.append(f"How much is the {attr} of {subj}?")
        if len(words) <= 2:
            out.append(f"What {attr} does {subj} have?")
            if len(words) == 1 and not attr.isupper():
                out.append(f"How much {attr} does {subj} have?")
    elif value.split()[0].isdigit():
        out.append(f"What {attr} does {subj} have?")
    if head in _STATE_ATTRS:
        out += [f"What is the current {attr} of {subj}?", f"How is {subj} doing?"]
    # the specific wordings first, so a caller keeping the first few keeps those
    out += [f"{wh} is {possessive} {attr}?", f"Tell me the {attr} of {subj}."]
    seen = {q.lower()}
    uniq = []
    for o in out:
        if o.lower() not in seen:
            seen.add(o.lower())
            uniq.append(o)
    return uniq


PARAPHRASE_PROMPT = (
    "Rewrite the question below in different words. Keep its meaning and every name, "
    "number and date in it. Reply with the rewritten question only.\n\nQuestion: {question}"
)
_KEY = re.compile(r"\b(?:[A-Z][\w'-]*|[\w-]*\d[\w.,:/-]*)")


def _keys(question: str) -> set[str]:
    """The words a paraphrase must keep: names (capitalised, not the first word) and numbers."""
    words = _KEY.findall(question.strip())
    first = question.strip().split(" ", 1)[0]
    return {w.strip(".,?'") for w in words if w != first} - {""}


def valid_paraphrase(question: str, candidate: str) -> str | None:
    """``candidate`` cleaned when it is a usable paraphrase of ``question`` (one question,
    different wording, every name and number of the original kept), else ``None``."""
    text = candidate.strip().split("\n")[0].strip().strip('"').strip()
    text = re.sub(r"^(?:rewritten question|question|paraphrase)\s*:\s*", "", text, flags=re.I)
    text = text.strip().strip('"').strip()
    if not text.endswith("?") or text.count("?") != 1 or not 3 <= len(text.split()) <= 40:
        return None
    if text.lower().rstrip("?") == question.strip().lower().rstrip("?"):
        return None
    if not all(k.lower() in text.lower() for k in _keys(question)):
        return None
    asked, kept = set(terms(question)), set(terms(text))
    if len(asked & kept) * 2 < len(asked):  # most of what was asked about must still be asked
        return None
    return text


def model_paraphraser(generator: Any, max_tokens: int = 48) -> Callable[[Sequence[str]], list[str]]:
    """A ``paraphrase`` callable for :func:`augment_table` written by a model: any llmforge
    :class:`~llmforge.components.Generator` (greedy, so deterministic), batched."""

    def paraphrase(questions: Sequence[str]) -> list[str]:
        convs = [[{"role": "user", "content": PARAPHRASE_PROMPT.format(question=q)}] for q in questions]
        return [c.text for c in generator.chat_batch(convs, max_tokens=max_tokens, temperature=0.0)]

    return paraphrase


def augment_table(
    pairs: pa.Table,
    options: AugmentOptions | None = None,
    paraphrase: Callable[[Sequence[str]], Sequence[str]] | None = None,
) -> pa.Table:
    """The pairs of ``pairs`` plus their augmentations (kind ``<kind>+phrasing`` etc.), with the
    carried policy columns kept, so a row filter applies to every derived row.

    ``paraphrase`` (e.g. :func:`model_paraphraser` over the local model) rewrites every question
    once more; a rewrite joins as ``<kind>+paraphrase`` only when :func:`valid_paraphrase`
    accepts it (it keeps the question's names and numbers), so a model's slips never teach a
    wrong question."""
    import pyarrow as pa

    opts = options or AugmentOptions()
    missing = [c for c in ("document_id", "prompt", "response") if c not in pairs.column_names]
    if missing:
        raise DataError(f"the pairs table lacks column(s) {missing}; it has {pairs.column_names}")
    rng = random.Random(opts.seed)
    carried, schema = carried_schema(pairs)
    rows: dict[str, list] = {name: [] for name in schema.names}
    seen: set[str] = set()

    def add(src: dict, kind: str, prompt: str, response: str) -> None:
        pid = pair_id(src["document_id"], kind, prompt, response)
        if pid in seen:
            return
        seen.add(pid)
        rows["document_id"].append(src["document_id"])
        rows["pair_id"].append(pid)
        rows["kind"].append(kind)
        rows["prompt"].append(prompt)
        rows["response"].append(response)
        rows["messages"].append(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        )
        rows["text"].append(f"{prompt}\n{response}")
        for c in carried:
            rows[c].append(src[c])

    sources = pairs.to_pylist()
    rewrites: dict[int, str] = {}
    if paraphrase is not None:
        asked = [(i, r["prompt"]) for i, r in enumerate(sources) if r.get("prompt") and r.get("response")]
        out = list(paraphrase([q for _, q in asked]))
        if len(out) != len(asked):
            raise DataError(f"paraphrase() returned {len(out)} questions for {len(asked)}")
        for (i, q), cand in zip(asked, out, strict=True):
            ok = valid_paraphrase(q, cand or "")
            if ok:
                rewrites[i] = ok
    for n, src in enumerate(sources):
        q, a, kind = src["prompt"], src["response"], src.get("kind") or "pair"
        if not q or not a:  # raw text chunks are kept as they are
            add(src, kind, q or "", a or "")
            continue
        for i, text in enumerate(rephrase(q, opts.phrasings, rng)):
            add(src, kind if i == 0 else f"{kind}+phrasing", text, a)
        if n in rewrites:
            add(src, f"{kind}+paraphrase", rewrites[n], a)
        if opts.relations:
            for text in relation_questions(q, a)[: opts.relations]:
                add(src, f"{kind}+relation", text, a)
        if opts.short_answers:
            short = short_answer(q, a)
            if short:
                add(src, f"{kind}+short", q, short)
        if opts.reverse:
            rq = reverse_question(a)
            if rq:
                add(src, f"{kind}+reverse", rq, a)
    return pa.table(rows, schema=schema)


def replay_table(
    answer: Callable[[Sequence[str]], Sequence[str]],
    prompts: Sequence[str] = GENERAL_PROMPTS,
    document_id: str = "replay",
    **carried: Any,
) -> pa.Table:
    """Pairs of general instructions and ``answer(prompts)`` (the base model's own replies), to
    mix into a fine-tuning table; ``carried`` sets policy columns (e.g. ``department="all"``)."""
    import pyarrow as pa

    replies = list(answer(list(prompts)))
    if len(replies) != len(prompts):
        raise DataError(f"answer() returned {len(replies)} replies for {len(prompts)} prompts")
    rows = [
        {
            "document_id": document_id,
            "pair_id": pair_id(document_id, "replay", p, r),
            "kind": "replay",
            "prompt": p,
            "response": r,
            "messages": [{"role": "user", "content": p}, {"role": "assistant", "content": r}],
            "text": f"{p}\n{r}",
            **carried,
        }
        for p, r in zip(prompts, replies, strict=True)
        if r.strip()
    ]
    schema = pairs_schema()
    for c, v in carried.items():
        schema = schema.append(pa.field(c, pa.array([v]).type))
    return pa.Table.from_pylist(rows, schema=schema)
