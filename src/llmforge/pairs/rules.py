"""The deterministic pair generator: rules over the Markdown structure of one document.

Kinds, in the order they are emitted:

- ``fact``: one attribute per ``Key: value`` line or pipe-table cell, asked about the
  document's subject (its title or first ``#`` heading).
  ``Owner: Dana Kim`` in *Project Helix* → "Who is the owner of Project Helix?" →
  "The owner of Project Helix is Dana Kim."
- ``statement``: every plain sentence that states something (an owner, a status, a date, an
  amount, a reason, a definition, a rule), asked from its own clause: "Orion was paused in May
  because the vendor missed two deadlines." → "Why was Orion paused in May?" → the sentence.
  See :mod:`llmforge.pairs.clauses`; this is what makes ordinary prose yield pairs.
- ``acronym``: definitions written as ``SLA (service level agreement)``,
  ``service level agreement (SLA)``, ``SLA stands for service level agreement`` or a
  ``SLA: service level agreement`` glossary line. The expansion's word initials must spell
  the acronym, which keeps names in parentheses from being taken for definitions.
- ``heading``: "What does the Project Helix document say about risks?" → the lead
  sentences of that section.
- ``summary``: "Summarize Project Helix." → the first sentence of every section.
- ``raw``: the text itself in chunks of at most :data:`RAW_CHUNK_CHARS` characters, for
  continued pre-training (``prompt`` is empty, the text is in ``response``, no messages).

The function depends on nothing but the string, so it is safe as a Spark UDF body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from llmforge.errors import ConfigError
from llmforge.pairs.clauses import statement_pairs
from llmforge.pairs.markdown import Section, clean_inline, key_value, parse_sections, prose, tables
from llmforge.text import sentences

KINDS: tuple[str, ...] = ("fact", "statement", "acronym", "heading", "summary", "raw")
#: sections answer with their lead sentences up to this many characters (at least one sentence)
SUMMARY_CHARS = 400
RAW_CHUNK_CHARS = 2000
#: a 500-row table would otherwise dominate the training set
MAX_TABLE_ROWS = 50
_PERSON_WORDS = frozenset(
    {
        "owner",
        "lead",
        "manager",
        "contact",
        "approver",
        "sponsor",
        "author",
        "head",
        "director",
        "executive",
        "champion",
        "reviewer",
        "engineer",
        "officer",
    }
)
_ACRONYM = r"[A-Z][A-Za-z0-9&]*[A-Z0-9][A-Za-z0-9&]*"
_ACR_THEN_EXPANSION = re.compile(rf"\b({_ACRONYM})\s+\(([A-Za-z][A-Za-z -]+?)\)")
_EXPANSION_THEN_ACR = re.compile(rf"((?:[A-Za-z][\w-]*\s+){{1,10}})\(({_ACRONYM})\)")
_STANDS_FOR = re.compile(rf"\b({_ACRONYM})\s+(?:stands for|means|is short for)\s+([A-Za-z][A-Za-z -]+)")
_ACR_ONLY = re.compile(rf"^{_ACRONYM}$")
_LINKING_WORDS = frozenset({"of", "and", "for", "the", "to", "in", "on", "a", "an", "&"})


def create_training_pair(
    content: str, title: str | None = None, *, kinds: Sequence[str] = KINDS
) -> list[dict]:
    """Instruction/response pairs from one document's text (Markdown or plain).

    Each pair is ``{"prompt", "response", "messages", "kind"}`` where ``messages`` is the
    chat form (``user`` then ``assistant``). Output is deterministic: the same text gives
    the same pairs in the same order; a prompt is emitted once per document.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ConfigError(f"unknown pair kind(s) {unknown}; choose from {list(KINDS)}")
    content = content or ""
    sections = parse_sections(content)
    subject = _subject(title, sections)
    makers = {
        "fact": _facts,
        "statement": _statements,
        "acronym": _acronyms,
        "heading": _headings,
        "summary": _summary,
    }
    pairs, seen = [], set()
    for kind in KINDS:
        if kind not in kinds:
            continue
        if kind == "raw":
            pairs += [
                {"prompt": "", "response": chunk, "messages": [], "kind": "raw"}
                for chunk in _raw_chunks(content)
            ]
            continue
        for prompt, response in makers[kind](sections, subject):
            if prompt.lower() in seen or not response:
                continue
            seen.add(prompt.lower())
            pairs.append(
                {
                    "prompt": prompt,
                    "response": response,
                    "kind": kind,
                    "messages": [
                        {"role": "user", "content": prompt},
                        {"role": "assistant", "content": response},
                    ],
                }
            )
    return pairs


_TITLE_LEAD = re.compile(r"^(?:about|introducing|overview of|welcome to)\s+(?=[A-Z0-9])", re.I)


def _subject(title: str | None, sections: list[Section]) -> str:
    """What the document is about: its title (or first ``#`` heading) without a lead-in such
    as "About" ("About Acme Dynamics" is about Acme Dynamics)."""
    if title and title.strip():
        text = clean_inline(title)
    else:
        text = next((s.heading for s in sections if s.level == 1), "")
    text = _TITLE_LEAD.sub("", text.strip()).strip()
    return text or "this document"


def _facts(sections: list[Section], subject: str) -> Iterable[tuple[str, str]]:
    for s in sections:
        for line in s.lines:
            kv = key_value(line)
            if kv and not _is_definition(*kv):
                key = kv[0][0].lower() + kv[0][1:] if not kv[0][:2].isupper() else kv[0]
                wh = "Who" if key.split()[-1].lower() in _PERSON_WORDS else "What"
                yield f"{wh} is the {key} of {subject}?", f"The {key} of {subject} is {kv[1]}."
        for header, rows in tables(s.lines):
            for row in rows[:MAX_TABLE_ROWS]:
                for col, cell in zip(header[1:], row[1:], strict=True):
                    col = _topic(col) if col else col
                    if cell and col and row[0]:
                        yield (
                            f"What is the {col} for {row[0]} in {subject}?",
                            f"The {col} for {row[0]} in {subject} is {cell}.",
                        )


def _statements(sections: list[Section], subject: str) -> Iterable[tuple[str, str]]:
    texts = [prose(s.lines, with_facts=False) for s in sections]
    document = "\n".join(texts)
    for text in texts:
        yield from statement_pairs(text, document)


def _initials_spell(acronym: str, expansion: str) -> bool:
    """True when the acronym's letters are, in order, the initials of the expansion's words
    (linking words such as "of" may be skipped)."""
    letters = [c.lower() for c in acronym if c.isalpha()]
    words = [w for w in re.split(r"[\s-]+", expansion.lower()) if w]
    if not letters or not words or words[0][0] != letters[0]:
        return False
    i = 0
    for w in words:
        if i < len(letters) and w[0] == letters[i]:
            i += 1
        elif w not in _LINKING_WORDS:
            return False
    return i == len(letters)


def _is_definition(key: str, value: str) -> bool:
    return bool(_ACR_ONLY.match(key)) and _initials_spell(key, value)


def _expansion_before(words_text: str, acronym: str) -> str | None:
    """The shortest tail of ``words_text`` whose initials spell ``acronym``."""
    words = words_text.split()
    for n in range(1, len(words) + 1):
        candidate = " ".join(words[-n:])
        if _initials_spell(acronym, candidate):
            return candidate
    return None


def _acronyms(sections: list[Section], subject: str) -> Iterable[tuple[str, str]]:
    for s in sections:
        for line in s.lines:
            if "(" not in line and ":" not in line and " for " not in line and " means " not in line:
                continue
            text = clean_inline(line)
            found = []
            kv = key_value(line)
            if kv and _is_definition(*kv):
                found.append(kv)
            found += [(m.group(1), m.group(2).strip()) for m in _ACR_THEN_EXPANSION.finditer(text)]
            for m in _EXPANSION_THEN_ACR.finditer(text):
                expansion = _expansion_before(m.group(1), m.group(2))
                if expansion:
                    found.append((m.group(2), expansion))
            found += [(m.group(1), m.group(2).strip()) for m in _STANDS_FOR.finditer(text)]
            for acronym, expansion in found:
                if _initials_spell(acronym, expansion):
                    yield f"What does {acronym} stand for?", f"{acronym} stands for {expansion}."


def _lead(text: str, budget: int = SUMMARY_CHARS) -> str:
    out = []
    for sentence in sentences(text):
        if out and len(" ".join(out)) + len(sentence) > budget:
            break
        out.append(sentence)
    return " ".join(out)


def _topic(heading: str) -> str:
    """Lower-case a heading's first letter unless it reads as a name ("Risks" → "risks",
    "Q3 Results" and "SLA targets" stay)."""
    first = heading.split()[0] if heading.split() else ""
    if len(first) > 1 and (first[1:].lower() != first[1:] or any(c.isdigit() for c in first)):
        return heading
    return heading[:1].lower() + heading[1:]


def _headings(sections: list[Section], subject: str) -> Iterable[tuple[str, str]]:
    for s in sections:
        if s.level >= 2:
            body = _lead(prose(s.lines, with_facts=False) or prose(s.lines))
            if body:
                yield f"What does the {subject} document say about {_topic(s.heading)}?", body


def _summary(sections: list[Section], subject: str) -> Iterable[tuple[str, str]]:
    leads = [sentences(p)[0] for p in (prose(s.lines, with_facts=False) for s in sections) if p]
    summary = _lead(" ".join(leads), 2 * SUMMARY_CHARS)
    if len(leads) >= 2 and summary:
        yield f"Summarize {subject}.", summary


def _raw_chunks(content: str) -> list[str]:
    """Paragraph-aligned chunks; a single paragraph longer than the limit is cut hard."""
    chunks, current = [], ""
    for para in (p.strip() for p in re.split(r"\n\s*\n", content)):
        while len(para) > RAW_CHUNK_CHARS:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(para[:RAW_CHUNK_CHARS])
            para = para[RAW_CHUNK_CHARS:]
        if not para:
            continue
        if current and len(current) + 2 + len(para) > RAW_CHUNK_CHARS:
            chunks.append(current)
            current = para
        else:
            current = f"{current}\n\n{para}" if current else para
    if current:
        chunks.append(current)
    return chunks
