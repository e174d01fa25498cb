"""OpenAI-compatible HTTP server: chat, completions, models, health.

Models: ``llmforge-<generator>`` (the configured generator, e.g. ``llmforge-local``) and
``rag`` (an answer from :meth:`forge.rag.ask` for the caller, with ``citations`` beside the
choices). Each request is charged to the caller's departments through one quota hold
(:meth:`llmforge.quotas.QuotaLedger.hold`): an upper bound is reserved before generation (429
when it does not fit) and the real usage settled after; ``forge.rag.ask`` holds its own. Sizes
(``limits:`` in the config) and text are checked before any tokenisation: 413 for a body,
message or prompt over its limit, 400 for text that is not valid Unicode. Every error is JSON
in the OpenAI shape ``{"error": {"message", "type", "param", "code"}}`` (:mod:`llmforge.http_errors`);
an error after a stream has begun (a token revoked mid-stream) ends it with that object as its
last event. Every generating request leaves one row in the usage table (:mod:`llmforge.usage`).

Identity: ``Authorization: Bearer <token>``, looked up in the token store
(:mod:`llmforge.tokens`: ``$LLMFORGE_API_TOKENS`` pairs or ``<home>/api_tokens.json``). With
``trust_user_header`` (local development only) an ``X-Llmforge-User`` header is taken at its
word when no token is sent. No caller can act as a reserved principal (``__system__``).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any

from llmforge.catalog.identity import check_external
from llmforge.errors import (
    ConfigError,
    DataError,
    LLMForgeError,
    PermissionDeniedError,
    RequestTooLargeError,
)
from llmforge.http_errors import ApiError, api_error
from llmforge.server_sse import cached_tokens, chat_events, held_pieces, sse, token_counts, usage_body
from llmforge.tokens import TOKENS_ENV, TokenStore
from llmforge.usage import UsageLog, UsageRecord

if TYPE_CHECKING:
    from llmforge.forge import Forge

log = logging.getLogger("llmforge.server")
RAG_MODEL = "rag"
__all__ = ["RAG_MODEL", "TOKENS_ENV", "ApiError", "Service", "create_app", "serve", "start_in_thread"]


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


@contextlib.contextmanager
def _blame(field: str) -> Iterator[None]:
    """Name the request field at fault (OpenAI's ``param``) in the generator's refusals: bad
    input (a prompt longer than the context) is about ``field``; a model version the caller may
    not be served (403) is about ``model``."""
    try:
        yield
    except (DataError, PermissionDeniedError) as exc:
        e = api_error(exc)
        e.param = "model" if isinstance(exc, PermissionDeniedError) else field
        e.message = f"'{e.param}': {e.message}"
        raise e from None


class Service:
    """The request logic, independent of the web framework."""

    def __init__(
        self, forge: Forge, trust_user_header: bool = False, tokens: Mapping[str, str] | None = None
    ) -> None:
        self.forge = forge
        self.trust_user_header = trust_user_header
        self.tokens = TokenStore.for_home(forge.home, tokens)
        self.tokens.list()  # a corrupt token file stops the start with its own message
        self.ledger = forge.quotas
        self.limits = forge.config.limits
        self.generator_model = f"llmforge-{forge.config.slot('generator').name}"
        self.created = int(time.time())
        self.usage = UsageLog(forge)

    def close(self) -> None:
        """Commit the usage rows still queued (a clean shutdown)."""
        self.usage.close()

    def models(self) -> list[str]:
        return [self.generator_model, RAG_MODEL]

    def principal(self, authorization: str | None, user_header: str | None) -> Any:
        if authorization:
            scheme, _, token = authorization.partition(" ")
            try:
                name = (
                    self.tokens.lookup(token.strip())
                    if scheme.lower() == "bearer" and token.strip()
                    else None
                )
            except ConfigError as exc:  # the token file broke while serving: say so, every time
                log.error("%s", exc)
                raise ApiError(503, str(exc), "server_error", "token_store_unavailable") from None
            if name is None:
                raise ApiError(
                    401,
                    "invalid API token; create one with `llmforge token create <user>` or "
                    f"list it in {TOKENS_ENV}",
                    "authentication_error",
                    "invalid_api_key",
                )
        elif self.trust_user_header and user_header:
            try:
                name = check_external(user_header, "X-Llmforge-User")
            except ConfigError as exc:
                raise ApiError(403, str(exc), "permission_error", "permission_denied") from None
        else:
            hint = " or an X-Llmforge-User header" if self.trust_user_header else ""
            raise ApiError(
                401,
                f"missing 'Authorization: Bearer <token>' header{hint}",
                "authentication_error",
                "missing_api_key",
            )
        return self.forge.catalog.principal(name)

    def revoked(self, authorization: str | None) -> Callable[[], bool] | None:
        """For a streamed answer: a check that the caller's bearer token has since been revoked
        (``None`` when the caller sent none, as with the trusted user header)."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return lambda: self.tokens.lookup(token.strip()) is None

    def _check_model(self, model: str) -> None:
        if model not in self.models():
            raise ApiError(
                404,
                f"model {ascii(model)} does not exist; available: {self.models()}",
                "invalid_request_error",
                "model_not_found",
                param="model",
            )

    def check_request(self, req: Any, texts: list[str]) -> None:
        """Sizes and text before any work: 413 over a limit, 400 for text that is not Unicode."""
        lim = self.limits
        for t in texts:
            if len(t) > lim.max_message_chars:
                raise RequestTooLargeError(
                    f"a message or prompt has {len(t)} characters; the limit is {lim.max_message_chars} "
                    "(limits.max_message_chars in llmforge.yaml)"
                )
        total = sum(map(len, texts))
        if total > lim.max_prompt_chars:
            raise RequestTooLargeError(
                f"the request's messages or prompts have {total} characters together; the limit is "
                f"{lim.max_prompt_chars} (limits.max_prompt_chars in llmforge.yaml)"
            )
        for t in [*texts, req.model, *(req.stop or [])]:
            try:
                t.encode("utf-8")
            except UnicodeEncodeError:
                raise DataError(
                    "the request holds text that is not valid Unicode (a lone surrogate such as "
                    "\\ud800); send well-formed UTF-8"
                ) from None

    def _prompt_bound(self, messages: list[dict[str, str]]) -> int:
        count = getattr(self.forge.generator, "count_prompt_tokens", None)
        if count is not None:
            return count(messages)
        # no tokenizer at hand: a token is rarely shorter than 2 characters
        return sum(len(m["content"]) for m in messages) // 2 + 8 * len(messages)

    def _gen_kwargs(self, req: Any, who: Any) -> dict[str, Any]:
        """Generation arguments; ``user`` routes the request to the adapter the caller may use."""
        kw = {
            "max_tokens": req.max_tokens,
            "temperature": req.temperature,
            "stop": req.stop,
            "user": who.name,
        }
        if req.top_p != 1.0:
            if "top_p" not in inspect.signature(self.forge.generator.chat).parameters:
                raise ApiError(
                    400,
                    f"generator '{self.generator_model}' does not support top_p; omit it",
                    code="unsupported_parameter",
                )
            kw["top_p"] = req.top_p
        return kw

    # ---- chat -------------------------------------------------------------------------------
    def chat(
        self,
        req: Any,
        who: Any,
        rec: UsageRecord | None = None,
        revoked: Callable[[], bool] | None = None,
    ) -> dict | Iterator[str]:
        """``/v1/chat/completions``; ``rec`` is the request's usage row, filled as it goes."""
        rec = rec or UsageRecord(route="")
        rec.model, rec.stream = req.model, req.stream
        messages = [m.as_dict() for m in req.messages]
        self.check_request(req, [m["content"] for m in messages])
        self._check_model(req.model)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        rec.request_id = cid
        if req.model == RAG_MODEL:
            text, usage, extra, finish, cached = self._rag(messages, who, rec)
            pieces: Iterator[str] = iter([text])
        elif req.stream:
            return self._stream_chat(req, messages, who, cid, created, rec, revoked)
        else:
            kw = self._gen_kwargs(req, who)
            with (
                _blame("messages"),
                self.ledger.hold(who.departments, self._prompt_bound(messages) + req.max_tokens) as h,
            ):
                c = self.forge.generator.chat(messages, **kw)
                usage, extra, finish, text = token_counts(c.usage), {}, c.finish_reason, c.text
                cached = cached_tokens(c.usage)
                h.used = sum(usage)
            rec.charge(*usage)
            rec.served_by(c.model)
            pieces = iter([text])
        if req.stream:  # rag: the answer is complete before the first byte goes out
            return chat_events(req, cid, created, pieces, lambda: (usage, finish, cached), extra, rec)
        return {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": req.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": usage_body(*usage, cached),
            **extra,
        }

    def _rag(
        self, messages: list[dict[str, str]], who: Any, rec: UsageRecord
    ) -> tuple[str, tuple[int, int], dict, str, int]:
        question = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        if not question.strip():
            raise ApiError(
                400, "the 'rag' model needs a user message holding the question", code="invalid_value"
            )
        answer = self.forge.rag.ask(question, user=who.name)  # rag.ask holds the caller's quota itself
        usage = token_counts(answer.usage)
        rec.charge(rec.prompt_tokens + usage[0], rec.completion_tokens + usage[1])
        rec.answer_id = ",".join(filter(None, [rec.answer_id, answer.request_id]))
        rec.served_by(getattr(answer, "model", None))
        extra = {
            "citations": _jsonable(answer.citations),
            "request_id": answer.request_id,
            "refused": answer.refused,
            "no_answer": answer.no_answer,
            "guards": _jsonable(answer.guards),
        }
        return answer.text, usage, extra, "stop", cached_tokens(answer.usage)

    def _stream_chat(
        self,
        req: Any,
        messages: list[dict[str, str]],
        who: Any,
        cid: str,
        created: int,
        rec: UsageRecord,
        revoked: Callable[[], bool] | None,
    ) -> Iterator[str]:
        kw = self._gen_kwargs(req, who)
        prompt = self._prompt_bound(messages)
        with _blame("messages"), contextlib.ExitStack() as stack:
            h = stack.enter_context(self.ledger.hold(who.departments, prompt + req.max_tokens))
            stream = self.forge.generator.stream(messages, **kw)
            first = next(iter(stream), None)  # errors (bad input, model load) surface as HTTP errors
            held = stack.pop_all()  # the hold stays open while the response streams
        pieces, outcome = held_pieces(stream, first, held, h, prompt, rec, revoked)
        return chat_events(req, cid, created, pieces, outcome, {}, rec)

    # ---- completions ------------------------------------------------------------------------
    def complete(self, req: Any, who: Any, rec: UsageRecord | None = None) -> dict | Iterator[str]:
        """``/v1/completions``. With ``stream`` the text of each prompt comes in one chunk."""
        rec = rec or UsageRecord(route="")
        rec.model, rec.stream = req.model, req.stream
        prompts = [req.prompt] if isinstance(req.prompt, str) else list(req.prompt)
        self.check_request(req, prompts)
        self._check_model(req.model)
        cid, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        rec.request_id = cid
        if req.model == RAG_MODEL:
            results = [self._rag([{"role": "user", "content": p}], who, rec) for p in prompts]
            choices = [(t, f) for t, _, _, f, _ in results]
            usage = tuple(map(sum, zip(*(u for _, u, _, _, _ in results), strict=True)))
            extra = {"citations": [e["citations"] for _, _, e, _, _ in results]}
            cached = sum(c for *_, c in results)
        else:
            kw = self._gen_kwargs(req, who)
            bound = sum(self._prompt_bound([{"role": "user", "content": p}]) for p in prompts)
            gen = self.forge.generator
            with (
                _blame("prompt"),
                self.ledger.hold(who.departments, bound + req.max_tokens * len(prompts)) as h,
            ):
                outs = gen.complete_batch(prompts, **kw)
                counts = [token_counts(c.usage) for c in outs]
                usage = (sum(p for p, _ in counts), sum(c for _, c in counts))
                cached = sum(cached_tokens(c.usage) for c in outs)
                h.used = sum(usage)
            rec.charge(*usage)
            rec.served_by(outs[0].model if outs else None)
            choices, extra = [(c.text, c.finish_reason) for c in outs], {}
        body = {"id": cid, "object": "text_completion", "created": created, "model": req.model}
        rows = [
            {"index": i, "text": t, "finish_reason": f, "logprobs": None} for i, (t, f) in enumerate(choices)
        ]
        if not req.stream:
            return {**body, "choices": rows, "usage": usage_body(*usage, cached), **extra}
        return iter([sse({**body, "choices": [r]}) for r in rows] + ["data: [DONE]\n\n"])


# ---- the app --------------------------------------------------------------------------------------


def create_app(
    forge: Forge, *, trust_user_header: bool = False, tokens: Mapping[str, str] | None = None
) -> Any:
    """The FastAPI app serving ``forge``."""
    from llmforge.server_app import build_app

    return build_app(Service(forge, trust_user_header, tokens))


def serve(
    forge: Forge,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    trust_user_header: bool = False,
    tokens: Mapping[str, str] | None = None,
) -> None:
    """Serve in the foreground until interrupted (``llmforge serve``); a busy port is one error."""
    import socket

    import uvicorn

    app = create_app(forge, trust_user_header=trust_user_header, tokens=tokens)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))  # bound here, so a taken port is a clear error, not uvicorn's log
    except OSError as exc:
        sock.close()
        raise LLMForgeError(
            f"cannot listen on {host}:{port} ({exc.strerror}); stop what uses it or pick another --port"
        ) from None
    if trust_user_header:
        log.warning("trusting X-Llmforge-User: any caller can claim any identity; local development only")
    # commit the usage rows still queued when the server stops: at its lifespan's shutdown,
    # because after a SIGTERM uvicorn re-raises the signal and the process ends there
    app.router.add_event_handler("shutdown", app.state.service.close)
    try:
        uvicorn.Server(uvicorn.Config(app, host=host, port=port)).run(sockets=[sock])
    finally:
        app.state.service.close()  # a no-op when the shutdown handler ran


def start_in_thread(
    forge: Forge,
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    trust_user_header: bool = False,
    tokens: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> tuple[str, Callable[[], None]]:
    """Serve in a background thread (tests). Returns ``http://HOST:PORT`` and a stop function."""
    from llmforge.http_thread import run_in_thread

    app = create_app(forge, trust_user_header=trust_user_header, tokens=tokens)
    base, stop_server = run_in_thread(app, host, port, name="the llmforge server", timeout_s=timeout_s)

    def stop() -> None:
        stop_server()
        app.state.service.close()  # commit the usage rows still queued

    return base, stop
