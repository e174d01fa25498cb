"""A ``delete()`` predicate parsed, then rendered as SQL with every value a named parameter.

Only simple expressions are accepted — comparisons of a column with a literal, ``IN`` lists,
``IS [NOT] NULL``, joined by ``AND`` / ``OR`` / ``NOT`` with parentheses — so no caller text
reaches the warehouse as SQL: column names are re-quoted and values travel as parameters.
"""

from __future__ import annotations

import re
from typing import Any

from llmforge.errors import ConfigError

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.|'')*')|(?P<num>-?\d+(?:\.\d+)?(?![\w.]))|(?P<op><=|>=|<>|!=|=|<|>)"
    r"|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<ident>`[^`]+`|[A-Za-z_]\w*))"
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE"}


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise _bad(text, f"unexpected text at {text[pos : pos + 20]!r}")
        kind = m.lastgroup
        value = m[kind]
        if kind == "ident" and not value.startswith("`") and value.upper() in _KEYWORDS:
            kind, value = "kw", value.upper()
        out.append((kind, value))
        pos = m.end()
    return out


def _bad(text: str, why: str) -> ConfigError:
    return ConfigError(
        f"delete predicate {text!r} is not a simple expression ({why}); use comparisons of a column "
        f"with a literal, IN (...), IS [NOT] NULL, joined by AND / OR / NOT, e.g. \"document_id = 'd-1'\""
    )


def _literal(kind: str, value: str) -> Any:
    if kind == "num":
        return float(value) if "." in value else int(value)
    if kind == "kw":
        return value == "TRUE"
    body = value[1:-1]
    return re.sub(r"\\(.)|''", lambda m: m[1] if m[1] is not None else "'", body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.toks, self.i = text, _tokens(text), 0
        self.params: list[Any] = []

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, kind: str, value: str | None = None) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind or (value is not None and tok[1] != value):
            raise _bad(self.text, f"expected {value or kind} at token {self.i + 1}")
        self.i += 1
        return tok[1]

    def is_(self, kind: str, value: str | None = None) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == kind and (value is None or tok[1] == value)

    def value(self) -> str:
        tok = self.peek()
        if tok is None or not (tok[0] in ("str", "num") or (tok[0] == "kw" and tok[1] in ("TRUE", "FALSE"))):
            raise _bad(self.text, f"expected a literal value at token {self.i + 1}")
        self.i += 1
        self.params.append(_literal(*tok))
        return f":d{len(self.params) - 1}"

    def expr(self) -> str:
        parts = [self.conj()]
        while self.is_("kw", "OR"):
            self.i += 1
            parts.append(self.conj())
        return " OR ".join(parts)

    def conj(self) -> str:
        parts = [self.unary()]
        while self.is_("kw", "AND"):
            self.i += 1
            parts.append(self.unary())
        return " AND ".join(parts)

    def unary(self) -> str:
        if self.is_("kw", "NOT"):
            self.i += 1
            return f"NOT {self.unary()}"
        if self.is_("lp"):
            self.i += 1
            inner = self.expr()
            self.take("rp")
            return f"({inner})"
        return self.comparison()

    def comparison(self) -> str:
        col = self.take("ident").strip("`")
        quoted = f"`{col}`"
        if self.is_("op"):
            op = self.take("op")
            return f"{quoted} {'<>' if op == '!=' else op} {self.value()}"
        if self.is_("kw", "IS"):
            self.i += 1
            neg = self.is_("kw", "NOT")
            self.i += neg
            self.take("kw", "NULL")
            return f"{quoted} IS {'NOT ' if neg else ''}NULL"
        neg = self.is_("kw", "NOT")
        self.i += neg
        self.take("kw", "IN")
        self.take("lp")
        values = [self.value()]
        while self.is_("comma"):
            self.i += 1
            values.append(self.value())
        self.take("rp")
        return f"{quoted} {'NOT ' if neg else ''}IN ({', '.join(values)})"


def parse(text: str) -> tuple[str, list[Any]]:
    """``(SQL with :d0.. markers, their Python values)`` for a simple predicate, else ConfigError."""
    if not isinstance(text, str) or not text.strip():
        raise _bad(str(text), "it is empty")
    p = _Parser(text)
    sql = p.expr()
    if p.peek() is not None:
        raise _bad(text, f"unexpected {p.peek()[1]!r} at token {p.i + 1}")
    return sql, p.params
