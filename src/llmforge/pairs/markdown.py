"""Just enough Markdown structure for pair generation: sections, key–value lines, tables.

Pure standard library, so :func:`llmforge.pairs.create_training_pair` can run inside a
Spark UDF on any executor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|`)")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
# "Owner: Dana Kim", "- **Target date:** 2026-09-30". The key starts with a capital letter and
# is at most five words, so prose that happens to contain a colon is not taken for a fact.
_KEY_VALUE = re.compile(r"^([A-Z][A-Za-z0-9/&'()-]*(?: [A-Za-z0-9/&'()-]+){0,4})\s*:\s+(\S.*)$")
#: keys that introduce prose or advice rather than an attribute of the subject
_NOT_FACT_KEYS = frozenset(
    {
        "note",
        "example",
        "warning",
        "tip",
        "important",
        "see also",
        "q",
        "a",
        "question",
        "answer",
        "summary",
        "caution",
        "why",
        "how",
    }
)
MAX_VALUE_CHARS = 120


@dataclass
class Section:
    """A heading and the lines under it (up to the next heading of any level)."""

    heading: str
    level: int
    lines: list[str] = field(default_factory=list)


def clean_inline(text: str) -> str:
    """Drop emphasis, code ticks and link targets: ``[**Helix**](x)`` → ``Helix``."""
    if not any(c in text for c in "*_`["):  # most lines: skip the regexes
        return " ".join(text.split())
    return " ".join(_EMPHASIS.sub("", _LINK.sub(r"\1", text)).split())


def parse_sections(content: str) -> list[Section]:
    """Sections in document order; text before the first heading is a level-0 section."""
    sections = [Section("", 0)]
    in_code = False
    for raw in content.splitlines():
        if raw.strip().startswith("```"):
            in_code = not in_code
            continue
        m = None if in_code else _HEADING.match(raw)
        if m:
            sections.append(Section(clean_inline(m.group(2)), len(m.group(1))))
        elif not in_code:
            sections[-1].lines.append(raw)
    return [s for s in sections if s.heading or any(line.strip() for line in s.lines)]


def key_value(line: str) -> tuple[str, str] | None:
    """``(key, value)`` when the line states one attribute, else ``None``."""
    if ":" not in line:
        return None
    text = clean_inline(_BULLET.sub("", line))
    if text.startswith("|"):
        return None
    m = _KEY_VALUE.match(text)
    if not m:
        return None
    key, value = m.group(1).strip(), m.group(2).strip().rstrip(".;")
    if key.lower() in _NOT_FACT_KEYS or not value or len(value) > MAX_VALUE_CHARS or value.endswith(":"):
        return None
    return key, value


def tables(lines: list[str]) -> list[tuple[list[str], list[list[str]]]]:
    """Pipe tables as ``(header, rows)``; rows with a different cell count are dropped."""
    found, block = [], []
    for line in lines + [""]:
        if line.strip().startswith("|"):
            block.append(line)
            continue
        if len(block) >= 3 and _TABLE_RULE.match(block[1]):
            cells = [[clean_inline(c) for c in row.strip().strip("|").split("|")] for row in block]
            header, rows = cells[0], [r for r in cells[2:] if len(r) == len(cells[0])]
            if rows:
                found.append((header, rows))
        block = []
    return found


def prose(lines: list[str], *, with_facts: bool = True) -> str:
    """The section's readable text. Wrapped lines are joined into their paragraph, each
    bullet is its own sentence, ``Key: value`` lines become ``Key: value.`` (or are left
    out with ``with_facts=False``), tables are dropped."""
    items: list[str] = []
    open_item = False
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("|"):
            open_item = False
            continue
        if key_value(line):
            if with_facts:
                items.append(clean_inline(_BULLET.sub("", line)))
            open_item = False
        elif open_item and not _BULLET.match(line):
            items[-1] += " " + clean_inline(stripped)
        else:
            items.append(clean_inline(_BULLET.sub("", line)))
            open_item = True
    return " ".join(t if t[-1] in ".!?" else t + "." for t in items if t)
