"""Unity Catalog governance statements, executed into the emulator's catalog:

- ``CREATE [OR REPLACE] FUNCTION f(col TYPE) RETURNS T RETURN <body>`` for the row filter and
  column mask bodies :mod:`llmforge.catalog.unity` renders (group tests with
  ``is_account_group_member``; a department ``d`` is the account group ``dept_d``)
- ``ALTER TABLE t SET ROW FILTER f ON (col)`` / ``DROP ROW FILTER``
- ``ALTER TABLE t ALTER COLUMN c SET MASK f`` / ``DROP MASK``
- ``ALTER TABLE t SET TBLPROPERTIES ('k' = 'v', ...)``

A function body is read back into the catalog's declarative spec, so reads, searches and
answers through the emulator enforce it exactly as the local catalog does; a body of any
other shape is refused (the emulator does not evaluate arbitrary SQL). Functions, the
function bound to each filter or mask, and table properties are kept in the emulator's state.
"""

from __future__ import annotations

import re
from typing import Any

from llmforge_emulator.errors import ApiError, bad_request
from llmforge_emulator.routes import Call
from llmforge_emulator.sql import NAME, affected, unquote

DEPARTMENT_PREFIX = "dept_"
_LIT = r"'(?:[^'\\]|\\.)*'"
_FN = r"(?P<fn>`?\w+`?\.`?\w+`?\.`?\w+`?)"
_CREATE_FN = re.compile(
    rf"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+{_FN}\s*\(\s*`?(?P<param>\w+)`?\s+(?P<ptype>\w+)\s*\)\s*"
    r"RETURNS\s+(?P<returns>\w+)\s+RETURN\s+(?P<body>.+?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SET_FILTER = re.compile(
    rf"^\s*ALTER\s+TABLE\s+{NAME}\s+SET\s+ROW\s+FILTER\s+{_FN}\s+ON\s*\(\s*`?(?P<col>\w+)`?\s*\)\s*;?\s*$",
    re.I,
)
_DROP_FILTER = re.compile(rf"^\s*ALTER\s+TABLE\s+{NAME}\s+DROP\s+ROW\s+FILTER\s*;?\s*$", re.I)
_SET_MASK = re.compile(
    rf"^\s*ALTER\s+TABLE\s+{NAME}\s+ALTER\s+COLUMN\s+`?(?P<col>\w+)`?\s+SET\s+MASK\s+{_FN}\s*;?\s*$", re.I
)
_DROP_MASK = re.compile(
    rf"^\s*ALTER\s+TABLE\s+{NAME}\s+ALTER\s+COLUMN\s+`?(?P<col>\w+)`?\s+DROP\s+MASK\s*;?\s*$", re.I
)
_PROPS = re.compile(
    rf"^\s*ALTER\s+TABLE\s+{NAME}\s+SET\s+TBLPROPERTIES\s*\((?P<props>.*)\)\s*;?\s*$", re.I | re.DOTALL
)
_UNSET = re.compile(
    rf"^\s*ALTER\s+TABLE\s+{NAME}\s+UNSET\s+TBLPROPERTIES\s+(?:IF\s+EXISTS\s+)?\((?P<keys>.*)\)\s*;?\s*$",
    re.I | re.S,
)
_PROP = re.compile(rf"\s*(?P<k>{_LIT})\s*=\s*(?P<v>{_LIT})\s*(?:,|$)")
_MEMBER = rf"is_account_group_member\((?P<g>{_LIT})\)"
_TERMS = (
    ("exempt", re.compile(_MEMBER, re.I)),
    ("visible", re.compile(r"`(?P<c>\w+)`\s+IN\s+\((?P<vals>.*?)\)", re.I)),
    ("department", re.compile(rf"is_account_group_member\(concat\((?P<p>{_LIT}),\s*`(?P<c>\w+)`\)\)", re.I)),
    ("group", re.compile(r"is_account_group_member\(`(?P<c>\w+)`\)", re.I)),
    ("user", re.compile(r"`(?P<c>\w+)`\s*=\s*current_user\(\)", re.I)),
)
_EXEMPT_CASE = re.compile(
    rf"^CASE\s+WHEN\s+(?P<ex>{_MEMBER.replace('(?P<g>', '(?:')}(?:\s+OR\s+{_MEMBER.replace('(?P<g>', '(?:')})*)"
    r"\s+THEN\s+`\w+`\s+ELSE\s+(?P<m>.+)\s+END$",
    re.I | re.DOTALL,
)
_MASKS = (
    ("null", re.compile(r"^CAST\(NULL\s+AS\s+\w+\)$", re.I)),
    (
        "redact",
        re.compile(rf"^CASE\s+WHEN\s+`\w+`\s+IS\s+NULL\s+THEN\s+NULL\s+ELSE\s+(?P<r>{_LIT})\s+END$", re.I),
    ),
    ("hash", re.compile(r"^sha2\(CAST\(`\w+`\s+AS\s+STRING\),\s*256\)$", re.I)),
)


def _unlit(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _unsupported(body: str) -> ApiError:
    return ApiError(
        "NOT_IMPLEMENTED",
        f"The emulator evaluates row filter and mask functions in the shapes llmforge renders "
        f"(llmforge.catalog.unity); this body is not one: {body[:200]}",
    )


def _row_filter_spec(body: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"always_visible": [], "exempt_groups": []}
    for term in re.split(r"\s+OR\s+(?=(?:[^']*'[^']*')*[^']*$)", body.strip()):
        hits = [(k, p.fullmatch(term.strip())) for k, p in _TERMS]
        kind, m = next(((k, hit) for k, hit in hits if hit), (None, None))
        if m is None:
            raise _unsupported(body)
        if kind == "exempt":
            spec["exempt_groups"].append(_unlit(m["g"]))
        elif kind == "visible":
            spec["always_visible"] += [_unlit(v) for v in re.findall(_LIT, m["vals"])]
        else:
            if "type" in spec or (kind == "department" and _unlit(m["p"]) != DEPARTMENT_PREFIX):
                raise _unsupported(body)
            spec["type"] = {"department": "department_membership", "group": "group_membership"}.get(
                kind, "current_user"
            )
    if "type" not in spec:
        raise _unsupported(body)
    return spec


def _mask_spec(body: str) -> dict[str, Any]:
    body, exempt = body.strip(), []
    m = _EXEMPT_CASE.match(body)
    if m:
        exempt = [_unlit(g) for g in re.findall(_LIT, m["ex"])]
        body = m["m"].strip()
    for kind, pattern in _MASKS:
        hit = pattern.match(body)
        if hit:
            spec: dict[str, Any] = {"type": kind, "except_groups": exempt}
            if kind == "redact":
                spec["replacement"] = _unlit(hit["r"])
            return spec
    raise _unsupported(body)


def _acting(emu: Any, call: Call, full_name: str) -> Any:
    cat = emu.forge.catalog
    if not cat.exists(full_name):
        raise ApiError("TABLE_OR_VIEW_NOT_FOUND", f"Table {full_name} does not exist.", 404)
    return cat.as_user(call.principal)  # the catalog checks ownership, as UC does


def _create_function(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    name = unquote(m["fn"])
    schema = name.rsplit(".", 1)[0]
    cat = emu.forge.catalog
    if not cat.exists(schema):
        raise ApiError("SCHEMA_NOT_FOUND", f"Schema {schema} does not exist.", 404)
    if not (
        cat.has_privilege(call.principal, "OWNER", schema)
        or cat.has_privilege(call.principal, "MODIFY", schema)
    ):
        raise ApiError("PERMISSION_DENIED", f"User '{call.principal}' may not create functions in {schema}.")
    boolean = m["returns"].upper() == "BOOLEAN"
    spec = _row_filter_spec(m["body"]) if boolean else _mask_spec(m["body"])
    emu.state.put(
        "functions",
        name,
        {"kind": "row_filter" if boolean else "mask", "spec": spec, "param": m["param"], "body": m["body"]},
    )
    return affected(0)


def _function(emu: Any, raw: str, kind: str) -> dict[str, Any]:
    fn = emu.state.get("functions", unquote(raw))
    if fn is None:
        raise ApiError("ROUTINE_NOT_FOUND", f"The function {unquote(raw)} cannot be found.", 404)
    if fn["kind"] != kind:
        raise bad_request(f"{unquote(raw)} is not a {kind.replace('_', ' ')} function.")
    return fn


def _bound(emu: Any, table: str) -> dict[str, Any]:
    return emu.state.get("policies", table) or {"row_filter": None, "masks": {}}


def _set_filter(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    table = unquote(m["table"])
    fn = _function(emu, m["fn"], "row_filter")
    _acting(emu, call, table).set_row_filter(table, {**fn["spec"], "column": m["col"]})
    emu.state.put("policies", table, {**_bound(emu, table), "row_filter": [unquote(m["fn"]), m["col"]]})
    return affected(0)


def _drop_filter(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    table = unquote(m["table"])
    _acting(emu, call, table).set_row_filter(table, None)
    emu.state.put("policies", table, {**_bound(emu, table), "row_filter": None})
    return affected(0)


def _set_mask(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    table = unquote(m["table"])
    fn = _function(emu, m["fn"], "mask")
    _acting(emu, call, table).set_column_mask(table, m["col"], fn["spec"])
    bound = _bound(emu, table)
    emu.state.put("policies", table, {**bound, "masks": {**bound["masks"], m["col"]: unquote(m["fn"])}})
    return affected(0)


def _drop_mask(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    table = unquote(m["table"])
    _acting(emu, call, table).set_column_mask(table, m["col"], None)
    bound = _bound(emu, table)
    emu.state.put(
        "policies", table, {**bound, "masks": {c: f for c, f in bound["masks"].items() if c != m["col"]}}
    )
    return affected(0)


def _set_properties(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    table = unquote(m["table"])
    _acting(emu, call, table)
    if not emu.forge.catalog.has_privilege(call.principal, "OWNER", table):
        raise ApiError("PERMISSION_DENIED", f"User '{call.principal}' is not an owner of table '{table}'.")
    text, props, pos = m["props"], {}, 0
    while pos < len(text.rstrip()):
        p = _PROP.match(text, pos)
        if not p:
            raise bad_request(f"[PARSE_SYNTAX_ERROR] TBLPROPERTIES takes 'key' = 'value' pairs: {text[:100]}")
        props[_unlit(p["k"])] = _unlit(p["v"])
        pos = p.end()
    emu.state.put("table_properties", table, {**(emu.state.get("table_properties", table) or {}), **props})
    return affected(0)


def _unset_properties(emu: Any, call: Call, m: re.Match) -> dict[str, Any]:
    table = unquote(m["table"])
    _acting(emu, call, table)
    if not emu.forge.catalog.has_privilege(call.principal, "OWNER", table):
        raise ApiError("PERMISSION_DENIED", f"User '{call.principal}' is not an owner of table '{table}'.")
    keys = {_unlit(k) for k in re.findall(_LIT, m["keys"])}
    props = emu.state.get("table_properties", table) or {}
    emu.state.put("table_properties", table, {k: v for k, v in props.items() if k not in keys})
    return affected(0)


def table_policies(emu: Any, table: str) -> dict[str, Any]:
    """What ``TableInfo`` reports: the bound functions (default names when a policy was set
    on the catalog directly) and the table properties (the llmforge specs included)."""
    import json

    cat = emu.forge.catalog
    bound = _bound(emu, table)
    props = dict(emu.state.get("table_properties", table) or {})
    spec = cat.row_filter(table)
    row_filter = None
    if spec:
        fn, col = bound["row_filter"] or (f"{table}_row_filter", spec["column"])
        row_filter = {"function_name": fn, "input_column_names": [col]}
        props.setdefault("llmforge.row_filter", json.dumps(spec, sort_keys=True))
    masks = {c: bound["masks"].get(c, f"{table}_{c}_mask") for c in cat.column_masks(table)}
    if masks:
        props.setdefault("llmforge.column_masks", json.dumps(cat.column_masks(table), sort_keys=True))
    return {"row_filter": row_filter, "masks": masks, "properties": props}


STATEMENTS = (
    (_CREATE_FN, _create_function),
    (_SET_FILTER, _set_filter),
    (_DROP_FILTER, _drop_filter),
    (_SET_MASK, _set_mask),
    (_DROP_MASK, _drop_mask),
    (_PROPS, _set_properties),
    (_UNSET, _unset_properties),
)
