"""The :class:`Catalog` facade: one object over principals, securables, grants, policies, lineage."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmforge.catalog import grants, lineage, names, paths, policies
from llmforge.catalog.identity import (
    ADMINS,
    ALL_USERS,
    KINDS,
    SYSTEM,
    Principal,
    check_external,
    is_reserved,
    parse_directory,
)
from llmforge.catalog.store import Store
from llmforge.errors import AlreadyExistsError, ConfigError, DataError, NotFoundError, PermissionDeniedError


class Catalog:
    """The embedded catalog in one SQLite file (``<home>/catalog.db``); safe across processes.

    A catalog opened with an ``actor`` (``forge.catalog`` acts as the forge's principal) checks
    that principal before every administrative change, as Unity Catalog does: grants, revokes,
    row filters, column masks, ownership and drops need ``OWNER`` (``MANAGE``) on the securable
    or one of its parents, or membership of ``admins``; principals are added by ``admins``
    (until the directory names one, the catalog is in set-up mode and anyone may). Without an
    actor the catalog is the raw store, for code that has already checked its caller.

    Table paths under the home are stored relative to it, so a copied home is self-contained.
    """

    def __init__(self, path: str | Path, actor: str | None = None) -> None:
        self.path = Path(path)
        self.home = self.path.parent.resolve()
        self.store = Store(self.path)
        self.actor = actor
        paths.relocate(self.store, self.home)

    def as_user(self, user: str | Principal) -> Catalog:
        """The same catalog acting as ``user`` (administrative changes checked against it)."""
        view = copy.copy(self)
        view.actor = user.name if isinstance(user, Principal) else user
        return view

    # -- who may administer --------------------------------------------------------------
    def is_admin(self, user: str | Principal) -> bool:
        who = self.principal(user)
        return who.is_system or ADMINS in who.groups

    def _setup_mode(self) -> bool:
        return not self.store.query(
            "SELECT 1 FROM memberships WHERE kind = 'group' AND value = ? LIMIT 1", (ADMINS,)
        )

    def _require_admin(self, what: str) -> None:
        if self.actor is None or self.is_admin(self.actor) or self._setup_mode():
            return
        raise PermissionDeniedError(
            f"principal '{self.actor}' cannot {what}: that needs a member of the '{ADMINS}' group. "
            f"Connect as an admin (llmforge.connect(user=...)) or ask one to do it."
        )

    def _require_owner(self, securable: str, what: str) -> None:
        if self.actor is None:
            return
        who = self.principal(self.actor)
        if self.is_admin(who) or grants.has(self.store, who, "OWNER", securable):
            return
        kind = names.securable_type(securable)
        raise PermissionDeniedError(
            f"principal '{who.name}' cannot {what} on {kind} '{securable}': that needs OWNER (MANAGE) on "
            f"it or a parent, or membership of '{ADMINS}'. Ask its owner "
            f"'{self.describe(securable)['owner']}' or an admin."
        )

    # -- principals -------------------------------------------------------------------
    def add_principal(self, name: str, groups=(), departments=(), kind: str = "user") -> Principal:
        """Add or replace a principal with its groups and departments."""
        if not name or not isinstance(name, str) or is_reserved(name):
            raise ConfigError(f"principal name {name!r} is empty or reserved")
        if kind not in KINDS:
            raise ConfigError(f"principal kind '{kind}' is not one of {list(KINDS)}")
        if isinstance(groups, str) or isinstance(departments, str):
            raise ConfigError("groups and departments are lists of names, e.g. groups=['hr']")
        self._require_admin("add principals")
        with self.store.write() as con:
            self._put_principal(con, name, groups, departments, kind)
        return self.principal(name)

    @staticmethod
    def _put_principal(con, name, groups, departments, kind) -> None:
        con.execute("INSERT OR REPLACE INTO principals VALUES (?, ?)", (name, kind))
        con.execute("DELETE FROM memberships WHERE principal = ?", (name,))
        con.executemany(
            "INSERT OR IGNORE INTO memberships VALUES (?, ?, ?)",
            [(name, "group", g) for g in groups] + [(name, "department", d) for d in departments],
        )

    def load_directory(self, path: str | Path) -> list[Principal]:
        """Add every principal of a YAML/CSV directory file, in one transaction."""
        entries = parse_directory(path)
        for e in entries:
            if is_reserved(e["name"]):
                raise ConfigError(f"{path}: principal name {e['name']!r} is reserved")
        self._require_admin("load a directory of principals")
        with self.store.write() as con:
            for e in entries:
                self._put_principal(con, e["name"], e["groups"], e["departments"], e["kind"])
        return [self.principal(e["name"]) for e in entries]

    def principal(self, name: str | Principal | None) -> Principal:
        """The principal ``name``; one not in the directory has no groups or departments."""
        if isinstance(name, Principal):
            return name
        if not name:
            raise ConfigError(
                "no principal given: pass user=... or set identity.default_user in llmforge.yaml"
            )
        if name == SYSTEM:
            return Principal(SYSTEM, frozenset(), frozenset(), "service_principal")
        kind = self.store.query("SELECT kind FROM principals WHERE name = ?", (name,))
        rows = self.store.query("SELECT kind, value FROM memberships WHERE principal = ?", (name,))
        return Principal(
            name,
            frozenset({r["value"] for r in rows if r["kind"] == "group"} | {ALL_USERS}),
            frozenset(r["value"] for r in rows if r["kind"] == "department"),
            kind[0]["kind"] if kind else "user",
        )

    def principals(self) -> list[Principal]:
        return [
            self.principal(r["name"]) for r in self.store.query("SELECT name FROM principals ORDER BY name")
        ]

    # -- securables -------------------------------------------------------------------
    def _create(
        self,
        full_name: str,
        type_: str,
        owner: str,
        comment: str | None = None,
        primary_key: str | None = None,
        path: str | None = None,
        properties: dict | None = None,
        if_not_exists: bool = False,
    ) -> dict:
        names.split(full_name, expect=type_)
        parent = full_name.rsplit(".", 1)[0] if "." in full_name else None
        with self.store.write() as con:
            if (
                parent
                and not con.execute("SELECT 1 FROM securables WHERE full_name = ?", (parent,)).fetchone()
            ):
                kind = names.securable_type(parent)
                raise NotFoundError(
                    f"{kind} '{parent}' does not exist; create it with "
                    f"forge.catalog.create_{kind}('{parent}', owner=...)"
                )
            if con.execute("SELECT 1 FROM securables WHERE full_name = ?", (full_name,)).fetchone():
                if if_not_exists:
                    return self.describe(full_name)
                raise AlreadyExistsError(
                    f"{type_} '{full_name}' already exists; pick another name or drop it"
                )
            con.execute(
                "INSERT INTO securables VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    full_name,
                    type_,
                    owner,
                    datetime.now(UTC).isoformat(),
                    comment,
                    primary_key,
                    paths.stored(self.home, path),
                    json.dumps(properties or {}),
                ),
            )
        return self.describe(full_name)

    def create_catalog(
        self, name: str, owner: str, comment: str | None = None, if_not_exists: bool = False
    ) -> dict:
        return self._create(name, "catalog", owner, comment, if_not_exists=if_not_exists)

    def create_schema(
        self, full_name: str, owner: str, comment: str | None = None, if_not_exists: bool = False
    ) -> dict:
        return self._create(full_name, "schema", owner, comment, if_not_exists=if_not_exists)

    def register_table(
        self,
        full_name: str,
        owner: str,
        primary_key: str | None = None,
        path: str | None = None,
        comment: str | None = None,
        properties: dict | None = None,
    ) -> dict:
        return self._create(full_name, "table", owner, comment, primary_key, path, properties)

    def alter_table(
        self,
        full_name: str,
        *,
        primary_key: str | None = None,
        comment: str | None = None,
        path: str | None = None,
    ) -> dict:
        """Set a registered table's primary key, comment and storage path."""
        grants.securable_row(self.store, full_name)
        with self.store.write() as con:
            con.execute(
                "UPDATE securables SET primary_key = ?, comment = ?, path = ? WHERE full_name = ?",
                (primary_key, comment, paths.stored(self.home, path), full_name),
            )
        return self.describe(full_name)

    def drop(self, full_name: str) -> None:
        """Forget a securable, everything below it, and their grants and policies (not lineage)."""
        grants.securable_row(self.store, full_name)
        self._require_owner(full_name, "drop it")
        like = full_name.replace("_", "\\_") + ".%"
        with self.store.write() as con:
            for t in ("securables",):
                con.execute(
                    f"DELETE FROM {t} WHERE full_name = ? OR full_name LIKE ? ESCAPE '\\'", (full_name, like)
                )
            con.execute(
                "DELETE FROM grants WHERE securable = ? OR securable LIKE ? ESCAPE '\\'", (full_name, like)
            )
            for t in ("row_filters", "column_masks"):
                con.execute(
                    f"DELETE FROM {t} WHERE table_name = ? OR table_name LIKE ? ESCAPE '\\'",
                    (full_name, like),
                )

    def exists(self, full_name: str) -> bool:
        return bool(self.store.query("SELECT 1 FROM securables WHERE full_name = ?", (full_name,)))

    def describe(self, full_name: str) -> dict:
        r = grants.securable_row(self.store, full_name)
        return {
            "full_name": r["full_name"],
            "type": r["type"],
            "owner": r["owner"],
            "created_at": r["created_at"],
            "comment": r["comment"],
            "primary_key": r["primary_key"],
            "path": str(self.home / r["path"]) if r["path"] else r["path"],
            "properties": json.loads(r["properties"]),
        }

    def list(self, type_: str = "table", under: str | None = None) -> list[str]:
        rows = self.store.query(
            "SELECT full_name FROM securables WHERE type = ? ORDER BY full_name", (type_,)
        )
        return [r["full_name"] for r in rows if under is None or r["full_name"].startswith(under + ".")]

    def set_owner(self, full_name: str, owner: str) -> None:
        grants.securable_row(self.store, full_name)
        check_external(owner, "set_owner")
        self._require_owner(full_name, "change the owner")
        with self.store.write() as con:
            con.execute("UPDATE securables SET owner = ? WHERE full_name = ?", (owner, full_name))

    # -- grants -----------------------------------------------------------------------
    def grant(self, privilege: str, securable: str, principal: str, granted_by: str | None = None) -> None:
        """Grant ``privilege`` on ``securable`` to a user or group (inherited by everything below)."""
        grants.securable_row(self.store, securable)
        self._require_owner(securable, f"grant {privilege}")
        granted_by = granted_by or self.actor
        grants.grant(self.store, privilege, securable, principal, granted_by)

    def revoke(self, privilege: str, securable: str, principal: str) -> None:
        grants.securable_row(self.store, securable)
        self._require_owner(securable, f"revoke {privilege}")
        grants.revoke(self.store, privilege, securable, principal)

    def show_grants(self, securable: str, principal: str | None = None) -> list[dict]:
        """``SHOW GRANTS [principal] ON securable``: direct and inherited grants, owners included."""
        return grants.show(self.store, securable, principal)

    def check(self, user: str | Principal, privilege: str, securable: str) -> None:
        """Raise :class:`PermissionDeniedError` unless ``user`` holds ``privilege`` on ``securable``."""
        grants.check(self.store, self.principal(user), privilege, securable)

    def has_privilege(self, user: str | Principal, privilege: str, securable: str) -> bool:
        return grants.has(self.store, self.principal(user), privilege, securable)

    # -- row filters and column masks -------------------------------------------------------
    def set_row_filter(self, table: str, spec: dict | None) -> None:
        """Set (``None``: remove) the table's one row filter; see :mod:`llmforge.catalog.policies`.

        The filter's column must exist in the table (when its storage can be read): a filter on a
        missing column would make every read of it fail, the owner's included."""
        grants.securable_row(self.store, table)
        self._require_owner(table, "change the row filter")
        if spec is not None:
            spec = policies.validate_row_filter(spec)
            self._check_column(table, spec["column"], "row filter")
        with self.store.write() as con:
            if spec is None:
                con.execute("DELETE FROM row_filters WHERE table_name = ?", (table,))
            else:
                con.execute(
                    "INSERT OR REPLACE INTO row_filters VALUES (?, ?)",
                    (table, json.dumps(policies.validate_row_filter(spec))),
                )

    def row_filter(self, table: str) -> dict | None:
        rows = self.store.query("SELECT spec FROM row_filters WHERE table_name = ?", (table,))
        return json.loads(rows[0]["spec"]) if rows else None

    def row_filter_for(self, table: str, user: str | Principal) -> dict[str, list[str]] | None:
        """The table's row filter resolved for ``user`` as a Vector Search filter dict, or ``None``."""
        return policies.resolve_filter(self.row_filter(table), self.principal(user))

    def set_column_mask(self, table: str, column: str, spec: dict | None) -> None:
        grants.securable_row(self.store, table)
        self._require_owner(table, "change a column mask")
        with self.store.write() as con:
            if spec is None:
                con.execute(
                    "DELETE FROM column_masks WHERE table_name = ? AND column_name = ?", (table, column)
                )
            else:
                con.execute(
                    "INSERT OR REPLACE INTO column_masks VALUES (?, ?, ?)",
                    (table, column, json.dumps(policies.validate_mask(spec))),
                )

    def columns(self, table: str) -> list[str] | None:
        """Column names of a registered Delta table, read from its log; ``None`` when unknown."""
        return paths.delta_columns(self.describe(table)["path"])

    def _check_column(self, table: str, column: str, what: str) -> None:
        columns = self.columns(table)
        if columns is not None and column not in columns:
            raise DataError(
                f"the {what} names column '{column}', which {table} lacks; its columns are {columns}"
            )

    def column_masks(self, table: str) -> dict[str, dict]:
        rows = self.store.query(
            "SELECT column_name, spec FROM column_masks WHERE table_name = ? ORDER BY column_name", (table,)
        )
        return {r["column_name"]: json.loads(r["spec"]) for r in rows}

    def masks_for(self, table: str, user: str | Principal) -> dict[str, dict]:
        return policies.masks_for(self.column_masks(table), self.principal(user))

    def apply_policies(self, table: str, user: str | Principal, data: Any) -> Any:
        """``data`` (pa.Table) with ``user``'s row filter and column masks applied."""
        who = self.principal(user)
        expr = policies.arrow_filter(self.row_filter_for(table, who))
        if expr is not None:
            data = data.filter(expr)
        return policies.apply_masks(data, self.masks_for(table, who))

    def unity_catalog_sql(
        self, table: str, column_types: dict[str, str] | None = None, department_prefix: str = "dept_"
    ) -> list[str]:
        """The table's row filter and masks as Unity Catalog SQL (see :mod:`llmforge.catalog.unity`)."""
        from llmforge.catalog import unity

        types = column_types or {}
        out = []
        spec = self.row_filter(table)
        if spec:
            out += unity.row_filter_sql(table, spec, types.get(spec["column"], "STRING"), department_prefix)
        for column, mask in self.column_masks(table).items():
            out += unity.column_mask_sql(table, column, mask, types.get(column, "STRING"))
        return out

    # -- lineage ------------------------------------------------------------------------
    def record_lineage(
        self,
        sources: list[str],
        target: str,
        job: str,
        run_id: str | None = None,
        row_keys: dict | None = None,
    ) -> list[int]:
        """Edges ``source -> target`` (one per source), with optional ``{source_key: [target_keys]}``."""
        return lineage.record(self.store, sources, target, job, run_id, row_keys)

    def upstream(self, node: str, depth: int | None = None) -> list[dict]:
        return lineage.traverse(self.store, node, "up", depth)

    def downstream(self, node: str, depth: int | None = None) -> list[dict]:
        return lineage.traverse(self.store, node, "down", depth)

    def upstream_rows(self, node: str, key: str) -> list[dict]:
        """Source rows ``key`` of ``node`` was made from: ``[{node, key, job, run_id}]``."""
        return lineage.row_lineage(self.store, node, key, "up")

    def downstream_rows(self, node: str, key: str) -> list[dict]:
        """Rows made from row ``key`` of ``node``."""
        return lineage.row_lineage(self.store, node, key, "down")
