"""Unity Catalog REST subset (``/api/2.1/unity-catalog/...``) over ``forge.catalog``:
catalogs, schemas and tables (list/get) and permissions (GET/PATCH), plus ``scim/v2/Me`` (who
the token is). A caller sees only securables it holds a privilege on; only an owner changes
grants."""

from __future__ import annotations

import hashlib
from typing import Any

from llmforge_emulator.errors import ApiError, bad_request, not_found
from llmforge_emulator.routes import Call, Routes

UC = "/api/2.1/unity-catalog"
routes = Routes()

# UC privilege names <-> the catalog's; USE is USE_CATALOG or USE_SCHEMA by securable type.
_TO_UC = {"SELECT": "SELECT", "MODIFY": "MODIFY", "OWNER": "MANAGE"}
_FROM_UC = {
    "USE_CATALOG": "USE",
    "USE_SCHEMA": "USE",
    "SELECT": "SELECT",
    "MODIFY": "MODIFY",
    "MANAGE": "OWNER",
    "ALL_PRIVILEGES": "ALL PRIVILEGES",
}
# Arrow type names -> (type_name, type_text) as UC reports them.
_TYPES = {
    "int64": ("LONG", "bigint"),
    "int32": ("INT", "int"),
    "int16": ("SHORT", "smallint"),
    "int8": ("BYTE", "tinyint"),
    "double": ("DOUBLE", "double"),
    "float": ("FLOAT", "float"),
    "bool": ("BOOLEAN", "boolean"),
    "string": ("STRING", "string"),
    "large_string": ("STRING", "string"),
    "date32[day]": ("DATE", "date"),
    "binary": ("BINARY", "binary"),
}


@routes.add("GET", "/api/2.0/preview/scim/v2/Me")
def me(emu: Any, call: Call) -> dict[str, Any]:
    """The caller as ``w.current_user.me()`` sees it: the token's principal and its groups."""
    who = emu.forge.catalog.principal(call.principal)
    return {
        "id": hashlib.sha1(who.name.encode()).hexdigest()[:16],
        "userName": who.name,
        "displayName": who.name,
        "active": True,
        "groups": [{"display": g, "value": g} for g in sorted(who.groups)],
    }


def _securable(emu: Any, call: Call, full_name: str, kind: str) -> dict[str, Any]:
    """The catalog entry of ``full_name`` if it exists and the caller may see it."""
    cat = emu.forge.catalog
    depth = {"catalog": 1, "schema": 2, "table": 3}[kind]
    if len(full_name.split(".")) != depth or not cat.exists(full_name):
        raise not_found(kind.capitalize(), full_name)
    if not _visible(emu, call.principal, full_name, kind):
        raise ApiError(
            "PERMISSION_DENIED", f"User '{call.principal}' does not have USE/SELECT on {kind} '{full_name}'."
        )
    return cat.describe(full_name)


def _visible(emu: Any, principal: str, full_name: str, kind: str) -> bool:
    cat = emu.forge.catalog
    needs = ("SELECT", "MODIFY") if kind == "table" else ("USE",)
    return any(cat.has_privilege(principal, p, full_name) for p in needs)


def _info(meta: dict[str, Any]) -> dict[str, Any]:
    parts = meta["full_name"].split(".")
    info = {
        "name": parts[-1],
        "full_name": meta["full_name"],
        "owner": meta["owner"],
        "comment": meta.get("comment"),
        "properties": meta.get("properties") or {},
        "created_at": _ms(meta.get("created_at")),
    }
    if len(parts) >= 2:
        info["catalog_name"] = parts[0]
    if len(parts) == 3:
        info["schema_name"] = parts[1]
    return info


def _ms(iso: str | None) -> int | None:
    """UC reports timestamps as epoch milliseconds; the catalog keeps ISO strings."""
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else None


@routes.add("GET", f"{UC}/catalogs")
def list_catalogs(emu: Any, call: Call) -> dict[str, Any]:
    cat = emu.forge.catalog
    return {
        "catalogs": [
            _info(cat.describe(n)) for n in cat.list("catalog") if _visible(emu, call.principal, n, "catalog")
        ]
    }


@routes.add("GET", f"{UC}/catalogs/{{name}}")
def get_catalog(emu: Any, call: Call) -> dict[str, Any]:
    return _info(_securable(emu, call, call.path["name"], "catalog"))


@routes.add("GET", f"{UC}/schemas")
def list_schemas(emu: Any, call: Call) -> dict[str, Any]:
    catalog = call.required("catalog_name")
    _securable(emu, call, catalog, "catalog")
    cat = emu.forge.catalog
    return {
        "schemas": [
            _info(cat.describe(n))
            for n in cat.list("schema", under=catalog)
            if _visible(emu, call.principal, n, "schema")
        ]
    }


@routes.add("GET", f"{UC}/schemas/{{full_name}}")
def get_schema(emu: Any, call: Call) -> dict[str, Any]:
    return _info(_securable(emu, call, call.path["full_name"], "schema"))


@routes.add("GET", f"{UC}/tables")
def list_tables(emu: Any, call: Call) -> dict[str, Any]:
    schema = f"{call.required('catalog_name')}.{call.required('schema_name')}"
    _securable(emu, call, schema, "schema")
    cat = emu.forge.catalog
    return {
        "tables": [
            _table_info(emu, call.principal, n)
            for n in cat.list("table", under=schema)
            if _visible(emu, call.principal, n, "table")
        ]
    }


@routes.add("GET", f"{UC}/tables/{{full_name}}")
def get_table(emu: Any, call: Call) -> dict[str, Any]:
    full_name = call.path["full_name"]
    _securable(emu, call, full_name, "table")
    return _table_info(emu, call.principal, full_name)


def _table_info(emu: Any, principal: str, full_name: str) -> dict[str, Any]:
    from llmforge_emulator.sql_governance import table_policies

    desc = emu.forge.table(full_name, user=principal).describe()
    policies = table_policies(emu, full_name)
    info = _info({**desc, "properties": {**(desc.get("properties") or {}), **policies["properties"]}})
    info.update(
        {
            "table_type": "MANAGED",
            "data_source_format": "DELTA",
            "storage_location": desc.get("path"),
            "table_id": desc["full_name"],
        }
    )
    info["columns"] = []
    for pos, col in enumerate(desc.get("columns", [])):
        name, text = _TYPES.get(
            col["type"], ("ARRAY" if col["type"].startswith("list") else "STRING", col["type"])
        )
        column = {
            "name": col["name"],
            "type_name": name,
            "type_text": text,
            "position": pos,
            "nullable": True,
        }
        if col["name"] in policies["masks"]:
            column["mask"] = {"function_name": policies["masks"][col["name"]], "using_column_names": []}
        info["columns"].append(column)
    if policies["row_filter"]:
        info["row_filter"] = policies["row_filter"]
    pk = desc.get("primary_key")
    if pk:
        info["table_constraints"] = [
            {
                "primary_key_constraint": {
                    "name": f"pk_{full_name.split('.')[-1]}",
                    "child_columns": pk.split(","),
                }
            }
        ]
    return info


# ---- permissions ---------------------------------------------------------------------------


def _kind(call: Call) -> tuple[str, str]:
    kind, full_name = call.path["securable_type"].lower(), call.path["full_name"]
    if kind not in ("catalog", "schema", "table"):
        raise bad_request(f"securable_type '{kind}' is not supported here; use catalog, schema or table")
    return kind, full_name


def _assignments(emu: Any, full_name: str, kind: str, principal: str | None) -> dict[str, Any]:
    cat = emu.forge.catalog
    owner = cat.describe(full_name)["owner"]
    held: dict[str, list[str]] = {}
    for g in cat.show_grants(full_name, principal):
        if g["inherited"] or (g["privilege"] == "OWNER" and g["principal"] == owner and not g["granted_by"]):
            continue  # UC's GET permissions lists direct grants only, never ownership
        uc = _TO_UC.get(g["privilege"]) or ("USE_CATALOG" if kind == "catalog" else "USE_SCHEMA")
        held.setdefault(g["principal"], []).append(uc)
    return {
        "privilege_assignments": [
            {"principal": p, "privileges": sorted(set(v))} for p, v in sorted(held.items())
        ]
    }


def _index(emu: Any, kind: str, full_name: str) -> bool:
    """Whether ``full_name`` is a vector index (a table-like securable with its own grants)."""
    if kind != "table" or emu.forge.catalog.exists(full_name):
        return False
    return bool(emu.forge.vector_search.index_exists(index_name=full_name))


def _index_assignments(emu: Any, full_name: str) -> dict[str, Any]:
    held = emu.state.get("index_grants", full_name) or {}
    return {
        "privilege_assignments": [
            {"principal": p, "privileges": sorted(v)} for p, v in sorted(held.items()) if v
        ]
    }


def _update_index(emu: Any, call: Call, full_name: str) -> dict[str, Any]:
    """Grants on an index: only its creator (the owner) changes them."""
    creator = (emu.state.get("indexes", full_name) or {}).get("creator")
    if creator != call.principal and not emu.forge.catalog.is_admin(call.principal):
        raise ApiError(
            "PERMISSION_DENIED", f"User '{call.principal}' is not an owner of index '{full_name}'."
        )
    held = {k: set(v) for k, v in (emu.state.get("index_grants", full_name) or {}).items()}
    for change in call.arg("changes") or []:
        who = change.get("principal") if isinstance(change, dict) else None
        if not who:
            raise bad_request("each change needs a 'principal'")
        for priv in change.get("add") or []:
            if priv not in ("SELECT", "MODIFY", "ALL_PRIVILEGES"):
                raise bad_request(f"privilege '{priv}' does not apply to an index; use SELECT or MODIFY")
            held.setdefault(who, set()).add(priv)
        held[who] = held.get(who, set()) - set(change.get("remove") or [])
    emu.state.put("index_grants", full_name, {k: sorted(v) for k, v in held.items() if v})
    return _index_assignments(emu, full_name)


@routes.add("GET", f"{UC}/permissions/{{securable_type}}/{{full_name}}")
def get_permissions(emu: Any, call: Call) -> dict[str, Any]:
    kind, full_name = _kind(call)
    if _index(emu, kind, full_name):
        return _index_assignments(emu, full_name)
    _securable(emu, call, full_name, kind)
    return _assignments(emu, full_name, kind, call.arg("principal"))


@routes.add("PATCH", f"{UC}/permissions/{{securable_type}}/{{full_name}}")
def update_permissions(emu: Any, call: Call) -> dict[str, Any]:
    kind, full_name = _kind(call)
    if _index(emu, kind, full_name):
        return _update_index(emu, call, full_name)
    _securable(emu, call, full_name, kind)
    cat = emu.forge.catalog
    if not cat.has_privilege(call.principal, "OWNER", full_name):
        raise ApiError(
            "PERMISSION_DENIED",
            f"User '{call.principal}' is not an owner of {kind} "
            f"'{full_name}' (or of its parents) and cannot change its grants.",
        )
    changes = call.arg("changes") or []
    plan = []
    for change in changes:  # validate every change before applying any
        who = change.get("principal") if isinstance(change, dict) else None
        if not who:
            raise bad_request("each change needs a 'principal'")
        for op in ("add", "remove"):
            for priv in change.get(op) or []:
                if priv not in _FROM_UC:
                    raise bad_request(f"privilege '{priv}' is not supported; use one of {sorted(_FROM_UC)}")
                plan.append((op, _FROM_UC[priv], who))
    acting = cat.as_user(call.principal)  # the catalog checks the caller again, as the API does
    for op, priv, who in plan:
        if op == "add":
            acting.grant(priv, full_name, who, granted_by=call.principal)
        else:
            acting.revoke(priv, full_name, who)
    return _assignments(emu, full_name, kind, None)
