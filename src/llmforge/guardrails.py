"""Built-in guardrails, shipped as a default plugin through the same hook as any other.

The guards live in :mod:`llmforge.guard` (one module each); this module registers them and
keeps the names older code imports from here.

- ``faithfulness``: names, numbers, dates, codes and sentences supported by the context
- ``prompt_injection``: questions that try to override instructions or widen filters
- ``pii``: e-mail, phone, card, SSN, IBAN, IP and secret-key strings
"""

from __future__ import annotations

from llmforge.guard import (
    PII,
    Faithfulness,
    FaithfulnessOptions,
    PromptInjection,
    apply_input_guards,
    apply_output_guards,
    faithfulness_score,
)
from llmforge.hookspecs import hookimpl

__all__ = [
    "PII",
    "Faithfulness",
    "FaithfulnessOptions",
    "PromptInjection",
    "apply_input_guards",
    "apply_output_guards",
    "faithfulness_score",
]


@hookimpl
def register_guardrails(register):
    for cls in (Faithfulness, PromptInjection, PII):
        register(cls)
