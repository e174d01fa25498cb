"""Answers that end, and citations that point somewhere.

The RAG prompt lists passages as ``[1] ...``, ``[2] ...``; a small model that runs past its
answer tends to continue that list with an invented ``[5] # All-hands notes ...``. Generation
stops at :data:`llmforge.prompting.STOP`, and :func:`llmforge.prompting.trim_answer` cuts
whatever still slips through.
:func:`map_citations` turns the ``[n]`` markers the answer keeps into citation entries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from llmforge.prompting import STOP, trim_answer

__all__ = ["STOP_SEQUENCES", "CitedAnswer", "map_citations", "trim_answer"]

#: pass as ``stop=`` to the generator for the RAG prompt (one list, kept with the prompt)
STOP_SEQUENCES = STOP
_INLINE = re.compile(r"\s?\[(\d+(?:\s*,\s*\d+)*)\]")


class CitedAnswer(NamedTuple):
    text: str
    #: the citations the answer's markers name, in order of first use, each with ``marker``
    citations: list[dict[str, Any]]
    #: markers that name no retrieved passage (removed from ``text``)
    invalid: list[int]


def map_citations(text: str, citations: Sequence[dict[str, Any]]) -> CitedAnswer:
    """Keep ``[n]`` markers that name one of ``citations`` (1-based), drop the others."""
    used: dict[int, dict] = {}
    invalid: list[int] = []

    def keep(m: re.Match) -> str:
        nums = [int(x) for x in re.findall(r"\d+", m.group(1))]
        ok = [n for n in nums if 1 <= n <= len(citations)]
        invalid.extend(n for n in nums if n not in ok)
        for n in ok:
            used.setdefault(n, {**citations[n - 1], "marker": n})
        if not ok:
            return ""
        return m.group(0)[: len(m.group(0)) - len(m.group(0).lstrip())] + "".join(f"[{n}]" for n in ok)

    out = _INLINE.sub(keep, text or "")
    return CitedAnswer(out.strip(), list(used.values()), invalid)
