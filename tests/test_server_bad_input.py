"""Bad input against the real server (tiny Llama, real HTTP): every field of the OpenAI chat and
completions request with a wrong type or out-of-range value, a prompt longer than the context, a
model version the caller may not be served, a token revoked mid-stream and a client that goes
away mid-stream. Each is a 4xx JSON error in OpenAI's shape naming the field, and the server
keeps answering."""

from __future__ import annotations

import httpx
import openai
import pytest
from fixtures.generation import generator_config

import llmforge
from llmforge import server_sse
from llmforge.governance import NotEntitledError
from llmforge.quotas import ledger_for
from llmforge.server import start_in_thread
from llmforge.tokens import TokenStore

MODEL = "llmforge-local"
HELLO = [{"role": "user", "content": "Who owns Project Helix?"}]
TOKENS = {"tok-alice": "alice", "tok-mallory": "mallory"}
AUTH = {"Authorization": "Bearer tok-alice"}
LONG_PROMPT = "word " * 3000  # > the tiny model's 2048-token context, < limits.max_message_chars


@pytest.fixture(scope="module")
def forge(tmp_path_factory, chat_model_dir):
    home = tmp_path_factory.mktemp("bad-input") / "home"
    forge = llmforge.connect(
        backend="local", home=str(home), user="admin", generator=generator_config(chat_model_dir)
    )
    forge.catalog.add_principal("alice", departments=["engineering"])
    forge.catalog.add_principal("mallory", departments=["engineering"])
    return forge


@pytest.fixture(scope="module")
def url(forge):
    base, stop = start_in_thread(forge, port=0, tokens=TOKENS)
    yield base
    stop()


def client(url: str, key: str = "tok-alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def post(url: str, path: str, body: dict, headers: dict = AUTH) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, headers=headers, timeout=60)


def assert_error(r: httpx.Response, status: int, param: str | None, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["param"] == param and err["type"] and err["message"]
    if param is not None:
        assert f"'{param}'" in err["message"] or param.split(".")[0].split("[")[0] in err["message"]
    if code is not None:
        assert err["code"] == code
    assert "Traceback" not in r.text
    return err


def assert_still_serving(url: str) -> None:
    r = client(url).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=3)
    assert r.usage.completion_tokens > 0 and r.choices[0].finish_reason in ("length", "stop")


CHAT = {"model": MODEL, "messages": HELLO, "max_tokens": 4}
TEXT_PART_IMAGE = [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]

# (field overrides, the param the error names, its code); None in overrides removes the field
CHAT_CASES = [
    ({"model": 123}, "model", "invalid_value"),
    ({"model": None}, "model", "invalid_value"),
    ({"messages": "hello"}, "messages", "invalid_value"),
    ({"messages": []}, "messages", "invalid_value"),
    ({"messages": ["hello"]}, "messages[0]", "invalid_value"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages[0].role", "invalid_value"),
    ({"messages": [{"role": 1, "content": "hi"}]}, "messages[0].role", "invalid_value"),
    ({"messages": [{"role": "user"}]}, "messages[0].content", "invalid_value"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_value"),
    ({"messages": [{"role": "user", "content": None}]}, "messages[0].content", "invalid_value"),
    ({"messages": [{"role": "user", "content": TEXT_PART_IMAGE}]}, "messages[0].content[0].type", None),
    (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]},
        "messages[0].content[0].text",
        None,
    ),
    ({"max_tokens": -1}, "max_tokens", "invalid_value"),
    ({"max_tokens": 0}, "max_tokens", "invalid_value"),
    ({"max_tokens": 10**9}, "max_tokens", "invalid_value"),
    ({"max_tokens": "16"}, "max_tokens", "invalid_value"),
    ({"max_tokens": 1.5}, "max_tokens", "invalid_value"),
    ({"max_tokens": True}, "max_tokens", "invalid_value"),
    ({"max_completion_tokens": 0}, "max_completion_tokens", "invalid_value"),
    ({"temperature": -0.1}, "temperature", "invalid_value"),
    ({"temperature": 2.5}, "temperature", "invalid_value"),
    ({"temperature": "hot"}, "temperature", "invalid_value"),
    ({"top_p": -0.5}, "top_p", "invalid_value"),
    ({"top_p": 1.5}, "top_p", "invalid_value"),
    ({"top_p": 0}, "top_p", "invalid_value"),
    ({"n": 0}, "n", "invalid_value"),
    ({"n": "1"}, "n", "invalid_value"),
    ({"n": 2}, "n", "unsupported_parameter"),
    ({"stop": 5}, "stop", "invalid_value"),
    ({"stop": [1]}, "stop[0]", "invalid_value"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
    ({"stream": "yes"}, "stream", "invalid_value"),
    ({"stream": 1}, "stream", "invalid_value"),
    ({"stream_options": {"include_usage": True}}, "stream_options", "invalid_value"),  # without stream
    ({"stream": True, "stream_options": "usage"}, "stream_options", "invalid_value"),
    ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage", None),
    ({"stream": True, "stream_options": {"usage": True}}, "stream_options.usage", None),
    ({"presence_penalty": 2.5}, "presence_penalty", "invalid_value"),
    ({"presence_penalty": "high"}, "presence_penalty", "invalid_value"),
    ({"presence_penalty": 0.5}, "presence_penalty", "unsupported_parameter"),
    ({"frequency_penalty": -2.5}, "frequency_penalty", "invalid_value"),
    ({"frequency_penalty": 1.0}, "frequency_penalty", "unsupported_parameter"),
    ({"logprobs": "yes"}, "logprobs", "invalid_value"),
    ({"logprobs": True}, "logprobs", "unsupported_parameter"),
    ({"top_logprobs": 21}, "top_logprobs", "invalid_value"),
    ({"logit_bias": {"50256": "never"}}, "logit_bias.50256", "invalid_value"),
    ({"logit_bias": {"50256": -100}}, "logit_bias", "unsupported_parameter"),
    ({"seed": "42"}, "seed", "invalid_value"),
    ({"seed": 4.2}, "seed", "invalid_value"),
    ({"user": 5}, "user", "invalid_value"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "unsupported_parameter"),
    ({"response_format": {"type": "json_object"}}, "response_format", "unsupported_parameter"),
    ({"response_format": {"type": "yaml"}}, "response_format.type", "invalid_value"),
    ({"max_token": 5}, "max_token", "unknown_parameter"),
]


@pytest.mark.parametrize(
    ("override", "param", "code"), CHAT_CASES, ids=[f"{p}={o}"[:60] for o, p, _ in CHAT_CASES]
)
def test_chat_field_with_a_wrong_type_or_value_is_400_naming_it(url, override, param, code):
    body = {k: v for k, v in {**CHAT, **override}.items() if v is not None}
    assert_error(post(url, "/v1/chat/completions", body), 400, param, code)


COMPLETION = {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 4}
COMPLETION_CASES = [
    ({"prompt": 5}, "prompt", "invalid_value"),
    ({"prompt": []}, "prompt", "invalid_value"),
    ({"prompt": [1, 2, 3]}, "prompt[0]", "invalid_value"),
    ({"max_tokens": -3}, "max_tokens", "invalid_value"),
    ({"temperature": 3}, "temperature", "invalid_value"),
    ({"echo": True}, "echo", "unsupported_parameter"),
    ({"suffix": "end"}, "suffix", "unsupported_parameter"),
    ({"best_of": 3}, "best_of", "unsupported_parameter"),
    ({"logprobs": 9}, "logprobs", "invalid_value"),
    ({"messages": HELLO}, "messages", "unknown_parameter"),
]


@pytest.mark.parametrize(
    ("override", "param", "code"), COMPLETION_CASES, ids=[f"{p}={o}"[:60] for o, p, _ in COMPLETION_CASES]
)
def test_completions_field_with_a_wrong_type_or_value_is_400_naming_it(url, override, param, code):
    assert_error(post(url, "/v1/completions", {**COMPLETION, **override}), 400, param, code)


def test_a_body_that_is_not_a_json_object_is_400(url):
    for raw in (b"{not json", b"[1, 2]", b'"text"'):
        r = httpx.post(
            f"{url}/v1/chat/completions",
            content=raw,
            headers={**AUTH, "Content-Type": "application/json"},
            timeout=60,
        )
        assert_error(r, 400, None)


def test_the_openai_client_sees_the_same_errors(url):
    with pytest.raises(openai.BadRequestError) as exc:
        client(url).chat.completions.create(model=MODEL, messages=HELLO, temperature=5)
    assert exc.value.body["param"] == "temperature"
    with pytest.raises(openai.BadRequestError) as exc:
        client(url).chat.completions.create(model=MODEL, messages=HELLO, extra_body={"max_token": 5})
    assert exc.value.body["code"] == "unknown_parameter" and exc.value.body["param"] == "max_token"
    with pytest.raises(openai.NotFoundError) as exc:
        client(url).chat.completions.create(model="gpt-4o", messages=HELLO)
    assert exc.value.body["param"] == "model"


def test_neutral_values_and_ignored_fields_are_accepted(url):
    r = client(url).chat.completions.create(
        model=MODEL,
        messages=[{"role": "developer", "content": "Be brief."}, *HELLO],
        max_tokens=3,
        n=1,
        presence_penalty=0,
        frequency_penalty=0.0,
        logprobs=False,
        seed=7,
        user="someone-else",  # ignored: the caller is the token's principal
        response_format={"type": "text"},
        stop=None,
        temperature=None,
    )
    assert r.usage.completion_tokens > 0


def test_a_prompt_longer_than_the_context_is_400(forge, url):
    before = ledger_for(forge).usage()
    for stream in (False, True):
        body = {**CHAT, "messages": [{"role": "user", "content": LONG_PROMPT}], "stream": stream}
        err = assert_error(post(url, "/v1/chat/completions", body), 400, "messages")
        assert "context" in err["message"]
    err = assert_error(post(url, "/v1/completions", {**COMPLETION, "prompt": LONG_PROMPT}), 400, "prompt")
    assert "context" in err["message"]
    assert ledger_for(forge).usage() == before  # refused before any token was charged
    assert_still_serving(url)


def test_a_model_version_the_caller_may_not_be_served_is_403(forge, url, monkeypatch):
    """The local generator routes each caller to the adapter its lineage entitles it to
    (tests/local/test_governed_adapters.py trains real ones); here the routing refuses mallory,
    as ``unentitled: refuse`` does, and the server answers 403 on every path."""
    routed = forge.generator.router

    def router(user):
        if user == "mallory":
            raise NotEntitledError("'mallory' is not entitled to any version of helix-assistant")
        return routed(user)

    monkeypatch.setitem(forge.generator.__dict__, "router", router)
    mallory = {"Authorization": "Bearer tok-mallory"}
    for path, body in (
        ("/v1/chat/completions", CHAT),
        ("/v1/chat/completions", {**CHAT, "stream": True}),
        ("/v1/completions", COMPLETION),
    ):
        err = assert_error(post(url, path, body, mallory), 403, "model", "permission_denied")
        assert "not entitled" in err["message"]
    assert_still_serving(url)  # alice is still served


def test_a_token_revoked_mid_stream_ends_the_stream_with_a_401_error(forge, url, monkeypatch):
    monkeypatch.setattr(server_sse, "REVOCATION_CHECK_S", 0.0)  # check at every piece
    store = TokenStore.for_home(forge.home)
    token = store.create("alice")
    stream = client(url, token).chat.completions.create(
        model=MODEL, messages=HELLO, max_tokens=1500, stream=True
    )
    it = iter(stream)
    first = next(it)
    assert first.choices[0].delta.role == "assistant"
    store.revoke(token)
    with pytest.raises(openai.APIError) as exc:
        for _ in it:
            pass
    assert exc.value.body["code"] == "token_revoked" and exc.value.body["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):  # and the token is refused from now on
        client(url, token).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2)
    assert ledger_for(forge).usage()[0]["reserved"] == 0  # the hold was settled
    assert_still_serving(url)


def test_a_client_that_disconnects_mid_stream_is_charged_and_the_server_keeps_serving(forge, url):
    before = ledger_for(forge).usage()[0]["used"] if ledger_for(forge).usage() else 0
    body = {**CHAT, "max_tokens": 1500, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=AUTH, timeout=60) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")
    assert_still_serving(url)  # answered at once: the abandoned stream no longer holds the model
    [row] = ledger_for(forge).usage()
    assert row["reserved"] == 0 and row["used"] > before  # its tokens were charged
