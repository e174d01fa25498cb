"""OpenAI-compatible HTTP server: chat, completions, models, health.

Models: ``llmforge-<generator>`` (the configured generator, e.g. ``llmforge-local``) and
``rag`` (an answer from :meth:`forge.rag.ask` for the caller, with ``citations`` beside the
choices). Each request is charged to the caller's departments in the quota ledger: an upper
bound is reserved before generation (429 when it does not fit) and the real usage settled
after. Every error is JSON in the OpenAI shape ``{"error": {"message", "type", "code"}}``.

Identity: ``Authorization: Bearer <token>``, the token looked up in ``$LLMFORGE_API_TOKENS``
(``token=principal`` pairs, comma-separated) or in ``<home>/api_tokens.json`` (SHA-256 of each
token -> principal, written by :func:`create_token`). With ``trust_user_header`` (local
development only) an ``X-Llmforge-User`` header is taken at its word when no token is sent.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import json
import logging
import os
import secrets
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmforge.errors import (
    ConfigError, DataError, GuardrailError, LLMForgeError, NotFoundError, PermissionDeniedError,
    QuotaExceededError,
)

if TYPE_CHECKING:
    from llmforge.forge import Forge

log = logging.getLogger("llmforge.server")
TOKENS_ENV = "LLMFORGE_API_TOKENS"
TOKENS_FILE = "api_tokens.json"
RAG_MODEL = "rag"
#: reserved for a RAG prompt (question + retrieved chunks) whose size is known only after retrieval
RAG_PROMPT_ALLOWANCE = 2048


class ApiError(Exception):
    """An HTTP error answered as ``{"error": {...}}``."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.headers = status, message, type_, code, headers


def api_error_for(exc: LLMForgeError) -> ApiError:
    if isinstance(exc, QuotaExceededError):
        retry = getattr(exc, "retry_after_s", None)
        return ApiError(429, str(exc), "insufficient_quota", "quota_exceeded",
                        {"Retry-After": str(retry)} if retry else None)
    for kind, status, type_, code in (
        (PermissionDeniedError, 403, "permission_error", "permission_denied"),
        (NotFoundError, 404, "invalid_request_error", "not_found"),
        (GuardrailError, 400, "invalid_request_error", "guardrail_blocked"),
        ((DataError, ConfigError), 400, "invalid_request_error", "invalid_value"),
    ):
        if isinstance(exc, kind):
            return ApiError(status, str(exc), type_, code)
    return ApiError(500, str(exc), "server_error", "model_error")


# ---- identity ----------------------------------------------------------------------------------

def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(forge: Forge, principal: str) -> str:
    """A new API token for ``principal``; only its hash is stored, so show the token once."""
    if not principal:
        raise ConfigError("create_token needs a principal name")
    path = forge.home / TOKENS_FILE
    token = "lf-" + secrets.token_urlsafe(32)
    known = json.loads(path.read_text()) if path.exists() else {}
    known[_digest(token)] = principal
    fd, tmp = tempfile.mkstemp(dir=forge.home, prefix=".api_tokens-")
    with os.fdopen(fd, "w") as fh:  # mkstemp creates it 0600: readable by the owner only
        json.dump(known, fh, indent=1)
    os.replace(tmp, path)
    return token


class TokenStore:
    """Bearer token -> principal name."""

    def __init__(self, home: Path, tokens: Mapping[str, str] | None = None) -> None:
        self.path = home / TOKENS_FILE
        self._fixed = {_digest(t): p for t, p in (tokens or {}).items()}
        for pair in filter(None, (p.strip() for p in os.environ.get(TOKENS_ENV, "").split(","))):
            token, sep, principal = pair.partition("=")
            if not sep or not token.strip() or not principal.strip():
                raise ConfigError(f"{TOKENS_ENV}: '{pair}' is not 'token=principal'; write 'tok1=alice,tok2=bob'")
            self._fixed[_digest(token.strip())] = principal.strip()

    def principal(self, token: str) -> str | None:
        key = _digest(token)
        if key in self._fixed:
            return self._fixed[key]
        if self.path.exists():  # read per lookup, so tokens created while serving work at once
            return json.loads(self.path.read_text()).get(key)
        return None


# ---- helpers -------------------------------------------------------------------------------------

def _jsonable(x: Any) -> Any:
    if is_dataclass(x) and not isinstance(x, type):
        return _jsonable(asdict(x))
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set | frozenset):
        return [_jsonable(v) for v in x]
    if x is None or isinstance(x, str | int | float | bool):
        return x
    return str(x)


def _tokens(usage: Any) -> tuple[int, int]:
    if isinstance(usage, Mapping):
        return int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    return int(getattr(usage, "prompt_tokens", 0)), int(getattr(usage, "completion_tokens", 0))


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj)}\n\n"


class Service:
    """The request logic, independent of the web framework."""

    def __init__(self, forge: Forge, trust_user_header: bool = False,
                 tokens: Mapping[str, str] | None = None) -> None:
        from llmforge.quotas import ledger_for

        self.forge = forge
        self.trust_user_header = trust_user_header
        self.tokens = TokenStore(forge.home, tokens)
        self.ledger = ledger_for(forge)
        self.generator_model = f"llmforge-{forge.config.slot('generator').name}"
        self.created = int(time.time())

    def models(self) -> list[str]:
        return [self.generator_model, RAG_MODEL]

    def principal(self, authorization: str | None, user_header: str | None) -> Any:
        if authorization:
            scheme, _, token = authorization.partition(" ")
            name = self.tokens.principal(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
            if name is None:
                raise ApiError(401, "invalid API token; create one with `llmforge token create <user>` or "
                                    f"list it in {TOKENS_ENV}", "authentication_error", "invalid_api_key")
        elif self.trust_user_header and user_header:
            name = user_header
        else:
            hint = " or an X-Llmforge-User header" if self.trust_user_header else ""
            raise ApiError(401, f"missing 'Authorization: Bearer <token>' header{hint}",
                           "authentication_error", "missing_api_key")
        return self.forge.catalog.principal(name)

    def _check_model(self, model: str) -> None:
        if model not in self.models():
            raise ApiError(404, f"model '{model}' does not exist; available: {self.models()}",
                           "invalid_request_error", "model_not_found")

    def _prompt_bound(self, messages: list[dict[str, str]]) -> int:
        count = getattr(self.forge.generator, "count_prompt_tokens", None)
        if count is not None:
            return count(messages)
        # no tokenizer at hand: a token is rarely shorter than 2 characters
        return sum(len(m["content"]) for m in messages) // 2 + 8 * len(messages)

    def _gen_kwargs(self, req: Any) -> dict[str, Any]:
        kw = {"max_tokens": req.max_tokens, "temperature": req.temperature, "stop": req.stop}
        if req.top_p != 1.0:
            if "top_p" not in inspect.signature(self.forge.generator.chat).parameters:
                raise ApiError(400, f"generator '{self.generator_model}' does not support top_p; omit it",
                               code="unsupported_parameter")
            kw["top_p"] = req.top_p
        return kw

    # ---- chat -------------------------------------------------------------------------------
    def chat(self, req: Any, who: Any) -> dict | Iterator[str]:
        self._check_model(req.model)
        messages = [m.as_dict() for m in req.messages]
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if req.model == RAG_MODEL:
            text, usage, extra, finish = self._rag(messages, who)
            pieces: Iterator[str] = iter([text])
        elif req.stream:
            return self._stream_chat(req, messages, who, cid, created)
        else:
            kw = self._gen_kwargs(req)
            res = self.ledger.reserve(who.departments, self._prompt_bound(messages) + req.max_tokens)
            try:
                c = self.forge.generator.chat(messages, **kw)
            except BaseException:
                self.ledger.release(res)
                raise
            usage, extra, finish, text = _tokens(c.usage), {}, c.finish_reason, c.text
            self.ledger.settle(res, sum(usage))
            pieces = iter([text])
        if req.stream:  # rag: the answer is complete before the first byte goes out
            return self._sse_chat(req, cid, created, pieces, lambda: (usage, finish), extra)
        return {"id": cid, "object": "chat.completion", "created": created, "model": req.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": finish, "logprobs": None}],
                "usage": _usage(*usage), **extra}

    def _rag(self, messages: list[dict[str, str]], who: Any) -> tuple[str, tuple[int, int], dict, str]:
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        if not question.strip():
            raise ApiError(400, "the 'rag' model needs a user message holding the question", code="invalid_value")
        bound = RAG_PROMPT_ALLOWANCE + self.forge.config.rag.max_tokens
        res = self.ledger.reserve(who.departments, bound)
        try:
            answer = self.forge.rag.ask(question, user=who.name)
        except BaseException:
            self.ledger.release(res)
            raise
        usage = _tokens(getattr(answer, "usage", None))
        self.ledger.settle(res, sum(usage))
        extra = {"citations": _jsonable(getattr(answer, "citations", [])),
                 "request_id": getattr(answer, "request_id", None),
                 **{k: getattr(answer, k) for k in ("refused", "no_answer") if hasattr(answer, k)}}
        return answer.text, usage, extra, "stop"

    def _stream_chat(self, req: Any, messages: list[dict[str, str]], who: Any, cid: str,
                     created: int) -> Iterator[str]:
        kw = self._gen_kwargs(req)
        prompt = self._prompt_bound(messages)
        res = self.ledger.reserve(who.departments, prompt + req.max_tokens)
        try:
            stream = self.forge.generator.stream(messages, **kw)
            first = next(iter(stream), None)  # errors (bad input, model load) surface as HTTP errors
        except BaseException:
            self.ledger.release(res)
            raise
        sent: list[str] = []

        def pieces() -> Iterator[str]:
            try:
                for p in itertools.chain([] if first is None else [first], stream):
                    sent.append(p)
                    yield p
            finally:
                close = getattr(stream, "close", None)
                if close:
                    close()
                done = getattr(stream, "completion", None)
                self.ledger.settle(res, sum(_tokens(done.usage)) if done else prompt + len(sent))

        def outcome() -> tuple[tuple[int, int], str]:
            done = getattr(stream, "completion", None)
            if done is not None:
                return _tokens(done.usage), done.finish_reason
            return (prompt, len(sent)), "stop"

        return self._sse_chat(req, cid, created, pieces(), outcome, {})

    def _sse_chat(self, req: Any, cid: str, created: int, pieces: Iterator[str],
                  outcome: Callable[[], tuple[tuple[int, int], str]], extra: dict) -> Iterator[str]:
        def chunk(delta: dict, finish: str | None = None, **more: Any) -> str:
            return _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": req.model,
                         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more})

        yield chunk({"role": "assistant", "content": ""})
        for p in pieces:
            if p:
                yield chunk({"content": p})
        usage, finish = outcome()
        yield chunk({}, finish, **extra)
        if (req.stream_options or {}).get("include_usage"):
            yield _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": req.model,
                        "choices": [], "usage": _usage(*usage)})
        yield "data: [DONE]\n\n"

    # ---- completions ------------------------------------------------------------------------
    def complete(self, req: Any, who: Any) -> dict | Iterator[str]:
        """``/v1/completions``. With ``stream`` the text of each prompt comes in one chunk."""
        self._check_model(req.model)
        prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
        cid, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        if req.model == RAG_MODEL:
            results = [self._rag([{"role": "user", "content": p}], who) for p in prompts]
            choices = [(t, f) for t, _, _, f in results]
            usage = tuple(map(sum, zip(*(u for _, u, _, _ in results), strict=True)))
            extra = {"citations": [e["citations"] for _, _, e, _ in results]}
        else:
            kw = self._gen_kwargs(req)
            bound = sum(self._prompt_bound([{"role": "user", "content": p}]) for p in prompts)
            res = self.ledger.reserve(who.departments, bound + req.max_tokens * len(prompts))
            gen = self.forge.generator
            try:
                if hasattr(gen, "complete_batch"):
                    outs = gen.complete_batch(prompts, **kw)
                else:
                    outs = gen.chat_batch([[{"role": "user", "content": p}] for p in prompts], **kw)
            except BaseException:
                self.ledger.release(res)
                raise
            counts = [_tokens(c.usage) for c in outs]
            usage = (sum(p for p, _ in counts), sum(c for _, c in counts))
            self.ledger.settle(res, sum(usage))
            choices, extra = [(c.text, c.finish_reason) for c in outs], {}
        body = {"id": cid, "object": "text_completion", "created": created, "model": req.model}
        rows = [{"index": i, "text": t, "finish_reason": f, "logprobs": None} for i, (t, f) in enumerate(choices)]
        if not req.stream:
            return {**body, "choices": rows, "usage": _usage(*usage), **extra}
        return iter([_sse({**body, "choices": [r]}) for r in rows] + ["data: [DONE]\n\n"])


# ---- the app --------------------------------------------------------------------------------------

def create_app(forge: Forge, *, trust_user_header: bool = False, tokens: Mapping[str, str] | None = None) -> Any:
    """The FastAPI app serving ``forge``."""
    from llmforge.server_app import build_app

    return build_app(Service(forge, trust_user_header, tokens))


def serve(forge: Forge, host: str = "127.0.0.1", port: int = 8000, *, trust_user_header: bool = False,
          tokens: Mapping[str, str] | None = None) -> None:
    """Serve in the foreground until interrupted (``llmforge serve``)."""
    import uvicorn

    if trust_user_header:
        log.warning("trusting X-Llmforge-User: any caller can claim any identity; local development only")
    uvicorn.run(create_app(forge, trust_user_header=trust_user_header, tokens=tokens), host=host, port=port)


def start_in_thread(forge: Forge, port: int = 0, host: str = "127.0.0.1", *, trust_user_header: bool = False,
                    tokens: Mapping[str, str] | None = None,
                    timeout_s: float = 30.0) -> tuple[str, Callable[[], None]]:
    """Serve in a background thread (tests). Returns ``http://HOST:PORT`` and a stop function."""
    from llmforge.http_thread import run_in_thread

    app = create_app(forge, trust_user_header=trust_user_header, tokens=tokens)
    return run_in_thread(app, host, port, name="the llmforge server", timeout_s=timeout_s)
