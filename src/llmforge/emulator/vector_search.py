"""Vector Search REST (``/api/2.0/vector-search/...``) on top of the forge's local index.

Answers as the service does: describe carries ``status.ready``/``index_url``/``detailed_state``,
query rows are lists in manifest order with the score last, and every query on a delta-sync
index is ANDed with the caller's row filter on the source table.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llmforge.emulator.errors import ApiError, bad_request, not_found
from llmforge.emulator.routes import Call, Routes
from llmforge.emulator.serving import EMBEDDINGS
from llmforge.emulator.state import now_ms
from llmforge.errors import NotFoundError
from llmforge.vector_filters import and_filters, parse_filters

VS = "/api/2.0/vector-search"
ENDPOINT_TYPES = ("STANDARD", "STORAGE_OPTIMIZED")
INDEX_TYPES = ("DELTA_SYNC", "DIRECT_ACCESS")
MAX_RESULTS = 10_000

routes = Routes()


# ---- endpoints ---------------------------------------------------------------------------
# The local index keeps the endpoints; the emulator's state adds what only the service has
# (creator, timestamps, stopped/started, deleted).

def _endpoint(emu: Any, name: str) -> dict[str, Any]:
    extra = emu.state.get("endpoints", name) or {}
    if extra.get("deleted"):
        raise not_found("Vector search endpoint", name)
    try:
        local = emu.forge.vector_search.get_endpoint(name)
    except NotFoundError:
        raise not_found("Vector search endpoint", name) from None
    return {"name": name, "endpoint_type": local.get("endpoint_type", "STANDARD"),
            "id": hashlib.sha1(name.encode()).hexdigest()[:32],
            "endpoint_status": {"state": extra.get("state", "ONLINE")},
            "num_indexes": local.get("num_indexes", 0),
            **{k: extra[k] for k in ("creator", "creation_timestamp", "last_updated_timestamp",
                                     "scaling_info") if k in extra}}


@routes.add("POST", f"{VS}/endpoints")
def create_endpoint(emu: Any, call: Call) -> dict[str, Any]:
    name = call.required("name")
    etype = call.arg("endpoint_type", "STANDARD")
    if etype not in ENDPOINT_TYPES:
        raise bad_request(f"endpoint_type must be one of {list(ENDPOINT_TYPES)}, got '{etype}'")
    extra = emu.state.get("endpoints", name) or {}
    if not extra.get("deleted"):  # a deleted endpoint's local record is simply taken back
        emu.forge.vector_search.create_endpoint(name, endpoint_type=etype)
    ts = now_ms()
    extra = {"creator": call.principal, "creation_timestamp": ts, "last_updated_timestamp": ts}
    if call.arg("target_qps") is not None:
        extra["scaling_info"] = {"requested_target_qps": call.arg("target_qps")}
    emu.state.put("endpoints", name, extra)
    return _endpoint(emu, name)


@routes.add("GET", f"{VS}/endpoints")
def list_endpoints(emu: Any, call: Call) -> dict[str, Any]:
    names = [e["name"] for e in emu.forge.vector_search.list_endpoints()["endpoints"]]
    return {"endpoints": [_endpoint(emu, n) for n in sorted(names)
                          if not (emu.state.get("endpoints", n) or {}).get("deleted")]}


@routes.add("GET", f"{VS}/endpoints/{{name}}")
def get_endpoint(emu: Any, call: Call) -> dict[str, Any]:
    return _endpoint(emu, call.path["name"])


@routes.add("DELETE", f"{VS}/endpoints/{{name}}")
def delete_endpoint(emu: Any, call: Call) -> dict[str, Any]:
    ep = _endpoint(emu, call.path["name"])
    if ep["num_indexes"]:
        raise bad_request(f"Endpoint '{ep['name']}' still serves {ep['num_indexes']} index(es); "
                          f"delete them first.")
    emu.state.put("endpoints", ep["name"], {"deleted": True})
    return {}


def _set_state(emu: Any, name: str, state: str) -> dict[str, Any]:
    _endpoint(emu, name)
    extra = emu.state.get("endpoints", name) or {}
    emu.state.put("endpoints", name, {**extra, "state": state, "last_updated_timestamp": now_ms()})
    return _endpoint(emu, name)


@routes.add("POST", f"{VS}/endpoints/{{name}}/stop")
def stop_endpoint(emu: Any, call: Call) -> dict[str, Any]:
    return _set_state(emu, call.path["name"], "STOPPED")


@routes.add("POST", f"{VS}/endpoints/{{name}}/start")
def start_endpoint(emu: Any, call: Call) -> dict[str, Any]:
    return _set_state(emu, call.path["name"], "ONLINE")


@routes.add("GET", f"{VS}/endpoints/{{name}}/indexes", f"{VS}/indexes")
def list_indexes(emu: Any, call: Call) -> dict[str, Any]:
    """Indexes of one endpoint (path, or ``?endpoint_name=`` as the SDK sends it)."""
    name = _endpoint(emu, call.path.get("name") or call.required("endpoint_name"))["name"]
    return {"vector_indexes": [{**i, "creator": _creator(emu, i["name"])}
                               for i in emu.forge.vector_search.list_indexes(name)]}


# ---- indexes -------------------------------------------------------------------------------

def _creator(emu: Any, index: str) -> str:
    return (emu.state.get("indexes", index) or {}).get("creator") or emu.forge.user or "llmforge"


@routes.add("POST", f"{VS}/endpoints/{{endpoint_name}}/indexes", f"{VS}/indexes")
def create_index(emu: Any, call: Call) -> dict[str, Any]:
    ep_name = call.path.get("endpoint_name") or call.required("endpoint_name")
    ep = _endpoint(emu, ep_name)
    name, pk = call.required("name"), call.required("primary_key")
    itype = call.required("index_type")
    if itype not in INDEX_TYPES:
        raise bad_request(f"index_type must be one of {list(INDEX_TYPES)}, got '{itype}'")
    if len(name.split(".")) != 3 or not all(name.split(".")):
        raise bad_request(f"Index name '{name}' must be a Unity Catalog name catalog.schema.index")
    vs = emu.forge.vector_search
    if vs.index_exists(index_name=name):
        raise ApiError("RESOURCE_ALREADY_EXISTS", f"Index '{name}' already exists.")
    schema_name = name.rsplit(".", 1)[0]
    if emu.forge.catalog.exists(schema_name):  # an index is a table in its schema: creating needs MODIFY
        emu.forge.catalog.check(call.principal, "MODIFY", schema_name)
    spec_key = "delta_sync_index_spec" if itype == "DELTA_SYNC" else "direct_access_index_spec"
    spec = call.required(spec_key)
    if not isinstance(spec, dict):
        raise bad_request(f"{spec_key} must be an object")
    if itype == "DELTA_SYNC":
        source = spec.get("source_table") or ""
        emu.forge.catalog.check(call.principal, "SELECT", source)
        column, model = _embedding_source(emu, spec)
        # the local index runs the first sync on creation, as the service does
        vs.create_delta_sync_index(
            endpoint_name=ep["name"], source_table_name=source, index_name=name, primary_key=pk,
            embedding_source_column=column, pipeline_type=spec.get("pipeline_type", "TRIGGERED"),
            embedding_model_endpoint_name=model, columns_to_sync=spec.get("columns_to_sync"))
    else:
        vectors = spec.get("embedding_vector_columns") or []
        if len(vectors) != 1 or not vectors[0].get("name") or not vectors[0].get("embedding_dimension"):
            raise bad_request("direct_access_index_spec.embedding_vector_columns needs one "
                              "{name, embedding_dimension}")
        try:
            schema = json.loads(spec.get("schema_json") or "")
        except ValueError:
            raise bad_request("direct_access_index_spec.schema_json must be a JSON object string, "
                              'e.g. "{\\"id\\": \\"integer\\", \\"vec\\": \\"array<float>\\"}"') from None
        sources = spec.get("embedding_source_columns") or [{}]
        vs.create_direct_access_index(
            endpoint_name=ep["name"], index_name=name, primary_key=pk,
            embedding_dimension=int(vectors[0]["embedding_dimension"]),
            embedding_vector_column=vectors[0]["name"], schema=schema,
            embedding_model_endpoint_name=sources[0].get("embedding_model_endpoint_name"))
    emu.state.put("indexes", name, {"creator": call.principal})
    return _describe(emu, name)


def _embedding_source(emu: Any, spec: dict[str, Any]) -> tuple[str, str]:
    if spec.get("embedding_vector_columns"):
        raise ApiError("NOT_IMPLEMENTED", "The emulator builds delta-sync indexes from "
                       "embedding_source_columns (embeddings computed for you); self-managed "
                       "embedding_vector_columns are served by direct-access indexes here.")
    sources = spec.get("embedding_source_columns") or []
    if len(sources) != 1 or not sources[0].get("name"):
        raise bad_request("delta_sync_index_spec.embedding_source_columns needs one "
                          "{name, embedding_model_endpoint_name}")
    model = sources[0].get("embedding_model_endpoint_name")
    if not model or emu.serving.task(model) != EMBEDDINGS:
        raise bad_request(f"embedding_model_endpoint_name '{model}' is not an embeddings endpoint; "
                          f"served: {sorted(n for n, t in emu.serving.tasks.items() if t == EMBEDDINGS)}")
    return sources[0]["name"], model


def _handle(emu: Any, name: str, principal: str | None = None) -> Any:
    try:
        handle = emu.forge.vector_search.get_index(index_name=name)
    except NotFoundError:
        raise not_found("Index", name) from None
    # the local handle then applies the caller's row filter and column masks itself
    return handle.as_user(principal) if principal and hasattr(handle, "as_user") else handle


_FIELDS = ("name", "endpoint_name", "primary_key", "index_type", "delta_sync_index_spec",
           "direct_access_index_spec")


def _describe(emu: Any, name: str) -> dict[str, Any]:
    local = _handle(emu, name).describe()
    out = {k: local[k] for k in _FIELDS if k in local}
    delta = out["index_type"] == "DELTA_SYNC"
    if delta:
        out["delta_sync_index_spec"]["pipeline_id"] = hashlib.sha1(name.encode()).hexdigest()[:32]
    out["id"] = hashlib.sha1(f"index:{name}".encode()).hexdigest()
    out["creator"] = _creator(emu, name)
    out["status"] = {
        "ready": True,
        # both auth modes work: a PAT client ignores it, a service principal client uses it
        "index_url": f"{emu.base_url}{VS}/indexes/{name}",
        "detailed_state": "ONLINE_NO_PENDING_UPDATE" if delta else "ONLINE_DIRECT_ACCESS",
        "indexed_row_count": local.get("status", {}).get("indexed_row_count", 0),
        "message": "Index is ready.",
    }
    return out


@routes.add("GET", f"{VS}/indexes/{{name}}", f"{VS}/endpoints/{{endpoint_name}}/indexes/{{name}}")
def describe_index(emu: Any, call: Call) -> dict[str, Any]:
    return _describe(emu, call.path["name"])


@routes.add("DELETE", f"{VS}/indexes/{{name}}", f"{VS}/endpoints/{{endpoint_name}}/indexes/{{name}}")
def delete_index(emu: Any, call: Call) -> dict[str, Any]:
    name = call.path["name"]
    _handle(emu, name)
    _authorize(emu, call.principal, name, "MODIFY")
    emu.forge.vector_search.delete_index(index_name=name)
    emu.state.pop("indexes", name)
    return {}


@routes.add("POST", f"{VS}/indexes/{{name}}/sync")
def sync_index(emu: Any, call: Call) -> dict[str, Any]:
    handle = _handle(emu, call.path["name"])
    _authorize(emu, call.principal, call.path["name"], "MODIFY")
    handle.sync()
    return {}


# ---- data plane ----------------------------------------------------------------------------

def _authorize(emu: Any, principal: str, name: str, privilege: str) -> None:
    """``privilege`` on an index: its creator holds all; others need it on the index's schema
    (Unity Catalog grants are secure by default, so an unknown schema admits only the creator)."""
    if _creator(emu, name) == principal:
        return
    schema = name.rsplit(".", 1)[0]
    cat = emu.forge.catalog
    if not (cat.exists(schema) and cat.has_privilege(principal, privilege, schema)):
        raise ApiError("PERMISSION_DENIED", f"User '{principal}' lacks {privilege} on index '{name}'; "
                       f"ask the owner of schema '{schema}' to grant {privilege} on it.")


def _target(emu: Any, call: Call, privilege: str = "SELECT") -> tuple[Any, dict[str, Any]]:
    """The index handle acting for the caller, and its description, once the caller may use
    it for ``privilege``; the endpoint must be ONLINE."""
    name = call.path["name"]
    info = _handle(emu, name).describe()
    if privilege == "MODIFY" or info["index_type"] != "DELTA_SYNC":
        _authorize(emu, call.principal, name, privilege)  # delta-sync reads check the source table
    state = _endpoint(emu, info["endpoint_name"])["endpoint_status"]["state"]
    if state != "ONLINE":
        raise bad_request(f"Endpoint '{info['endpoint_name']}' is {state}; start it with start_endpoint.")
    return _handle(emu, name, call.principal), info


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
    return handle.similarity_search(
        columns=columns, query_text=call.arg("query_text"), query_vector=call.arg("query_vector"),
        filters=filters, num_results=num, score_threshold=call.arg("score_threshold"),
        query_type=call.arg("query_type"))


@routes.add("GET", f"{VS}/indexes/{{name}}/scan")
@routes.add("POST", f"{VS}/indexes/{{name}}/scan")
def scan(emu: Any, call: Call) -> dict[str, Any]:
    handle, _ = _target(emu, call)
    return handle.scan(num_results=_int_arg(call, "num_results", 10),
                       last_primary_key=call.arg("last_primary_key"))


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
            raise bad_request(f"primary key '{info['primary_key']}' is an integer column; "
                              f"got {keys}") from None
    return _result(handle.delete(keys))
