"""Serving endpoints created through the API (``POST /api/2.0/serving-endpoints``, as
``w.serving_endpoints.create`` sends it) for a Unity Catalog model version: the endpoint is
served by the local generator with that version's adapter (on the base model it was trained
on), and answers chat (``messages``) and completions (``prompt``). ``DELETE`` removes it.
Created endpoints live for the emulator's life.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from llmforge_emulator.errors import ApiError, bad_request
from llmforge_emulator.routes import Call, Routes
from llmforge_emulator.serving import CHAT

routes = Routes()
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _generator(emu: Any, uri: str) -> Any:
    try:
        from llmforge_local.generate import LocalGenerator
    except ImportError:
        raise ApiError("NOT_IMPLEMENTED", "model versions are served by the local backend") from None
    base = getattr(emu.forge.generator.options, "model", None)
    options = LocalGenerator.Options(adapter=uri, **({"model": base} if base else {}))
    gen = LocalGenerator(emu.forge, options)
    gen.source  # resolve now: a missing version fails the create, not the first query  # noqa: B018
    return gen


@routes.add("POST", "/api/2.0/serving-endpoints")
def create(emu: Any, call: Call) -> dict[str, Any]:
    name = call.required("name")
    if not set(name) <= _NAME_CHARS or len(name) > 63:
        raise bad_request(f"Endpoint name '{name}' may use only letters, digits, '-' and '_' (63 at most).")
    if name in emu.serving.tasks:
        raise ApiError("RESOURCE_ALREADY_EXISTS", f"Endpoint with name '{name}' already exists.")
    entities = (call.arg("config") or {}).get("served_entities") or []
    if len(entities) != 1:
        raise ApiError("NOT_IMPLEMENTED", "The emulator serves one served entity per endpoint.")
    entity = entities[0]
    model, version = entity.get("entity_name") or "", str(entity.get("entity_version") or "")
    if model.count(".") != 2 or not version:
        raise bad_request(
            "served_entities[0] must name a Unity Catalog model version: entity_name catalog.schema.model "
            "and entity_version"
        )
    uri = f"models:/{model}/{version}"
    try:
        gen = _generator(emu, uri)
    except Exception as exc:
        raise ApiError(
            "RESOURCE_DOES_NOT_EXIST", f"Model version {model}/{version} cannot be served: {exc}"
        ) from None
    now = int(time.time() * 1000)
    served = {
        "name": entity.get("name") or f"{model.split('.')[-1]}-{version}",
        "entity_name": model,
        "entity_version": version,
        "workload_size": entity.get("workload_size", "Small"),
        "scale_to_zero_enabled": bool(entity.get("scale_to_zero_enabled", False)),
        "state": {"deployment": "DEPLOYMENT_READY"},
    }
    info = {
        "name": name,
        "id": hashlib.sha1(name.encode()).hexdigest()[:32],
        "task": CHAT,
        "creator": call.principal,
        "creation_timestamp": now,
        "last_updated_timestamp": now,
        "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
        "route_optimized": False,
        "config": {
            "served_entities": [served],
            "traffic_config": {"routes": [{"served_model_name": served["name"], "traffic_percentage": 100}]},
        },
        "tags": call.arg("tags") or [],
    }
    emu.serving.created[name] = (info, gen)
    emu.serving.tasks[name] = CHAT
    return info


@routes.add("DELETE", "/api/2.0/serving-endpoints/{name}")
def delete(emu: Any, call: Call) -> dict[str, Any]:
    name = call.path["name"]
    if name not in emu.serving.created:
        emu.serving.task(name)  # 404 for an unknown name
        raise ApiError("PERMISSION_DENIED", f"Endpoint '{name}' is a Foundation Model API endpoint.")
    if emu.serving.created[name][0]["creator"] != call.principal:
        raise ApiError("PERMISSION_DENIED", f"User '{call.principal}' cannot delete endpoint '{name}'.")
    del emu.serving.created[name]
    del emu.serving.tasks[name]
    return {}
