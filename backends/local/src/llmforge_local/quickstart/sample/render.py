"""Shared pieces for rendering the sample corpus: the document record and phrase helpers."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

from llmforge_local.quickstart.sample.world import ACRONYMS, COMPANY


@dataclass
class Doc:
    department: str
    slug: str
    title: str
    updated: str
    body: str
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def document_id(self) -> str:
        return f"{self.department}/{self.slug}"

    def markdown(self) -> str:
        meta = {
            "document_id": self.document_id,
            "title": self.title,
            "department": self.department,
            "updated_at": self.updated,
            **self.extra,
        }
        head = "\n".join(f"{k}: {_yaml_scalar(v)}" for k, v in meta.items())
        return f"---\n{head}\n---\n\n# {self.title}\n\n{self.body.strip()}\n"


def _yaml_scalar(value: str) -> str:
    """Quote values YAML would otherwise read as something else (``Q3: 2026``, ``yes``)."""
    text = str(value)
    if any(c in text for c in ":#{}[],&*!|>'\"%@`") or text.lower() in ("yes", "no", "true", "false", "null"):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def facts(pairs: list[tuple[str, object]]) -> str:
    return "\n".join(f"- **{k}:** {v}" for k, v in pairs)


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def months_before(date: str, months: int) -> str:
    d = dt.date.fromisoformat(date)
    index = d.year * 12 + d.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, min(d.day, 28)).isoformat()


def pick(rng: random.Random, *options: str) -> str:
    return rng.choice(options)


def slugify(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-").replace("--", "-")


def glossary(department: str, title: str, updated: str) -> Doc:
    lines = [f"- {a}: {e}" for a, e in ACRONYMS[department]]
    body = f"""Internal acronyms you will hear at {COMPANY}. Ask in the help channel if one is missing.

## Acronyms

{chr(10).join(lines)}
"""
    return Doc(department, "glossary", title, updated, body)
