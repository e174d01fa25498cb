"""A block-list guardrail: the smallest useful llmforge plugin."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from llmforge.components import Guardrail, GuardResult
from llmforge.hookspecs import hookimpl


@dataclass(frozen=True)
class BlocklistOptions:
    #: case-insensitive phrases that may appear in neither question nor answer
    terms: tuple[str, ...] = ()


class Blocklist(Guardrail):
    name = "blocklist"
    description = "refuses questions and answers that mention configured terms (example plugin)"
    Options = BlocklistOptions

    def _check(self, text: str) -> GuardResult:
        hits = [t for t in self.options.terms if re.search(rf"\b{re.escape(t)}\b", text, re.I)]
        return GuardResult(self.name, not hits, reason=f"mentions {hits}" if hits else "")

    def check_input(self, question: str, *, user: str | None = None) -> GuardResult:
        return self._check(question)

    def check_output(self, question: str, answer: str, contexts: Sequence[str]) -> GuardResult:
        return self._check(answer)


@hookimpl
def register_guardrails(register):
    register(Blocklist)
