"""Built-in guardrails, shipped as a default plugin through the same hook as any other.

- ``faithfulness``: is each answer sentence supported by the retrieved context?
- ``prompt_injection``: does the question try to override instructions or filters?
- ``pii``: does the answer leak e-mail addresses, phone numbers, card or SSN-like numbers?
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmforge.components import Guardrail, GuardResult
from llmforge.hookspecs import hookimpl
from llmforge.text import content_words, sentences


def faithfulness_score(answer: str, contexts: Sequence[str]) -> tuple[float, list[dict]]:
    """Share of answer sentences whose content words appear in the context.

    A sentence counts as supported when at least 60% of its content words (lower-cased,
    stop words and punctuation dropped, light stemming) occur in the union of the contexts.
    Numbers must match exactly, which catches the commonest hallucination: a wrong date,
    amount or count. Returns the score in [0, 1] and a per-sentence breakdown.
    """
    ctx_words = set()
    for c in contexts:
        ctx_words.update(content_words(c))
    rows = []
    for s in sentences(answer):
        words = content_words(s)
        if not words:
            continue
        covered = [w for w in words if w in ctx_words]
        numbers = [w for w in words if w[0].isdigit()]
        bad_numbers = [n for n in numbers if n not in ctx_words]
        support = len(covered) / len(words)
        rows.append({"sentence": s, "support": round(support, 3),
                     "supported": support >= 0.6 and not bad_numbers,
                     "unsupported_numbers": bad_numbers})
    if not rows:
        return 1.0, rows
    return sum(r["supported"] for r in rows) / len(rows), rows


@dataclass(frozen=True)
class FaithfulnessOptions:
    #: answers scoring below this are flagged (the answer is replaced when ``block`` is set)
    threshold: float = 0.5
    block: bool = True


class Faithfulness(Guardrail):
    name = "faithfulness"
    description = "answer sentences must be supported by the retrieved context"
    Options = FaithfulnessOptions

    def check_output(self, question: str, answer: str, contexts: Sequence[str]) -> GuardResult:
        score, rows = faithfulness_score(answer, contexts)
        passed = score >= self.options.threshold or not self.options.block
        unsupported = [r["sentence"] for r in rows if not r["supported"]]
        return GuardResult(self.name, passed, score,
                           "" if not unsupported else f"{len(unsupported)} unsupported sentence(s)",
                           {"sentences": rows})


INJECTION_PATTERNS = [
    r"ignore (all |any )?(the )?(previous|prior|above) (instructions|prompts?)",
    r"disregard (the |your )?(system|previous|above)",
    r"you are now\b",
    r"(reveal|show|print) (me )?(the |your )?(system prompt|hidden instructions)",
    r"(bypass|disable|remove|ignore) (the )?(filter|filters|row filter|guardrails?|security)",
    r"as an? (admin|administrator)\b.*\b(show|give|list)",
    r"department\s*(=|:|is)\s*\w+.*\b(instead|also|too)\b",
]


class PromptInjection(Guardrail):
    name = "prompt_injection"
    description = "blocks questions that try to override instructions or widen filters"

    def check_input(self, question: str, *, user: str | None = None) -> GuardResult:
        q = question.lower()
        hits = [p for p in INJECTION_PATTERNS if re.search(p, q)]
        return GuardResult(self.name, not hits, 1.0 if hits else 0.0,
                           "instruction-override pattern" if hits else "", {"patterns": hits})


PII_PATTERNS = {
    "email": r"[\w.+-]+@[\w-]+\.[\w.]+",
    "phone": r"\+?\d[\d\s().-]{8,}\d",
    "card": r"\b(?:\d[ -]?){13,16}\b",
    "ssn": r"\b\d{3}-\d{2}-\d{4}\b",
}


class PII(Guardrail):
    name = "pii"
    description = "flags answers that contain e-mail, phone, card or SSN-like strings"

    def check_output(self, question: str, answer: str, contexts: Sequence[str]) -> GuardResult:
        found = {k: re.findall(p, answer) for k, p in PII_PATTERNS.items()}
        found = {k: v for k, v in found.items() if v}
        return GuardResult(self.name, not found, None,
                           f"found {sorted(found)}" if found else "", {"matches": found})


@hookimpl
def register_guardrails(register):
    for cls in (Faithfulness, PromptInjection, PII):
        register(cls)
