"""Three-level names: ``catalog.schema.table``."""

from __future__ import annotations

import re

from llmforge.errors import ConfigError

_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TYPES = {1: "catalog", 2: "schema", 3: "table"}


def split(full_name: str, expect: str | None = None) -> list[str]:
    """The parts of a securable name, validated; ``expect`` names the level required."""
    if not isinstance(full_name, str) or not full_name:
        raise ConfigError(f"expected a name like 'main.knowledge.documents', got {full_name!r}")
    parts = full_name.split(".")
    if len(parts) not in TYPES:
        raise ConfigError(
            f"'{full_name}' has {len(parts)} parts; names are catalog, catalog.schema or catalog.schema.table"
        )
    for p in parts:
        if not _PART.fullmatch(p):
            raise ConfigError(
                f"'{full_name}': part '{p}' must start with a letter or '_' and contain only "
                "letters, digits and '_'"
            )
    if expect and TYPES[len(parts)] != expect:
        example = {"catalog": "main", "schema": "main.knowledge", "table": "main.knowledge.documents"}[expect]
        raise ConfigError(
            f"'{full_name}' is a {TYPES[len(parts)]} name; a {expect} name is needed (like '{example}')"
        )
    return parts


def securable_type(full_name: str) -> str:
    return TYPES[len(split(full_name))]


def chain(full_name: str) -> list[str]:
    """The securable and its ancestors, top first: ``['main', 'main.k', 'main.k.t']``."""
    parts = split(full_name)
    return [".".join(parts[: i + 1]) for i in range(len(parts))]
