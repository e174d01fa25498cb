"""Model Serving: endpoint lookup (``/api/2.0/serving-endpoints``) and invocations
(``/serving-endpoints/{name}/invocations``), chat through the forge's generator and
embeddings through the local embedding model."""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Mapping
from typing import Any

from llmforge_emulator.errors import ApiError, bad_request
from llmforge_emulator.routes import Call, Reply, Routes

CHAT = "llm/v1/chat"
COMPLETIONS = "llm/v1/completions"
EMBEDDINGS = "llm/v1/embeddings"
#: choices one request may ask for (``n``), as the service allows
MAX_CHOICES = 5

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
        bad = {n: t for n, t in self.tasks.items() if t not in (CHAT, COMPLETIONS, EMBEDDINGS)}
        if bad:
            raise bad_request(
                f"unknown serving task(s) {bad}; use '{CHAT}', '{COMPLETIONS}' or '{EMBEDDINGS}'"
            )
        #: endpoints created through the API: name -> (info, generator serving its model version)
        self.created: dict[str, tuple[dict[str, Any], Any]] = {}

    def task(self, name: str) -> str:
        try:
            return self.tasks[name]
        except KeyError:
            raise ApiError(
                "RESOURCE_DOES_NOT_EXIST",
                f"Endpoint with name '{name}' does not exist. Served here: {sorted(self.tasks)}",
            ) from None

    def generator(self, emu: Any, name: str) -> Any:
        """The generator behind ``name``: its model version's for a created endpoint, else the forge's."""
        return self.created[name][1] if name in self.created else emu.forge.generator

    def info(self, name: str) -> dict[str, Any]:
        if name in self.created:
            return self.created[name][0]
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
    generator = emu.serving.generator(emu, name)
    if task == COMPLETIONS or ("prompt" in call.body and name in emu.serving.created):
        return Reply(_completions(emu, name, call.body, departments, generator), headers)
    if "messages" not in call.body:
        raise bad_request(
            f"Endpoint '{name}' serves {CHAT}: send 'messages' (a list of "
            f"{{role, content}}), not {sorted(call.body) or 'an empty body'}."
        )
    messages, kw, n = _chat_args(call.body)
    # hold the most this request can use, so concurrent calls cannot overrun a department's quota
    bound = n * (_prompt_bound(generator, messages) + kw.get("max_tokens", 256))
    if call.body.get("stream"):
        if n != 1:
            raise bad_request("'n' must be 1 when streaming")
        with contextlib.ExitStack() as stack:
            h = stack.enter_context(emu.ledger.hold(departments, bound))
            held = stack.pop_all()  # kept open while the events stream
        return Reply(headers=headers, events=_chunks(generator, name, messages, kw, held, h))
    with emu.ledger.hold(departments, bound) as h:
        completions = (
            generator.chat_batch([messages] * n, **kw) if n > 1 else [generator.chat(messages, **kw)]
        )
        h.used = sum(c.usage.total_tokens for c in completions)
    choices = [
        {"index": i, "message": {"role": "assistant", "content": c.text}, "finish_reason": c.finish_reason}
        for i, c in enumerate(completions)
    ]
    return Reply(_answer("chat.completion", name, choices, completions), headers)


def _answer(kind: str, name: str, choices: list[dict[str, Any]], completions: list[Any]) -> dict[str, Any]:
    # the prompt is counted once however many choices are drawn from it, as the service reports
    prompt = completions[0].usage.prompt_tokens if completions else 0
    completion = sum(c.usage.completion_tokens for c in completions)
    return {
        "id": f"{'chatcmpl' if kind == 'chat.completion' else 'cmpl'}-{uuid.uuid4().hex[:24]}",
        "object": kind,
        "created": int(time.time()),
        "model": name,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _choices(body: dict[str, Any]) -> int:
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_CHOICES:
        raise bad_request(f"'n' must be an integer from 1 to {MAX_CHOICES}, got {n!r}")
    return n


def _completions(
    emu: Any, name: str, body: dict[str, Any], departments: Any, generator: Any
) -> dict[str, Any]:
    """``llm/v1/completions``: ``prompt`` (a string or a list of strings) -> ``choices[i].text``."""
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not prompts or not isinstance(prompts, list) or not all(isinstance(p, str) and p for p in prompts):
        raise bad_request(
            f"Endpoint '{name}' serves {COMPLETIONS}: send 'prompt' as a string or a list of strings"
        )
    n = _choices(body)
    _, kw, _ = _chat_args({**body, "messages": [{"role": "user", "content": "-"}], "n": 1})
    batch = [p for p in prompts for _ in range(n)]
    bound = sum(len(p) // 2 + 8 for p in batch) + len(batch) * kw.get("max_tokens", 256)
    with emu.ledger.hold(departments, bound) as h:
        completions = generator.complete_batch(batch, **kw)
        h.used = sum(c.usage.total_tokens for c in completions)
    choices = [
        {"index": i, "text": c.text, "finish_reason": c.finish_reason, "logprobs": None}
        for i, c in enumerate(completions)
    ]
    out = _answer("text_completion", name, choices, completions)
    out["usage"]["prompt_tokens"] = sum(c.usage.prompt_tokens for c in completions[::n])
    out["usage"]["total_tokens"] = out["usage"]["prompt_tokens"] + out["usage"]["completion_tokens"]
    return out


def _chat_args(body: dict[str, Any]) -> tuple[list[dict[str, str]], dict[str, Any], int]:
    messages = body["messages"]
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages)
    ):
        raise bad_request('\'messages\' must be a non-empty list of {"role": ..., "content": ...} objects')
    n = _choices(body)
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
    return messages, kw, n


def _prompt_bound(generator: Any, messages: list[dict[str, str]]) -> int:
    count = getattr(generator, "count_prompt_tokens", None)
    if count is not None:
        return count(messages)
    # no tokenizer at hand: a token is rarely shorter than 2 characters
    return sum(len(m["content"]) for m in messages) // 2 + 8 * len(messages)


def _chunks(
    generator: Any, name: str, messages: list[dict[str, str]], kw: dict[str, Any], held: Any, h: Any
) -> Any:
    ident, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    # a stream reports no token counts to the client: charge the reserved upper bound, never less
    h.used = h.tokens
    with held:
        for piece in generator.stream(messages, **kw):
            yield {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": name,
                "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": None}
                ],
            }
    yield {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": name,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }


def _embeddings(emu: Any, name: str, body: dict[str, Any], departments: Any) -> dict[str, Any]:
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not texts or not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise bad_request(
            f"Endpoint '{name}' serves {EMBEDDINGS}: send 'input' as a string or a non-empty list of strings"
        )
    tokens = sum(len(t.split()) for t in texts)
    with emu.ledger.hold(departments, tokens) as h:
        vectors = embed(emu.forge, name, texts)
        h.used = tokens
    return {
        "object": "list",
        "model": name,
        "data": [
            {"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
            for i, v in enumerate(vectors)
        ],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def embed(forge: Any, name: str, texts: list[str]) -> Any:
    """Vectors from the embedding model the forge's local index uses for ``name``, so the
    endpoint and the indexes built through it agree."""
    try:
        from llmforge_local.index.embed import Embedder, resolve_model
    except ImportError:
        raise ApiError(
            "NOT_IMPLEMENTED",
            "embedding endpoints are served by the local backend; pip install 'llmforge[local]'",
        ) from None
    configured = getattr(forge.vector_search.options, "embedding_model", None)
    return Embedder(resolve_model(name, configured)).encode(texts)
