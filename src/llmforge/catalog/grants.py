"""Privileges on catalogs, schemas and tables, inherited downward as in Unity Catalog.

Reading a table needs ``USE`` on its catalog and on its schema plus ``SELECT`` on the table;
writing needs ``MODIFY`` instead of ``SELECT``; creating a table in a schema needs ``MODIFY``
on the schema. A grant on a catalog or schema covers everything below it. Owners (and holders
of ``OWNER``) of a securable or of any ancestor hold every privilege on it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from llmforge.catalog import names
from llmforge.catalog.identity import Principal
from llmforge.catalog.store import Store
from llmforge.errors import ConfigError, NotFoundError, PermissionDeniedError

PRIVILEGES = ("USE", "SELECT", "MODIFY", "OWNER")
_ALIASES = {
    "USE CATALOG": ("USE",),
    "USE SCHEMA": ("USE",),
    "USAGE": ("USE",),
    "ALL PRIVILEGES": ("USE", "SELECT", "MODIFY"),
    "ALL": ("USE", "SELECT", "MODIFY"),
}


def normalize(privilege: str) -> tuple[str, ...]:
    p = " ".join(str(privilege).upper().split())
    if p in PRIVILEGES:
        return (p,)
    if p in _ALIASES:
        return _ALIASES[p]
    raise ConfigError(
        f"unknown privilege '{privilege}'; use one of {list(PRIVILEGES)} "
        "(or USE CATALOG, USE SCHEMA, ALL PRIVILEGES)"
    )


def securable_row(store: Store, full_name: str):
    rows = store.query("SELECT * FROM securables WHERE full_name = ?", (full_name,))
    if not rows:
        kind = names.securable_type(full_name)
        raise NotFoundError(
            f"{kind} '{full_name}' does not exist; create it first "
            f"(forge.catalog.create_{kind}(...) or forge.table(...).create(...))"
        )
    return rows[0]


def grant(store: Store, privilege: str, full_name: str, principal: str, granted_by: str | None) -> None:
    privs = normalize(privilege)
    now = datetime.now(UTC).isoformat()
    with store.write() as con:
        if not con.execute("SELECT 1 FROM securables WHERE full_name = ?", (full_name,)).fetchone():
            securable_row(store, full_name)
        con.executemany(
            "INSERT OR IGNORE INTO grants VALUES (?, ?, ?, ?, ?)",
            [(full_name, principal, p, granted_by, now) for p in privs],
        )


def revoke(store: Store, privilege: str, full_name: str, principal: str) -> None:
    privs = normalize(privilege)
    securable_row(store, full_name)
    with store.write() as con:
        con.executemany(
            "DELETE FROM grants WHERE securable = ? AND principal = ? AND privilege = ?",
            [(full_name, principal, p) for p in privs],
        )


def _held(store: Store, who: Principal, full_name: str) -> dict[str, set[str]]:
    """Privileges ``who`` holds at each level of ``full_name``'s chain (directly, via groups)."""
    chain = names.chain(full_name)
    ids = sorted(who.identities)
    marks = ",".join("?" * len(chain))
    id_marks = ",".join("?" * len(ids))
    held: dict[str, set[str]] = {c: set() for c in chain}
    for r in store.query(
        f"SELECT securable, privilege FROM grants WHERE securable IN ({marks}) AND principal IN ({id_marks})",
        (*chain, *ids),
    ):
        held[r["securable"]].add(r["privilege"])
    for r in store.query(
        f"SELECT full_name, owner FROM securables WHERE full_name IN ({marks})", tuple(chain)
    ):
        if r["owner"] in who.identities:
            held[r["full_name"]].add("OWNER")
    return held


def has(store: Store, who: Principal, privilege: str, full_name: str) -> bool:
    return _missing(store, who, normalize(privilege)[0], full_name) is None


def _missing(store: Store, who: Principal, privilege: str, full_name: str) -> tuple[str, str] | None:
    """The first (privilege, securable) ``who`` lacks for ``privilege`` on ``full_name``, or None."""
    if who.is_system:
        return None
    held = _held(store, who, full_name)
    chain = names.chain(full_name)
    inherited: set[str] = set()
    for level, name in enumerate(chain):
        inherited |= held[name]
        if "OWNER" in inherited:
            return None
        # every ancestor needs USE (tables have none of their own); the securable itself the privilege
        needed = privilege if level == len(chain) - 1 else "USE"
        if needed not in inherited:
            return (needed, name)
    return None


def check(store: Store, who: Principal, privilege: str, full_name: str) -> None:
    """Raise :class:`PermissionDeniedError` naming what is missing and how to get it."""
    priv = normalize(privilege)[0]
    missing = _missing(store, who, priv, full_name)
    if missing is None:
        return
    need, on = missing
    kind = names.securable_type(on)
    owners = store.query("SELECT owner FROM securables WHERE full_name = ?", (on,))
    owner = owners[0]["owner"] if owners else "an admin"
    sql_priv = f"USE {kind.upper()}" if need == "USE" else need
    why = "" if (need, on) == (priv, full_name) else f" (needed for {priv} on {full_name})"
    raise PermissionDeniedError(
        f"principal '{who.name}' lacks {need} on {kind} '{on}'{why}. Ask its owner '{owner}' to run "
        f"GRANT {sql_priv} ON {kind.upper()} {on} TO `{who.name}` (in Python: "
        f"forge.catalog.grant('{need}', '{on}', '{who.name}')), or to grant it to one of your groups."
    )


def show(store: Store, full_name: str, principal: str | None = None) -> list[dict]:
    """Grants that apply to ``full_name``: its own and those inherited from its ancestors."""
    securable_row(store, full_name)
    chain = names.chain(full_name)
    marks = ",".join("?" * len(chain))
    out = []
    for r in store.query(
        f"SELECT full_name, type, owner FROM securables WHERE full_name IN ({marks})", tuple(chain)
    ):
        out.append(
            {
                "principal": r["owner"],
                "privilege": "OWNER",
                "object_type": r["type"],
                "object_name": r["full_name"],
                "inherited": r["full_name"] != full_name,
                "granted_by": None,
            }
        )
    for r in store.query(
        f"SELECT g.*, s.type FROM grants g JOIN securables s ON s.full_name = g.securable "
        f"WHERE g.securable IN ({marks})",
        tuple(chain),
    ):
        out.append(
            {
                "principal": r["principal"],
                "privilege": r["privilege"],
                "object_type": r["type"],
                "object_name": r["securable"],
                "inherited": r["securable"] != full_name,
                "granted_by": r["granted_by"],
            }
        )
    if principal is not None:
        out = [g for g in out if g["principal"] == principal]
    order = {n: i for i, n in enumerate(chain)}
    return sorted(
        out, key=lambda g: (order[g["object_name"]], g["principal"], PRIVILEGES.index(g["privilege"]))
    )
