"""Unity Catalog registered models (``/api/2.1/unity-catalog/models/...``) over the forge's
MLflow registry, the one the emulated training jobs register into: get a model, list and get
its versions, and set/get/delete aliases (``w.registered_models`` / ``w.model_versions``).

Setting an alias is the registry's promotion: the caller must manage the model, the
version's recorded gate must pass and the weights' lineage must allow it, as locally.
"""

from __future__ import annotations

from typing import Any

from llmforge_emulator.errors import ApiError, bad_request
from llmforge_emulator.routes import Call, Routes

MODELS = "/api/2.1/unity-catalog/models"
routes = Routes()


def _tracker(emu: Any, principal: str) -> Any:
    from llmforge.tracking import Tracker

    return Tracker(emu.forge.home, emu.forge.catalog.as_user(principal))


def _version_info(name: str, v: dict[str, Any]) -> dict[str, Any]:
    cat, schema, model = name.split(".")
    return {
        "model_name": name,
        "catalog_name": cat,
        "schema_name": schema,
        "version": int(v["version"]),
        "run_id": v["run_id"],
        "source": v["source"],
        "status": "READY",
        "aliases": [{"alias_name": a, "version_num": int(v["version"])} for a in v["aliases"]],
    }


def _versions(emu: Any, call: Call, name: str) -> list[dict[str, Any]]:
    if name.count(".") != 2:
        raise bad_request(f"'{name}' is not a Unity Catalog model name catalog.schema.model")
    return [_version_info(name, v) for v in _tracker(emu, call.principal).versions(name)]


@routes.add("GET", f"{MODELS}/{{full_name}}")
def get_model(emu: Any, call: Call) -> dict[str, Any]:
    name = call.path["full_name"]
    versions = _versions(emu, call, name)
    cat, schema, model = name.split(".")
    return {
        "full_name": name,
        "catalog_name": cat,
        "schema_name": schema,
        "name": model,
        "aliases": [a for v in versions for a in v["aliases"]],
    }


@routes.add("GET", f"{MODELS}/{{full_name}}/versions")
def list_versions(emu: Any, call: Call) -> dict[str, Any]:
    return {"model_versions": _versions(emu, call, call.path["full_name"])}


@routes.add("GET", f"{MODELS}/{{full_name}}/versions/{{version}}")
def get_version(emu: Any, call: Call) -> dict[str, Any]:
    name, version = call.path["full_name"], call.path["version"]
    for v in _versions(emu, call, name):
        if str(v["version"]) == version:
            return v
    raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Model version {name}/{version} does not exist.")


@routes.add("GET", f"{MODELS}/{{full_name}}/aliases/{{alias}}")
def get_by_alias(emu: Any, call: Call) -> dict[str, Any]:
    name, alias = call.path["full_name"], call.path["alias"]
    for v in _versions(emu, call, name):
        if any(a["alias_name"] == alias for a in v["aliases"]):
            return v
    raise ApiError("RESOURCE_DOES_NOT_EXIST", f"Alias {alias} does not exist on {name}.")


@routes.add("PUT", f"{MODELS}/{{full_name}}/aliases/{{alias}}")
def set_alias(emu: Any, call: Call) -> dict[str, Any]:
    name, alias = call.path["full_name"], call.path["alias"]
    version = call.required("version_num")
    _tracker(emu, call.principal).promote(name, str(version), alias)
    return {"alias_name": alias, "version_num": int(version)}
