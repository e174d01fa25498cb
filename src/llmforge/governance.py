"""Weights governed like rows: who may be served a model version, decided from lineage.

Invariant: a model version is served to a principal only if that principal may read every
row it was trained on. The check never trusts a name. It walks lineage from the version
(``model:<name>/<v>`` ← ``mlflow_run:<id>`` ← ``table:<training table>@<version>`` ← its
sources) and compares the principal's row filter on each of those tables with the
*footprint* the trainer recorded: the distinct values of every policy column (a column a
row filter on the training table or on one of its upstream tables decides on) among the
rows it read. It fails closed: a restricted table whose policy column the footprint lacks, or
a principal without ``SELECT`` on the table (or on every table it was derived from), means
"not entitled". A version with neither lineage nor footprint (a model registered by hand, not
trained here on catalog rows) learned no governed rows and is served to everyone.

Aliases: ``<alias>-<audience>`` (``champion-engineering``) serves that audience only; any
other alias (``champion``) serves everyone, so :func:`check_promotion` lets it point only
at a version every principal may read (see :meth:`llmforge.tracking.Tracker.promote`).

Routing (:func:`route`) picks, for one principal and one registered model, the adapter it is
entitled to among the model's ``<prefix>`` and ``<prefix>-<audience>`` aliases. A principal
entitled to several (a member of two departments) gets the one trained on the most rows,
ties broken by alias name; none entitled → the base model, or :class:`NotEntitledError`
with ``fallback="refuse"``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llmforge.errors import ConfigError, DataError, ModelError, NotFoundError, PermissionDeniedError

#: model version tag: the rows the version was trained on, per table (see :func:`footprint`)
FOOTPRINT_TAG = "llmforge.row_footprint"
#: model version tag: the audience an adapter was trained for ("department:hr", "alice")
AUDIENCE_TAG = "llmforge.audience"
#: the principal prefix of a department audience: reads as a member of that department only
DEPARTMENT_PREFIX = "department:"
FALLBACKS = ("base", "refuse")


class NotEntitledError(PermissionDeniedError, ModelError):
    """No model version the caller may be served (routing with ``fallback="refuse"``)."""


@dataclass(frozen=True)
class TrainingLineage:
    """What a model version was trained on, as the catalog and registry recorded it."""

    model: str
    version: str
    #: ``(table, version)`` the training run read (from lineage edges)
    tables: tuple[tuple[str, int], ...]
    #: ``{table: {"rows": n, "columns": {column: [values]}}}`` recorded by the trainer
    footprint: dict[str, Any] = field(default_factory=dict)
    audience: str | None = None


def audience_principal(catalog: Any, audience: str) -> Any:
    """The principal an audience reads as: ``department:<d>`` is a member of department ``d``
    (and nothing else); any other name is that principal from the directory."""
    from llmforge.catalog.identity import ALL_USERS, Principal

    if audience.startswith(DEPARTMENT_PREFIX):
        dept = audience[len(DEPARTMENT_PREFIX) :]
        return Principal(audience, frozenset({ALL_USERS}), frozenset({dept}))
    return catalog.principal(audience)


def everyone() -> Any:
    """The least-privileged principal: only the implicit ``account users`` group."""
    from llmforge.catalog.identity import ALL_USERS, Principal

    return Principal("everyone", frozenset({ALL_USERS}), frozenset())


def _upstream_tables(catalog: Any, node: str) -> list[str]:
    return sorted(
        {
            e["source"].split(":", 1)[1].rsplit("@", 1)[0]
            for e in catalog.upstream(node)
            if e["source"].startswith("table:")
        }
    )


def policy_columns(catalog: Any, table: str, version: int) -> list[str]:
    """Columns a row filter decides on: the table's own and its upstream tables' (lineage)."""
    from llmforge.catalog.lineage import table_node

    names = [table, *_upstream_tables(catalog, table_node(table, version))]
    return sorted({spec["column"] for t in names if (spec := catalog.row_filter(t))})


def footprint(catalog: Any, table: str, version: int, rows: Any) -> dict[str, Any]:
    """The footprint of ``rows`` (a ``pa.Table`` read from ``table@version``): row count and
    the distinct values of each policy column the rows carry."""
    columns = {
        c: sorted({str(v) for v in rows.column(c).to_pylist() if v is not None})
        for c in policy_columns(catalog, table, version)
        if c in rows.column_names
    }
    return {table: {"version": version, "rows": rows.num_rows, "columns": columns}}


def training_lineage(catalog: Any, tracker: Any, name: str, version: str | int) -> TrainingLineage:
    """Lineage of ``name`` version ``version``: the tables its run read, and its footprint."""
    version = str(version)
    mv = tracker.client.get_model_version(name, version)
    tables = []
    for e in catalog.upstream(f"model:{name}/{version}", depth=2):
        if e["source"].startswith("table:"):
            t, _, v = e["source"][len("table:") :].rpartition("@")
            tables.append((t, int(v)))
    tags = dict(mv.tags or {})
    rows = json.loads(tags.get(FOOTPRINT_TAG, "{}"))
    # the footprint names the tables too: a version whose lineage edges went missing is still checked
    tables += [(t, int(f["version"])) for t, f in rows.items()]
    return TrainingLineage(
        model=name,
        version=version,
        tables=tuple(sorted(set(tables))),
        footprint=rows,
        audience=tags.get(AUDIENCE_TAG),
    )


def _readable(catalog: Any, who: Any, table: str, version: int) -> bool:
    """SELECT on the training table, or on every table it was derived from."""
    from llmforge.catalog.lineage import table_node

    if not catalog.exists(table):
        return False
    if catalog.has_privilege(who, "SELECT", table):
        return True
    sources = _upstream_tables(catalog, table_node(table, version))
    return bool(sources) and all(
        catalog.exists(s) and catalog.has_privilege(who, "SELECT", s) for s in sources
    )


def entitled(catalog: Any, principal: Any, lineage: TrainingLineage) -> bool:
    """True when ``principal`` may read every row ``lineage``'s version was trained on."""
    from llmforge.catalog.lineage import table_node
    from llmforge.catalog.policies import resolve_filter

    who = catalog.principal(principal)
    if who.is_system:
        return True
    if not lineage.tables:
        return True  # registered without training lineage or footprint (an imported model): no catalog rows
    for table, version in lineage.tables:
        if not _readable(catalog, who, table, version):
            return False
        seen = (lineage.footprint.get(table) or {}).get("columns", {})
        for t in [table, *_upstream_tables(catalog, table_node(table, version))]:
            allowed = resolve_filter(catalog.row_filter(t), who)
            for column, values in (allowed or {}).items():
                if column not in seen or not set(seen[column]) <= set(values):
                    return False
    return True


def inherit_row_filter(catalog: Any, table: str, columns: list[str]) -> dict | None:
    """Give ``table`` the row filter of the tables it was derived from (found through lineage),
    so a derived table (pairs made from governed documents) shows each principal only rows from
    sources it may read. ``columns`` are ``table``'s columns. Returns the filter set, or ``None``
    when no source has one. A table that already has a filter keeps it."""
    own = catalog.row_filter(table)
    if own is not None:
        return own
    specs = {
        json.dumps(s, sort_keys=True): s
        for t in _upstream_tables(catalog, f"table:{table}")
        if (s := catalog.row_filter(t))
    }
    if not specs:
        return None
    if len(specs) > 1:
        raise ConfigError(
            f"the sources of {table} have different row filters {list(specs.values())}; set the filter "
            f"of {table} yourself with forge.catalog.set_row_filter"
        )
    (spec,) = specs.values()
    if spec["column"] not in columns:
        raise DataError(
            f"{table} lacks column '{spec['column']}', which its source's row filter decides on; keep "
            f"it when deriving the table (llmforge.pairs.pairs_table carries 'department' by default)"
        )
    catalog.set_row_filter(table, spec)
    return spec


def alias_audience(alias: str, prefix: str = "champion") -> str | None:
    """``champion-engineering`` → ``engineering``; an alias that serves everyone → ``None``."""
    head = f"{prefix}-"
    return alias[len(head) :] if alias.startswith(head) and len(alias) > len(head) else None


def check_promotion(tracker: Any, name: str, version: str | int, alias: str) -> None:
    """Refuse to point ``alias`` at a version its audience may not read every row of.

    ``<x>-<audience>`` serves that audience (a department, as ``department:<audience>``,
    or a principal of that name); any other alias serves everyone."""
    from llmforge.tracking import PromotionRefused

    catalog = _catalog(tracker)
    lineage = training_lineage(catalog, tracker, name, version)
    prefix = alias.split("-", 1)[0]
    audience = alias_audience(alias, prefix)
    if audience is None:
        who, label = everyone(), "everyone"
    else:
        known = {p.name for p in catalog.principals()}
        who = (
            catalog.principal(audience)
            if audience in known
            else audience_principal(catalog, DEPARTMENT_PREFIX + audience)
        )
        label = f"audience {audience!r}"
    if not entitled(catalog, who, lineage):
        tables = ", ".join(f"{t}@{v}" for t, v in lineage.tables) or "no recorded training table"
        raise PromotionRefused(
            f"refusing to set {name}@{alias} to version {version}: @{alias} serves {label}, but the "
            f"version was trained on rows of {tables} that {label} may not read. Promote it to a "
            f"per-audience alias (e.g. @{prefix}-<department>), or train it on rows everyone may read"
        )


def _catalog(tracker: Any) -> Any:
    if tracker.catalog is not None:
        return tracker.catalog
    from llmforge.catalog import Catalog

    return Catalog(tracker.home / "catalog.db")


@dataclass(frozen=True)
class Route:
    """Where one request goes: ``uri`` of the adapter version, or ``None`` for the base model."""

    uri: str | None
    alias: str | None = None
    version: str | None = None
    reason: str = ""


def route(
    tracker: Any, principal: Any, name: str, *, prefix: str = "champion", fallback: str = "base"
) -> Route:
    """The version of ``name`` that ``principal`` is served (see the module docstring)."""
    if fallback not in FALLBACKS:
        raise ConfigError(f"fallback must be one of {list(FALLBACKS)}, got {fallback!r}")
    catalog = _catalog(tracker)
    who = catalog.principal(principal) if principal is not None else everyone()
    try:
        aliases = dict(tracker.client.get_registered_model(name).aliases or {})
    except Exception:
        raise NotFoundError(
            f"no registered model {name!r} to route to; train one with `llmforge train CONFIG`"
        ) from None
    candidates = []
    for alias, version in sorted(aliases.items()):
        if alias != prefix and alias_audience(alias, prefix) is None:
            continue
        lineage = training_lineage(catalog, tracker, name, version)
        if entitled(catalog, who, lineage):
            rows = sum(int(f.get("rows", 0)) for f in lineage.footprint.values())
            candidates.append((-rows, alias, str(version)))
    if candidates:
        _, alias, version = min(candidates)
        return Route(f"models:/{name}/{version}", alias, version, f"{who.name} is entitled to @{alias}")
    if fallback == "refuse":
        raise NotEntitledError(
            f"'{who.name}' is not entitled to any version of {name} (aliases: {sorted(aliases) or 'none'}): "
            f"each was trained on rows it may not read. Train an adapter for its department "
            f"(llmforge: {{audiences: departments}} in the fine-tuning config) or serve the base model "
            f"(generator option unentitled: base)"
        )
    return Route(None, reason=f"'{who.name}' is entitled to no adapter of {name}; serving the base model")
