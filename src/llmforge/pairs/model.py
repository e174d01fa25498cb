"""Model-written pairs: ask the configured generator for question/answer pairs per passage.

The model sees one passage (a section, or a slice of a long one) and is asked for up to
``pairs_per_passage`` lines of the form ``Q: ...`` / ``A: ...``, after one worked example
turn (:data:`EXAMPLE`): without it SmolLM2-135M answers in prose, with it it keeps the
format. A JSON list of
``{"question", "answer"}`` objects is accepted too. Its output is checked, not trusted:

- a question must end with ``?`` and be at most 300 characters; an answer must be
  non-empty and at most 600 characters;
- the answer must be grounded in the passage's text (its heading excluded): a short answer
  (at most :data:`SHORT_ANSWER_WORDS` words) must occur in it verbatim, a longer one must have
  at least ``min_support`` of its content words in it (numbers exactly), which drops invented
  facts and paraphrases that change them ("rotated" → "was not rotated");
- the question must be about the answer's sentence: it shares a content word with that
  sentence or with the passage's heading ("What is the annual contract value?" answered from
  "Northwind pays invoices within 45 days" is dropped), and the answer must add something
  the question does not already say ("What is the data team?" → "The data team" is dropped);
- duplicates (same question, case-insensitive) within a document are dropped.

Conversations are sent in document order, ``batch_size`` at a time, with the generator's
default greedy decoding, so the same model gives the same pairs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llmforge.errors import ConfigError
from llmforge.pairs.markdown import Section, parse_sections, prose
from llmforge.pairs.rules import KINDS, create_training_pair
from llmforge.text import content_words, sentences

SYSTEM_PROMPT = (
    "You write training data. From the passage, write up to {n} question/answer pairs that "
    "can be answered from the passage alone. Use exactly this format, one pair per two lines:\n"
    "Q: <question>?\nA: <short answer copied from the passage>"
)
#: a one-shot (passage, answer) exchange sent before every passage
EXAMPLE = (
    "Passage:\nTravel policy\n\nBook all travel through Orbit Travel. The hotel limit is $250 per "
    "night. Priya Patel owns the policy.",
    "Q: Which tool is used to book travel?\nA: Orbit Travel\nQ: What is the hotel limit?\n"
    "A: $250 per night\nQ: Who owns the travel policy?\nA: Priya Patel",
)
#: answers up to this many words must be copied from the passage verbatim
SHORT_ANSWER_WORDS = 8
_QA = re.compile(r"^\s*Q\s*[:.]\s*(.+?)\s*\n\s*A\s*[:.]\s*(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class ModelPairOptions:
    pairs_per_passage: int = 3
    #: passages longer than this are split, so prompts fit a small model's context
    passage_chars: int = 1500
    max_tokens: int = 256
    batch_size: int = 8
    #: share of an answer's content words that must appear in the passage
    min_support: float = 0.85
    #: deterministic kinds added beside the model's pairs (e.g. ``("raw",)``)
    rule_kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.pairs_per_passage < 1 or self.batch_size < 1 or self.passage_chars < 100:
            raise ConfigError("pairs_per_passage and batch_size must be >= 1, passage_chars >= 100")
        if not 0.0 <= self.min_support <= 1.0:
            raise ConfigError(f"min_support must be in [0, 1], got {self.min_support}")
        bad = sorted(set(self.rule_kinds) - set(KINDS))
        if bad:
            raise ConfigError(f"unknown rule kind(s) {bad}; choose from {list(KINDS)}")


def passages(content: str, limit: int) -> list[str]:
    """Sections as ``heading\\n\\ntext``, long ones cut at sentence-ish boundaries. A plain
    document's first line is its heading when it has no end punctuation and a blank line follows
    ("Data retention\\n\\nCustomer records are ...")."""
    out = []
    for s in parse_sections(content):
        lines = list(s.lines)
        while lines and not lines[0].strip():
            lines.pop(0)
        if not s.heading and len(lines) > 2 and not lines[1].strip() and lines[0].strip()[-1] not in ".!?:":
            s = Section(lines[0].strip(), 0, lines[2:])
        text = prose(s.lines)
        if not text:
            continue
        while text:
            cut = text if len(text) <= limit else text[: text.rfind(". ", 0, limit) + 1 or limit]
            out.append(f"{s.heading}\n\n{cut.strip()}" if s.heading else cut.strip())
            text = text[len(cut) :].strip()
    return out


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``(question, answer)`` pairs from model output: a JSON list or ``Q:``/``A:`` lines."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [
                (str(i.get("question", "")).strip(), str(i.get("answer", "")).strip())
                for i in items
                if isinstance(i, dict)
            ]
    return [(q, a) for q, a in _QA.findall(text)]


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w$%.,'-]+", " ", text.lower()).replace(" .", ".").split()).strip(" .,")


def grounded(question: str, answer: str, passage: str, min_support: float) -> bool:
    """The answer is supported by the passage body and the question is about it (see the module
    docstring); questions copied from :data:`EXAMPLE` share nothing with it and are dropped."""
    heading, _, body = passage.partition("\n\n") if "\n\n" in passage else ("", "", passage)
    words = content_words(answer)
    asked = set(content_words(question))
    have = set(content_words(body))
    if not words or not asked or set(words) <= asked:
        return False
    if any(w[0].isdigit() and w not in have for w in words):
        return False
    said = sentences(body)
    if len(answer.split()) <= SHORT_ANSWER_WORDS:
        near = [s for s in said if _plain(answer) in _plain(s)]
        if not near and _plain(answer) not in _plain(body):
            return False
    elif sum(w in have for w in set(words)) / len(set(words)) < min_support:  # repeats count once
        return False
    else:
        overlap = [(len(set(words) & set(content_words(s))), s) for s in said]
        near = [max(overlap)[1]] if overlap else []
    about = set(content_words(heading)).union(*(content_words(s) for s in near or [body]))
    return bool(asked & about)


class ModelPairGenerator:
    """Pairs written by a chat model (any object with ``chat_batch(conversations, max_tokens=)``
    returning items with ``.text``, e.g. ``forge.generator``)."""

    def __init__(self, generator: Any, options: ModelPairOptions | None = None, **kw: Any) -> None:
        if not callable(getattr(generator, "chat_batch", None)):
            raise ConfigError("ModelPairGenerator needs a generator with chat_batch(); pass forge.generator")
        self.generator = generator
        self.options = options or ModelPairOptions(**kw)

    def __call__(self, content: str, title: str | None = None) -> list[dict]:
        return self.generate_many([(content, title)])[0]

    def generate_many(self, documents: Sequence[tuple[str, str | None]]) -> list[list[dict]]:
        """Pairs per document, in input order."""
        o = self.options
        jobs = [
            (d, p)
            for d, (content, _) in enumerate(documents)
            for p in passages(content or "", o.passage_chars)
        ]
        shot = [
            {"role": "system", "content": SYSTEM_PROMPT.format(n=o.pairs_per_passage)},
            {"role": "user", "content": EXAMPLE[0]},
            {"role": "assistant", "content": EXAMPLE[1]},
        ]
        outputs: list[str] = []
        for start in range(0, len(jobs), o.batch_size):
            convs = [
                [*shot, {"role": "user", "content": f"Passage:\n{p}"}]
                for _, p in jobs[start : start + o.batch_size]
            ]
            outputs += [c.text for c in self.generator.chat_batch(convs, max_tokens=o.max_tokens)]
        result: list[list[dict]] = [[] for _ in documents]
        seen: list[set[str]] = [set() for _ in documents]
        for (d, passage), text in zip(jobs, outputs, strict=True):
            for question, answer in parse_pairs(text)[: o.pairs_per_passage]:
                if (
                    not question.endswith("?")
                    or len(question) > 300
                    or not answer
                    or len(answer) > 600
                    or question.lower() in seen[d]
                    or not grounded(question, answer, passage, o.min_support)
                ):
                    continue
                seen[d].add(question.lower())
                result[d].append(
                    {
                        "prompt": question,
                        "response": answer,
                        "kind": "model",
                        "messages": [
                            {"role": "user", "content": question},
                            {"role": "assistant", "content": answer},
                        ],
                    }
                )
        if o.rule_kinds:
            for d, (content, title) in enumerate(documents):
                result[d] += create_training_pair(content or "", title, kinds=o.rule_kinds)
        return result
