"""Built-in guards, one module each, and the functions the RAG pipeline calls around them.

- :mod:`~llmforge.guard.faithfulness`: facts and sentences supported by the context
- :mod:`~llmforge.guard.answerable`: does the context address the question at all (abstention)
- :mod:`~llmforge.guard.pii`: personal data in questions and answers
- :mod:`~llmforge.guard.injection`: instruction overrides; fencing of retrieved chunks
- :mod:`~llmforge.guard.citations`: stop sequences, trimming, ``[n]`` markers -> citations
- :mod:`~llmforge.guard.policy`: ordered runs with flag / block / regenerate / redact
"""

from llmforge.guard.citations import STOP_SEQUENCES, CitedAnswer, map_citations, trim_answer
from llmforge.guard.faithfulness import Faithfulness, FaithfulnessOptions, faithfulness_score
from llmforge.guard.injection import CONTEXT_NOTICE, PromptInjection, fence_contexts, sanitize_context
from llmforge.guard.pii import PII, find_pii, redact
from llmforge.guard.policy import (
    STRICT_INSTRUCTION,
    GuardOutcome,
    apply_input_guards,
    apply_output_guards,
    strict_instruction,
)

__all__ = [
    "CONTEXT_NOTICE",
    "PII",
    "STOP_SEQUENCES",
    "STRICT_INSTRUCTION",
    "CitedAnswer",
    "Faithfulness",
    "FaithfulnessOptions",
    "GuardOutcome",
    "PromptInjection",
    "apply_input_guards",
    "apply_output_guards",
    "faithfulness_score",
    "fence_contexts",
    "find_pii",
    "map_citations",
    "redact",
    "sanitize_context",
    "strict_instruction",
    "trim_answer",
]
