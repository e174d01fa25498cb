"""Vector Search data plane (``/api/2.0/vector-search/indexes/{name}/...``): query, scan,
upsert and delete rows, each acting for the caller through the local index handle.

A query needs SELECT on the index and on a delta-sync index's source table, whose row filter
for the caller is always ANDed in; scores are never negative and the threshold defaults to
0.0, as the service documents; long results come back in pages (:mod:`.vector_search_pages`).
"""

from __future__ import annotations

import json
from typing import Any

from llmforge.vector_filters import and_filters, parse_filters
from llmforge_emulator import vector_search_pages as pages
from llmforge_emulator.errors import ApiError, bad_request
from llmforge_emulator.routes import Call, Routes
from llmforge_emulator.vector_search import VS, authorize, endpoint_info, index_handle

MAX_RESULTS = 10_000
routes = Routes()


def _target(emu: Any, call: Call, privilege: str = "SELECT") -> tuple[Any, dict[str, Any]]:
    """The index handle acting for the caller, and its description, once the caller may use
    it for ``privilege``; the endpoint must be ONLINE."""
    name = call.path["name"]
    info = index_handle(emu, name).describe()
    authorize(emu, call.principal, name, privilege)  # delta-sync reads also check the source table
    state = endpoint_info(emu, info["endpoint_name"])["endpoint_status"]["state"]
    if state != "ONLINE":
        raise bad_request(f"Endpoint '{info['endpoint_name']}' is {state}; start it with start_endpoint.")
    return index_handle(emu, name, call.principal), info


def _filters(call: Call) -> Any:
    """The request's filter: ``filters_json`` (dict syntax) or ``filter_string`` (SQL-ish)."""
    raw, text = call.arg("filters_json"), call.arg("filter_string")
    if raw and text:
        raise bad_request("Send filters_json or filter_string, not both.")
    if raw:
        try:
            spec = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as exc:
            raise bad_request(f"filters_json is not valid JSON: {exc}") from None
    else:
        spec = text or None
    parse_filters(spec)  # malformed keys fail here as INVALID_PARAMETER_VALUE
    return spec


def _int_arg(call: Call, name: str, default: int) -> int:
    value = call.arg(name, default)
    value = int(value) if isinstance(value, str) and value.isdigit() else value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RESULTS:
        raise bad_request(f"{name} must be an integer between 1 and {MAX_RESULTS}, got {value!r}")
    return value


@routes.add("GET", f"{VS}/indexes/{{name}}/query")
@routes.add("POST", f"{VS}/indexes/{{name}}/query")
def query(emu: Any, call: Call) -> dict[str, Any]:
    handle, info = _target(emu, call)
    columns = call.arg("columns")
    if not columns or not isinstance(columns, list):
        raise bad_request("columns is required: the list of index columns to return.")
    num = _int_arg(call, "num_results", 10)
    unsupported = [k for k in ("reranker", "query_columns", "sort_columns", "facets") if call.arg(k)]
    if unsupported:  # refusing beats silently ranking differently from the service
        raise ApiError("NOT_IMPLEMENTED", f"The emulator does not support {unsupported} in queries.")
    if not call.arg("query_text") and not call.arg("query_vector"):
        raise bad_request("Send query_text or query_vector.")
    filters = _filters(call)
    if info["index_type"] == "DELTA_SYNC":
        # The caller's row filter on the source table always applies: a request narrows, never widens.
        source = info["delta_sync_index_spec"]["source_table"]
        emu.forge.catalog.check(call.principal, "SELECT", source)
        filters = and_filters(filters, emu.forge.catalog.row_filter_for(source, call.principal))
    # scores are never negative and the documented default threshold is 0.0
    threshold = call.arg("score_threshold")
    res = handle.similarity_search(
        columns=columns,
        query_text=call.arg("query_text"),
        query_vector=call.arg("query_vector"),
        filters=filters,
        num_results=num,
        score_threshold=max(float(threshold), 0.0) if threshold is not None else 0.0,
        query_type=call.arg("query_type"),
    )
    for row in res["result"].get("data_array") or []:
        row[-1] = max(float(row[-1]), 0.0)
    return pages.first(emu, call, res)


@routes.add("GET", f"{VS}/indexes/{{name}}/scan")
@routes.add("POST", f"{VS}/indexes/{{name}}/scan")
def scan(emu: Any, call: Call) -> dict[str, Any]:
    handle, _ = _target(emu, call)
    return handle.scan(
        num_results=_int_arg(call, "num_results", 10), last_primary_key=call.arg("last_primary_key")
    )


def _result(local: dict[str, Any]) -> dict[str, Any]:
    return {"status": local["status"], "result": local["result"]}


@routes.add("POST", f"{VS}/indexes/{{name}}/upsert-data")
def upsert(emu: Any, call: Call) -> dict[str, Any]:
    handle, _ = _target(emu, call, "MODIFY")
    try:
        rows = json.loads(call.required("inputs_json"))
    except (TypeError, ValueError) as exc:
        raise bad_request(f"inputs_json must be a JSON list of row objects: {exc}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise bad_request("inputs_json must encode a list of row objects")
    return _result(handle.upsert(rows))


@routes.add("DELETE", f"{VS}/indexes/{{name}}/delete-data")
def delete_data(emu: Any, call: Call) -> dict[str, Any]:
    handle, info = _target(emu, call, "MODIFY")
    keys = call.required("primary_keys")
    keys = list(keys) if isinstance(keys, list) else [keys]
    schema = json.loads(info.get("direct_access_index_spec", {}).get("schema_json") or "{}")
    if str(schema.get(info["primary_key"], "")).lower() in ("integer", "int", "long", "bigint"):
        # the SDK sends keys as query parameters, i.e. strings
        try:
            keys = [int(k) for k in keys]
        except ValueError:
            raise bad_request(
                f"primary key '{info['primary_key']}' is an integer column; got {keys}"
            ) from None
    return _result(handle.delete(keys))
