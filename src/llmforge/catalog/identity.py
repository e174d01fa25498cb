"""Principals: users and service principals with their groups and departments.

The directory file (``identity.directory`` in ``llmforge.yaml``) is YAML or CSV::

    # YAML
    users:
      - {name: alice, groups: [admins], departments: [engineering]}
      - {name: bob, departments: [hr], groups: [hr]}
    service_principals:
      - {name: etl-bot, groups: [pipelines]}

    # CSV: name,kind,groups,departments   (lists separated by ';')
    alice,user,admins,engineering

Every principal is also in the implicit group ``account users`` (as in Unity Catalog), so a
grant to that group reaches everyone.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmforge.errors import ConfigError

#: the principal internal pipelines act as (index sync, training reads); bypasses grants and policies
SYSTEM = "__system__"
#: implicit group every principal belongs to
ALL_USERS = "account users"
#: members of this group administer the catalog (principals, any securable's grants and policies)
ADMINS = "admins"
KINDS = ("user", "service_principal", "group")
_SECTIONS = {"users": "user", "service_principals": "service_principal", "principals": None}


@dataclass(frozen=True)
class Principal:
    """Who a call acts for. ``groups`` includes the implicit ``account users``."""

    name: str
    groups: frozenset[str] = field(default_factory=frozenset)
    departments: frozenset[str] = field(default_factory=frozenset)
    kind: str = "user"

    @property
    def is_system(self) -> bool:
        return self.name == SYSTEM

    @property
    def identities(self) -> frozenset[str]:
        """Names a grant can be made to that reach this principal."""
        return frozenset({self.name, ALL_USERS}) | self.groups


def is_reserved(name: str) -> bool:
    """Names no outside caller may act as: the internal principal, ``__anything__``, ``account users``."""
    n = name.strip().lower()
    return n == ALL_USERS or (n.startswith("__") and n.endswith("__"))


def check_external(name: str, where: str = "a principal") -> str:
    """``name`` if an outside caller (token, header, environment) may act as it."""
    if not isinstance(name, str) or not name.strip() or name != name.strip() or not name.isprintable():
        raise ConfigError(f"{where}: {name!r} is not a principal name (empty, padded or unprintable)")
    if is_reserved(name):
        raise ConfigError(
            f"{where}: '{name}' is a reserved principal that only internal pipelines act as; "
            "name a user or service principal from the directory"
        )
    return name


def _as_list(value: Any, where: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.replace(",", ";").split(";") if v.strip()]
    if isinstance(value, Iterable):
        return [str(v).strip() for v in value if str(v).strip()]
    raise ConfigError(f"{where}: expected a list of names, got {type(value).__name__}")


def _entry(raw: Any, kind: str | None, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw.get("name"):
        raise ConfigError(f"{where}: each principal needs a 'name' (got {raw!r})")
    unknown = sorted(set(raw) - {"name", "kind", "groups", "departments"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; allowed: name, kind, groups, departments")
    k = str(raw.get("kind") or kind or "user")
    if k not in KINDS:
        raise ConfigError(f"{where}: kind '{k}' for '{raw['name']}' is not one of {list(KINDS)}")
    return {
        "name": str(raw["name"]).strip(),
        "kind": k,
        "groups": _as_list(raw.get("groups"), where),
        "departments": _as_list(raw.get("departments"), where),
    }


def parse_directory(path: str | Path) -> list[dict[str, Any]]:
    """Principals in a YAML or CSV directory file, validated; errors name the file and entry."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"identity directory {p} not found; fix `identity.directory` in llmforge.yaml")
    if p.suffix.lower() == ".csv":
        with p.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "name" not in reader.fieldnames:
                raise ConfigError(
                    f"{p}: the CSV needs a header with at least 'name' (optional: kind, groups, departments)"
                )
            return [
                _entry({k: v for k, v in row.items() if k}, None, f"{p} line {i + 2}")
                for i, row in enumerate(reader)
            ]
    if p.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(f"{p}: identity directory must be .yaml, .yml or .csv")
    import yaml

    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from None
    if isinstance(data, list):
        data = {"principals": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected keys {sorted(_SECTIONS)} at the top level")
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{p}: unknown top-level key(s) {unknown}; allowed: {sorted(_SECTIONS)}")
    out = []
    for section, kind in _SECTIONS.items():
        for i, raw in enumerate(data.get(section) or []):
            out.append(_entry(raw, kind, f"{p} {section}[{i}]"))
    return out
