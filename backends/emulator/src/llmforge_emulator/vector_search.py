"""Vector Search REST control plane (``/api/2.0/vector-search/...``: endpoints, index create,
describe, sync, delete, grants checks) on top of the forge's local index; the data plane
(query, scan, upsert, delete rows) is :mod:`llmforge_emulator.vector_search_data`.

Answers as the service does: describe carries ``status.ready``/``index_url``/``detailed_state``,
a delta-sync index without ``columns_to_sync`` syncs every source column, and an index looked
up under another endpoint's name does not exist.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from llmforge.errors import NotFoundError
from llmforge_emulator.errors import ApiError, bad_request, not_found
from llmforge_emulator.routes import Call, Routes
from llmforge_emulator.serving import EMBEDDINGS
from llmforge_emulator.state import now_ms

VS = "/api/2.0/vector-search"
ENDPOINT_TYPES = ("STANDARD", "STORAGE_OPTIMIZED")
INDEX_TYPES = ("DELTA_SYNC", "DIRECT_ACCESS")
MAX_RESULTS = 10_000

routes = Routes()


# ---- endpoints ---------------------------------------------------------------------------
# The local index keeps the endpoints; the emulator's state adds what only the service has
# (creator, timestamps, stopped/started, deleted).


def endpoint_info(emu: Any, name: str) -> dict[str, Any]:
    extra = emu.state.get("endpoints", name) or {}
    if extra.get("deleted"):
        raise not_found("Vector search endpoint", name)
    try:
        local = emu.forge.vector_search.get_endpoint(name)
    except NotFoundError:
        raise not_found("Vector search endpoint", name) from None
    return {
        "name": name,
        "endpoint_type": local.get("endpoint_type", "STANDARD"),
        "id": hashlib.sha1(name.encode()).hexdigest()[:32],
        "endpoint_status": {"state": extra.get("state", "ONLINE")},
        "num_indexes": local.get("num_indexes", 0),
        **{
            k: extra[k]
            for k in ("creator", "creation_timestamp", "last_updated_timestamp", "scaling_info")
            if k in extra
        },
    }


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
    return endpoint_info(emu, name)


@routes.add("GET", f"{VS}/endpoints")
def list_endpoints(emu: Any, call: Call) -> dict[str, Any]:
    names = [e["name"] for e in emu.forge.vector_search.list_endpoints()["endpoints"]]
    return {
        "endpoints": [
            endpoint_info(emu, n)
            for n in sorted(names)
            if not (emu.state.get("endpoints", n) or {}).get("deleted")
        ]
    }


@routes.add("GET", f"{VS}/endpoints/{{name}}")
def get_endpoint(emu: Any, call: Call) -> dict[str, Any]:
    return endpoint_info(emu, call.path["name"])


@routes.add("DELETE", f"{VS}/endpoints/{{name}}")
def delete_endpoint(emu: Any, call: Call) -> dict[str, Any]:
    ep = endpoint_info(emu, call.path["name"])
    if ep["num_indexes"]:
        raise bad_request(
            f"Endpoint '{ep['name']}' still serves {ep['num_indexes']} index(es); delete them first."
        )
    emu.state.put("endpoints", ep["name"], {"deleted": True})
    return {}


def _set_state(emu: Any, name: str, state: str) -> dict[str, Any]:
    endpoint_info(emu, name)
    extra = emu.state.get("endpoints", name) or {}
    emu.state.put("endpoints", name, {**extra, "state": state, "last_updated_timestamp": now_ms()})
    return endpoint_info(emu, name)


@routes.add("POST", f"{VS}/endpoints/{{name}}/stop")
def stop_endpoint(emu: Any, call: Call) -> dict[str, Any]:
    return _set_state(emu, call.path["name"], "STOPPED")


@routes.add("POST", f"{VS}/endpoints/{{name}}/start")
def start_endpoint(emu: Any, call: Call) -> dict[str, Any]:
    return _set_state(emu, call.path["name"], "ONLINE")


@routes.add("GET", f"{VS}/endpoints/{{name}}/indexes", f"{VS}/indexes")
def list_indexes(emu: Any, call: Call) -> dict[str, Any]:
    """Indexes of one endpoint (path, or ``?endpoint_name=`` as the SDK sends it)."""
    name = endpoint_info(emu, call.path.get("name") or call.required("endpoint_name"))["name"]
    return {
        "vector_indexes": [
            {**i, "creator": _creator(emu, i["name"])} for i in emu.forge.vector_search.list_indexes(name)
        ]
    }


# ---- indexes -------------------------------------------------------------------------------


def _creator(emu: Any, index: str) -> str:
    return (emu.state.get("indexes", index) or {}).get("creator") or emu.forge.user or "llmforge"


@routes.add("POST", f"{VS}/endpoints/{{endpoint_name}}/indexes", f"{VS}/indexes")
def create_index(emu: Any, call: Call) -> dict[str, Any]:
    ep_name = call.path.get("endpoint_name") or call.required("endpoint_name")
    ep = endpoint_info(emu, ep_name)
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
        # without columns_to_sync the service syncs every column of the source table
        columns = spec.get("columns_to_sync") or emu.forge.catalog.columns(source)
        # the local index runs the first sync on creation, as the service does
        vs.create_delta_sync_index(
            endpoint_name=ep["name"],
            source_table_name=source,
            index_name=name,
            primary_key=pk,
            embedding_source_column=column,
            pipeline_type=spec.get("pipeline_type", "TRIGGERED"),
            embedding_model_endpoint_name=model,
            columns_to_sync=columns,
        )
    else:
        vectors = spec.get("embedding_vector_columns") or []
        if len(vectors) != 1 or not vectors[0].get("name") or not vectors[0].get("embedding_dimension"):
            raise bad_request(
                "direct_access_index_spec.embedding_vector_columns needs one {name, embedding_dimension}"
            )
        try:
            schema = json.loads(spec.get("schema_json") or "")
        except ValueError:
            raise bad_request(
                "direct_access_index_spec.schema_json must be a JSON object string, "
                'e.g. "{\\"id\\": \\"integer\\", \\"vec\\": \\"array<float>\\"}"'
            ) from None
        sources = spec.get("embedding_source_columns") or [{}]
        vs.create_direct_access_index(
            endpoint_name=ep["name"],
            index_name=name,
            primary_key=pk,
            embedding_dimension=int(vectors[0]["embedding_dimension"]),
            embedding_vector_column=vectors[0]["name"],
            schema=schema,
            embedding_model_endpoint_name=sources[0].get("embedding_model_endpoint_name"),
        )
    emu.state.put("indexes", name, {"creator": call.principal})
    return _describe(emu, name)


def _embedding_source(emu: Any, spec: dict[str, Any]) -> tuple[str, str]:
    if spec.get("embedding_vector_columns"):
        raise ApiError(
            "NOT_IMPLEMENTED",
            "The emulator builds delta-sync indexes from "
            "embedding_source_columns (embeddings computed for you); self-managed "
            "embedding_vector_columns are served by direct-access indexes here.",
        )
    sources = spec.get("embedding_source_columns") or []
    if len(sources) != 1 or not sources[0].get("name"):
        raise bad_request(
            "delta_sync_index_spec.embedding_source_columns needs one {name, embedding_model_endpoint_name}"
        )
    model = sources[0].get("embedding_model_endpoint_name")
    if not model or emu.serving.task(model) != EMBEDDINGS:
        raise bad_request(
            f"embedding_model_endpoint_name '{model}' is not an embeddings endpoint; "
            f"served: {sorted(n for n, t in emu.serving.tasks.items() if t == EMBEDDINGS)}"
        )
    return sources[0]["name"], model


def index_handle(emu: Any, name: str, principal: str | None = None) -> Any:
    try:
        handle = emu.forge.vector_search.get_index(index_name=name)
    except NotFoundError:
        raise not_found("Index", name) from None
    # the local handle then applies the caller's row filter and column masks itself
    return handle.as_user(principal) if principal and hasattr(handle, "as_user") else handle


_FIELDS = (
    "name",
    "endpoint_name",
    "primary_key",
    "index_type",
    "delta_sync_index_spec",
    "direct_access_index_spec",
)


def _describe(emu: Any, name: str) -> dict[str, Any]:
    local = index_handle(emu, name).describe()
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
    out = _describe(emu, call.path["name"])
    asked = call.path.get("endpoint_name")
    if asked and asked != out["endpoint_name"]:  # the service looks the index up under that endpoint
        raise not_found("Index", f"{call.path['name']}' on endpoint '{asked}")
    return out


@routes.add("DELETE", f"{VS}/indexes/{{name}}", f"{VS}/endpoints/{{endpoint_name}}/indexes/{{name}}")
def delete_index(emu: Any, call: Call) -> dict[str, Any]:
    name = call.path["name"]
    index_handle(emu, name)
    authorize(emu, call.principal, name, "MODIFY")
    emu.forge.vector_search.delete_index(index_name=name)
    emu.state.pop("indexes", name)
    return {}


@routes.add("POST", f"{VS}/indexes/{{name}}/sync")
def sync_index(emu: Any, call: Call) -> dict[str, Any]:
    handle = index_handle(emu, call.path["name"])
    authorize(emu, call.principal, call.path["name"], "MODIFY")
    handle.sync()
    return {}


# ---- data plane ----------------------------------------------------------------------------


def authorize(emu: Any, principal: str, name: str, privilege: str) -> None:
    """``privilege`` on an index: its creator holds all; others need it granted on the index
    (permissions API) or on its schema (Unity Catalog grants are secure by default, so an
    unknown schema admits only the creator)."""
    if _creator(emu, name) == principal:
        return
    schema = name.rsplit(".", 1)[0]
    cat = emu.forge.catalog
    held = emu.state.get("index_grants", name) or {}
    mine = {p for who in cat.principal(principal).identities for p in held.get(who, [])}
    if privilege in mine or "ALL_PRIVILEGES" in mine:
        return
    if not (cat.exists(schema) and cat.has_privilege(principal, privilege, schema)):
        raise ApiError(
            "PERMISSION_DENIED",
            f"User '{principal}' lacks {privilege} on index '{name}'; "
            f"ask the owner of schema '{schema}' to grant {privilege} on it.",
        )
