"""Governance in Unity Catalog: row filters and column masks as SQL functions bound with
``ALTER TABLE`` (rendered by :mod:`llmforge.catalog.unity`), grants through the permissions
API, and the llmforge spec of each policy kept as a table property.

Vector Search does not apply a source table's row filter to its queries, so identity-aware
retrieval reads the spec back from the property (:class:`UnityPolicies`) and ANDs the
caller's filter into every search, as the local backend does with its embedded catalog.
"""

from __future__ import annotations

import json
from typing import Any

from llmforge.catalog import policies
from llmforge.errors import ConfigError, DataError, PermissionDeniedError
from llmforge_databricks.workspace import calling, workspace_client

ROW_FILTER_PROPERTY = "llmforge.row_filter"
MASKS_PROPERTY = "llmforge.column_masks"
_SECURABLES = {1: "catalog", 2: "schema", 3: "table"}


def table_info(full_name: str) -> Any:
    with calling(f"get table {full_name}"):
        return workspace_client().tables.get(full_name)


def row_filter_spec(info: Any) -> dict | None:
    """The llmforge row filter spec of a table, from its property; a Unity Catalog row filter
    without one fails closed (llmforge cannot tell which rows the function admits)."""
    raw = (info.properties or {}).get(ROW_FILTER_PROPERTY)
    if raw:
        return policies.validate_row_filter(json.loads(raw))
    if info.row_filter is not None:
        raise PermissionDeniedError(
            f"{info.full_name} has the Unity Catalog row filter {info.row_filter.function_name}, which "
            f"llmforge cannot mirror into vector search queries; set it with forge.data.set_row_filter "
            f"so its spec travels as the table property {ROW_FILTER_PROPERTY}"
        )
    return None


def column_types(info: Any) -> dict[str, str]:
    return {c.name: (c.type_text or "string").upper() for c in info.columns or []}


def _column_type(info: Any, column: str, what: str) -> str:
    types = column_types(info)
    if column not in types:
        raise DataError(
            f"the {what} names column '{column}', which {info.full_name} lacks; its columns: {list(types)}"
        )
    return types[column]


def row_filter_statements(table: str, spec: dict | None) -> list[str]:
    from llmforge.catalog import unity

    if spec is None:
        return [unity.drop_row_filter_sql(table), unity.unset_properties_sql(table, [ROW_FILTER_PROPERTY])]
    spec = policies.validate_row_filter(spec)
    ctype = _column_type(table_info(table), spec["column"], "row filter")
    return [
        *unity.row_filter_sql(table, spec, ctype),
        unity.properties_sql(table, {ROW_FILTER_PROPERTY: json.dumps(spec, sort_keys=True)}),
    ]


def mask_statements(table: str, column: str, spec: dict | None) -> list[str]:
    from llmforge.catalog import unity

    info = table_info(table)
    masks = json.loads((info.properties or {}).get(MASKS_PROPERTY) or "{}")
    if spec is None:
        masks.pop(column, None)
        out = [unity.drop_mask_sql(table, column)]
    else:
        masks[column] = policies.validate_mask(spec)
        out = unity.column_mask_sql(table, column, masks[column], _column_type(info, column, "column mask"))
    return [*out, unity.properties_sql(table, {MASKS_PROPERTY: json.dumps(masks, sort_keys=True)})]


def change_grants(securable: str, principal: str, add: list[str] = (), remove: list[str] = ()) -> None:
    """Grant/revoke through the permissions API; ``USE`` becomes USE_CATALOG / USE_SCHEMA."""
    from databricks.sdk.service.catalog import PermissionsChange, Privilege

    kind = _SECURABLES.get(len(securable.split(".")))
    if kind is None:
        raise ConfigError(f"'{securable}' is not a catalog, schema or table name")

    def uc(p: str) -> Any:
        p = p.upper().replace(" ", "_")
        if p == "USE":
            p = f"USE_{kind.upper()}"
        return Privilege(p)

    try:
        change = PermissionsChange(
            principal=principal, add=[uc(p) for p in add], remove=[uc(p) for p in remove]
        )
    except ValueError as exc:
        raise ConfigError(f"{exc}; use a Unity Catalog privilege such as SELECT, MODIFY or USE") from None
    with calling(f"change the grants on {kind} {securable}"):
        workspace_client().grants.update(securable_type=kind, full_name=securable, changes=[change])


class UnityPolicies:
    """What :func:`llmforge.vector_filters.governed` asks of a catalog, answered from Unity
    Catalog (the table's row filter spec) and the home catalog (who a principal is: its
    departments and groups, as llmforge's identity directory defines them)."""

    def __init__(self, home_catalog: Any) -> None:
        self.home = home_catalog

    def check(self, principal: Any, privilege: str, table: str) -> None:
        # the workspace enforces SELECT for its token; the home catalog, where it knows the
        # table, also checks the principal's own grant
        if self.home.exists(table):
            self.home.check(principal, privilege, table)

    def row_filter_for(self, table: str, principal: Any) -> dict[str, list[str]] | None:
        return policies.resolve_filter(row_filter_spec(table_info(table)), self.home.principal(principal))
