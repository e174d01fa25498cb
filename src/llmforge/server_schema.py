"""Request schemas of the OpenAI-compatible server, and how their errors read.

Strict, as OpenAI's API is: a wrong JSON type is an error, never coerced (``"16"`` is not a
``max_tokens``, ``"yes"`` is not a ``stream``); a value out of range is an error naming the
field (OpenAI's ``param``). Decisions where the OpenAI schema offers more than this server does:

- **Unknown top-level fields are rejected** (400 ``unknown_parameter``), as OpenAI rejects them:
  a misspelt ``max_token`` should not be silently dropped.
- Fields OpenAI defines that change nothing here are accepted and ignored when well-typed:
  ``user`` (the caller comes from the bearer token), ``seed``, ``metadata``, ``store``,
  ``service_tier``, ``parallel_tool_calls``.
- Features this server does not implement are refused (400 ``unsupported_parameter``) unless
  sent at their neutral value: ``n`` > 1, non-zero ``presence_penalty``/``frequency_penalty``,
  ``logprobs``/``top_logprobs``, ``logit_bias``, ``tools``/``functions``, a ``response_format``
  other than text, and for completions ``echo``, ``suffix`` and ``best_of`` > 1 — an answer
  that silently lacked them would be wrong.
- Keys inside a message that this server does not read (``refusal``, ``annotations`` that a
  client echoes back from an earlier answer) are ignored; the message's role and content are
  checked strictly. ``developer`` is read as ``system``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

#: the longest answer a request may ask for
MAX_TOKENS = 8192
#: OpenAI's limit on stop sequences
MAX_STOPS = 4
STRICT = ConfigDict(strict=True, extra="forbid")


class Unsupported(ValueError):
    """A well-formed value asking for a feature this server lacks."""


def _unsupported(used: Any, neutral: str) -> None:
    """Refuse a feature this server lacks when ``used`` (a value other than the neutral one)."""
    if used:
        raise Unsupported(f"is not supported by this server; omit it (or send {neutral})")


class Part(BaseModel):
    model_config = STRICT
    type: Literal["text"]
    text: str


class Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[Part]
    name: str | None = None

    def as_dict(self) -> dict[str, str]:
        text = self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class StreamOptions(BaseModel):
    model_config = STRICT
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    type: Literal["text", "json_object", "json_schema"]


class _Sampling(BaseModel):
    model_config = STRICT
    model: str
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    #: 0 is refused: for the most likely token every time, send temperature 0
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    stream: bool | None = None
    n: int | None = Field(None, ge=1, le=128)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    logit_bias: dict[str, int] | None = None
    seed: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, v: str | list[str] | None) -> list[str] | None:
        stops = [v] if isinstance(v, str) else v
        if stops is not None and len(stops) > MAX_STOPS:
            raise ValueError(f"takes at most {MAX_STOPS} strings, got {len(stops)}")
        return stops

    @field_validator("n")
    @classmethod
    def _one(cls, v: int | None) -> int | None:
        _unsupported(v not in (None, 1), "n=1: one choice per request")
        return v

    @field_validator("presence_penalty", "frequency_penalty")
    @classmethod
    def _penalty(cls, v: float | None) -> float | None:
        _unsupported(v, "0")
        return v

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, v: dict | None) -> dict | None:
        _unsupported(v, "{}")
        return v

    @model_validator(mode="after")
    def _defaults(self) -> _Sampling:
        self.temperature = 0.0 if self.temperature is None else self.temperature
        self.top_p = 1.0 if self.top_p is None else self.top_p
        self.stream = bool(self.stream)
        self.n = 1
        return self


class ChatRequest(_Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    stream_options: StreamOptions | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    functions: list[Any] | None = None
    function_call: Any = None
    parallel_tool_calls: bool | None = None

    @field_validator("stream_options")
    @classmethod
    def _only_streams(cls, v: StreamOptions | None, info: ValidationInfo) -> StreamOptions | None:
        if v is not None and not info.data.get("stream"):
            raise ValueError("is only allowed when stream is true")
        return v

    @field_validator("logprobs", "top_logprobs", "tools", "functions")
    @classmethod
    def _not_here(cls, v: Any) -> Any:
        _unsupported(v, "false, 0 or []")
        return v

    @field_validator("tool_choice", "function_call")
    @classmethod
    def _no_tools(cls, v: Any) -> Any:
        _unsupported(v not in (None, "none"), '"none"')
        return v

    @field_validator("response_format")
    @classmethod
    def _text(cls, v: ResponseFormat | None) -> ResponseFormat | None:
        _unsupported(v is not None and v.type != "text", '{"type": "text"}')
        return v

    @model_validator(mode="after")
    def _length(self) -> ChatRequest:
        self.max_tokens = self.max_tokens or self.max_completion_tokens or 256
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(_Sampling):
    prompt: str | list[str] = Field(min_length=1)
    logprobs: int | None = Field(None, ge=0, le=5)
    echo: bool | None = None
    suffix: str | None = None
    best_of: int | None = Field(None, ge=1, le=20)

    @field_validator("logprobs", "echo", "suffix")
    @classmethod
    def _not_here(cls, v: Any) -> Any:
        _unsupported(v, "null")
        return v

    @field_validator("best_of")
    @classmethod
    def _one(cls, v: int | None) -> int | None:
        _unsupported(v not in (None, 1), "1")
        return v

    @model_validator(mode="after")
    def _length(self) -> CompletionRequest:
        self.max_tokens = self.max_tokens or 16  # OpenAI's default for completions
        return self


# ---- errors ----------------------------------------------------------------------------------

#: pydantic's names for a union's branches in an error location: not request fields
_BRANCHES = {"str", "int", "float", "bool", "none", "list", "dict"}


def _code(e: dict) -> str:
    if e["type"] == "extra_forbidden":
        return "unknown_parameter"
    if isinstance((e.get("ctx") or {}).get("error"), Unsupported):
        return "unsupported_parameter"
    return "invalid_value"


def _message(e: dict) -> str:
    if e["type"] == "extra_forbidden":
        return "unrecognized request argument; remove it"
    if e["type"] == "value_error":  # our own checks: without pydantic's "Value error, " prefix
        return str(e["ctx"]["error"])
    return e["msg"]


def param(loc: tuple) -> str | None:
    """``('body', 'messages', 0, 'content', 'list[Part]', 1, 'type')`` -> ``messages[0].content[1].type``."""
    out = ""
    parts = loc[1:] if loc and loc[0] == "body" else loc
    if parts and isinstance(parts[0], int):  # a body that is not an object: no field to name
        return None
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _BRANCHES or any(c in part for c in "[(-"):
            continue
        else:
            out += f".{part}" if out else part
    return out or None


def describe(errors: list[dict]) -> tuple[str, str | None, str]:
    """Pydantic's errors as one message, the first field at fault and an OpenAI error code."""
    parts: list[str] = []
    for e in errors:
        where = param(e["loc"]) or "body"
        text = f"'{where}': {_message(e)}"
        if text not in parts:
            parts.append(text)
    if not errors:
        return "invalid request", None, "invalid_value"
    # the first field at fault; of a union's branches (a content that is neither a string nor a
    # list of parts), the one that got furthest says most
    top = param(errors[0]["loc"]) or ""
    deeper = [e for e in errors if (param(e["loc"]) or "").startswith(top)]
    first = max(deeper, key=lambda e: (param(e["loc"]) or "").count(".") + (param(e["loc"]) or "").count("["))
    return (
        "invalid request: " + "; ".join(parts),
        param(first["loc"]),
        _code(first),
    )
