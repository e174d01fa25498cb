"""A caller's SQL predicate made one closed expression before the row filter is ANDed to it.

A write that takes a predicate (``delete``) must touch only rows the caller's row filter lets it
see. Gluing ``(<predicate>) AND <filter>`` is safe only if ``<predicate>`` cannot close the
parenthesis itself: ``"1=1) OR (1=1"`` would otherwise turn the filter into one arm of an
``OR``. :func:`closed` scans the predicate the way the SQL lexer does (quoted strings,
quoted identifiers) and refuses unbalanced parentheses, statement separators and comments, so
the wrapped predicate is one operand whatever it contains.
"""

from __future__ import annotations

from llmforge.errors import DataError

_QUOTES = {"'": "'", '"': '"', "`": "`"}


def closed(predicate: str) -> str:
    """``predicate`` if it is one balanced expression; raise :class:`DataError` otherwise."""
    depth, i, n = 0, 0, len(predicate)
    while i < n:
        ch = predicate[i]
        if ch in _QUOTES:
            end = _QUOTES[ch]
            i += 1
            while True:
                if i >= n:
                    raise DataError(f"predicate {predicate!r} has an unterminated {ch}...{end} quote")
                if predicate[i] == end:
                    if i + 1 < n and predicate[i + 1] == end:  # doubled quote: an escaped one
                        i += 2
                        continue
                    break
                i += 1
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise DataError(
                    f"predicate {predicate!r} closes a parenthesis it never opened; pass one "
                    "expression such as \"document_id = 'd-1'\""
                )
        elif ch == ";" or predicate.startswith(("--", "/*"), i):
            raise DataError(
                f"predicate {predicate!r} holds a statement separator or a comment; pass one expression"
            )
        i += 1
    if depth:
        raise DataError(f"predicate {predicate!r} leaves {depth} parenthesis(es) open")
    return predicate


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def bounded(predicate: str, row_filter: dict[str, list[str]] | None) -> str:
    """``predicate`` restricted to the rows ``row_filter`` (``{column: allowed values}``) admits."""
    expr = f"({closed(predicate)})"
    for column, values in (row_filter or {}).items():
        allowed = ", ".join(_literal(v) for v in values) or "NULL"
        expr += f" AND `{column.replace('`', '``')}` IN ({allowed})"
    return expr
