"""Model Serving: endpoint lookup (``/api/2.0/serving-endpoints``) and invocations
(``/serving-endpoints/{name}/invocations``), chat through the forge's generator and
embeddings through the local embedding model."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Mapping
from typing import Any

from llmforge.emulator.errors import ApiError, bad_request
from llmforge.emulator.routes import Call, Reply, Routes

CHAT = "llm/v1/chat"
EMBEDDINGS = "llm/v1/embeddings"

#: Foundation Model API names the seed and the Databricks docs use, served locally.
DEFAULT_ENDPOINTS = {
    "databricks-gte-large-en": EMBEDDINGS,
    "databricks-bge-large-en": EMBEDDINGS,
    "databricks-meta-llama-3-3-70b-instruct": CHAT,
    "databricks-meta-llama-3-1-8b-instruct": CHAT,
}

routes = Routes()


class ServingEndpoints:
    """Name -> task of the endpoints the emulator serves."""

    def __init__(self, endpoints: Mapping[str, str] | None = None) -> None:
        self.tasks = dict(DEFAULT_ENDPOINTS if endpoints is None else endpoints)
        bad = {n: t for n, t in self.tasks.items() if t not in (CHAT, EMBEDDINGS)}
        if bad:
            raise bad_request(f"unknown serving task(s) {bad}; use '{CHAT}' or '{EMBEDDINGS}'")

    def task(self, name: str) -> str:
        try:
            return self.tasks[name]
        except KeyError:
            raise ApiError("RESOURCE_DOES_NOT_EXIST",
                           f"Endpoint with name '{name}' does not exist. Served here: "
                           f"{sorted(self.tasks)}") from None

    def info(self, name: str) -> dict[str, Any]:
        task = self.task(name)
        return {
            "name": name,
            "id": hashlib.sha1(name.encode()).hexdigest()[:32],
            "task": task,
            "endpoint_type": "FOUNDATION_MODEL_API",
            "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
            "route_optimized": False,
            "creator": "llmforge",
            "config": {"served_entities": [{"name": name, "foundation_model": {"name": name}}]},
        }


@routes.add("GET", "/api/2.0/serving-endpoints")
def list_endpoints(emu: Any, call: Call) -> dict[str, Any]:
    return {"endpoints": [emu.serving.info(n) for n in sorted(emu.serving.tasks)]}


@routes.add("GET", "/api/2.0/serving-endpoints/{name}")
def get_endpoint(emu: Any, call: Call) -> dict[str, Any]:
    return emu.serving.info(call.path["name"])


@routes.add("POST", "/serving-endpoints/{name}/invocations")
def invoke(emu: Any, call: Call) -> dict[str, Any] | Reply:
    name = call.path["name"]
    task = emu.serving.task(name)
    headers = {"served-model-name": name}
    departments = emu.forge.catalog.principal(call.principal).departments
    if task == EMBEDDINGS:
        return Reply(_embeddings(emu, name, call.body, departments), headers)
    if "messages" not in call.body:
        raise bad_request(f"Endpoint '{name}' serves {CHAT}: send 'messages' (a list of "
                          f"{{role, content}}), not {sorted(call.body) or 'an empty body'}.")
    messages, kw = _chat_args(call.body)
    # hold the most this request can use, so concurrent calls cannot overrun a department's quota
    held = emu.ledger.reserve(departments, _prompt_bound(emu, messages) + kw.get("max_tokens", 256))
    if call.body.get("stream"):
        return Reply(headers=headers, events=_chunks(emu, name, messages, kw, held))
    try:
        completion = emu.forge.generator.chat(messages, **kw)
    except BaseException:
        emu.ledger.release(held)
        raise
    usage = completion.usage
    emu.ledger.settle(held, usage.total_tokens)
    return Reply({
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": name,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text},
                     "finish_reason": completion.finish_reason}],
        "usage": {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
                  "total_tokens": usage.total_tokens},
    }, headers)


def _chat_args(body: dict[str, Any]) -> tuple[list[dict[str, str]], dict[str, Any]]:
    messages = body["messages"]
    if (not isinstance(messages, list) or not messages
            or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)):
        raise bad_request("'messages' must be a non-empty list of {\"role\": ..., \"content\": ...} objects")
    if body.get("n", 1) != 1:
        raise bad_request("'n' must be 1: the emulator returns one choice per request")
    kw: dict[str, Any] = {}
    if body.get("max_tokens") is not None:
        if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
            raise bad_request("'max_tokens' must be a positive integer")
        kw["max_tokens"] = body["max_tokens"]
    if body.get("temperature") is not None:
        kw["temperature"] = float(body["temperature"])
    stop = body.get("stop")
    if stop is not None:
        kw["stop"] = [stop] if isinstance(stop, str) else list(stop)
    return messages, kw


def _prompt_bound(emu: Any, messages: list[dict[str, str]]) -> int:
    count = getattr(emu.forge.generator, "count_prompt_tokens", None)
    if count is not None:
        return count(messages)
    # no tokenizer at hand: a token is rarely shorter than 2 characters
    return sum(len(m["content"]) for m in messages) // 2 + 8 * len(messages)


def _chunks(emu: Any, name: str, messages: list[dict[str, str]], kw: dict[str, Any], held: Any) -> Any:
    ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    try:
        for piece in emu.forge.generator.stream(messages, **kw):
            yield {"id": ident, "object": "chat.completion.chunk", "created": created, "model": name,
                   "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece},
                                "finish_reason": None}]}
    finally:
        # a stream reports no token counts: charge the reserved upper bound, never less
        emu.ledger.settle(held, held.tokens)
    yield {"id": ident, "object": "chat.completion.chunk", "created": created, "model": name,
           "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


def _embeddings(emu: Any, name: str, body: dict[str, Any], departments: Any) -> dict[str, Any]:
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not texts or not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise bad_request(f"Endpoint '{name}' serves {EMBEDDINGS}: send 'input' as a string or a "
                          f"non-empty list of strings")
    tokens = sum(len(t.split()) for t in texts)
    emu.ledger.charge(departments, tokens)
    vectors = embed(emu.forge, name, texts)
    return {
        "object": "list",
        "model": name,
        "data": [{"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                 for i, v in enumerate(vectors)],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def embed(forge: Any, name: str, texts: list[str]) -> Any:
    """Vectors from the embedding model the forge's local index uses for ``name``, so the
    endpoint and the indexes built through it agree."""
    try:
        from llmforge_local.index.embed import Embedder, resolve_model
    except ImportError:
        raise ApiError("NOT_IMPLEMENTED", "embedding endpoints are served by the local backend; "
                       "pip install 'llmforge[local]'") from None
    configured = getattr(forge.vector_search.options, "embedding_model", None)
    return Embedder(resolve_model(name, configured)).encode(texts)
