"""Issue 10, items 5-6, replayed as attacks on the server and the CLI: oversized bodies,
messages and prompts are refused (413) before any tokenisation or quota work; text that is not
valid Unicode is a 400 on chat, completions and ``rag``, and a clear CLI error."""

from __future__ import annotations

import json

import httpx
import pytest
from fixtures.index import INDEX, make_governed

import llmforge
from llmforge.server import start_in_thread

TOKENS = {"tok-alice": "alice"}
AUTH = {"Authorization": "Bearer tok-alice", "Content-Type": "application/json"}
LIMITS = {"max_request_bytes": 256 * 1024, "max_message_chars": 2000, "max_prompt_chars": 3000}


@pytest.fixture(scope="module")
def forge(tmp_path_factory):
    forge = llmforge.connect(
        backend="local",
        home=str(tmp_path_factory.mktemp("limits") / "home"),
        user="admin",
        config={"rag": {"index": INDEX, "max_tokens": 4}, "limits": LIMITS},
        generator={"name": "local", "options": {"model": "tiny-random-llama", "max_new_tokens": 4}},
    )
    return make_governed(forge)


@pytest.fixture(scope="module")
def url(forge):
    base, stop = start_in_thread(forge, tokens=TOKENS)
    yield base
    stop()


@pytest.fixture
def work(forge, monkeypatch):
    """Records every tokenisation, generation and retrieval the server starts."""
    calls: list[str] = []
    gen = forge.generator
    for name in ("count_prompt_tokens", "chat", "stream", "complete_batch", "chat_batch"):
        real = getattr(gen, name)

        def spy(*a, _real=real, _name=name, **kw):
            calls.append(_name)
            return _real(*a, **kw)

        monkeypatch.setattr(gen, name, spy)
    real_ask = forge.rag.ask

    def ask(*a, **kw):
        calls.append("rag.ask")
        return real_ask(*a, **kw)

    monkeypatch.setattr(forge.rag, "ask", ask)
    return calls


def usage(forge) -> list[dict]:
    return forge.quotas.usage()


def post(url: str, path: str, body: bytes | str | dict, **kw) -> httpx.Response:
    data = json.dumps(body) if isinstance(body, dict) else body
    return httpx.post(f"{url}{path}", content=data, headers=AUTH, timeout=60, **kw)


def user(content: str) -> list[dict]:
    return [{"role": "user", "content": content}]


# ---- 5. limits before work --------------------------------------------------------------------


def test_attack_20_mb_message_is_413_before_any_work(forge, url, work):
    before = usage(forge)
    body = {"model": "llmforge-local", "messages": user("x" * 20_000_000)}
    try:
        r = post(url, "/v1/chat/completions", body)
    except httpx.TransportError:  # the server may close before the client has sent it all
        pytest.fail("the server dropped the connection instead of answering 413")
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "request_too_large" and "max_request_bytes" in r.text
    assert work == [] and usage(forge) == before


def test_attack_chunked_body_without_length_is_cut_at_the_limit(forge, url, work):
    def chunks():
        yield b'{"model": "llmforge-local", "messages": [{"role": "user", "content": "'
        for _ in range(64):
            yield b"y" * 8192
        yield b'"}]}'

    r = httpx.post(f"{url}/v1/chat/completions", content=chunks(), headers=AUTH, timeout=60)
    assert r.status_code == 413 and work == []


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/chat/completions", {"model": "llmforge-local", "messages": user("m" * 2001)}),
        ("/v1/chat/completions", {"model": "llmforge-local", "messages": user("m" * 1600) * 2}),
        ("/v1/chat/completions", {"model": "rag", "messages": user("m" * 2001)}),
        ("/v1/chat/completions", {"model": "llmforge-local", "stream": True, "messages": user("m" * 2001)}),
        ("/v1/completions", {"model": "llmforge-local", "prompt": "p" * 2001}),
        ("/v1/completions", {"model": "llmforge-local", "prompt": ["p" * 1000] * 4}),
        ("/v1/completions", {"model": "rag", "prompt": ["p" * 1000] * 4}),
    ],
    ids=["message", "prompt-total", "rag", "stream", "completion", "completion-batch", "rag-batch"],
)
def test_attack_oversized_messages_are_413_before_tokenisation(forge, url, work, path, body):
    before = usage(forge)
    r = post(url, path, body)
    assert r.status_code == 413, r.text
    err = r.json()["error"]
    assert err["code"] == "request_too_large" and "limits.max_" in err["message"]
    assert work == [] and usage(forge) == before


def test_requests_within_the_limits_still_work(url, work):
    r = post(url, "/v1/chat/completions", {"model": "llmforge-local", "messages": user("hi " * 600)})
    assert r.status_code == 200 and "chat" in work


# ---- 6. bad text is a 400, not a 500 ----------------------------------------------------------

SURROGATE = '"\\ud800 what is the leave policy?"'


@pytest.mark.parametrize(
    "path, raw",
    [
        (
            "/v1/chat/completions",
            '{"model": "llmforge-local", "messages": [{"role": "user", "content": %s}]}',
        ),
        (
            "/v1/chat/completions",
            '{"model": "llmforge-local", "stream": true, "messages": [{"role": "user", "content": %s}]}',
        ),
        ("/v1/chat/completions", '{"model": "rag", "messages": [{"role": "user", "content": %s}]}'),
        ("/v1/completions", '{"model": "llmforge-local", "prompt": %s}'),
        ("/v1/completions", '{"model": "rag", "prompt": [%s]}'),
        ("/v1/chat/completions", '{"model": %s, "messages": [{"role": "user", "content": "hi"}]}'),
        (
            "/v1/chat/completions",
            '{"model": "llmforge-local", "stop": [%s], "messages": [{"role": "user", "content": "hi"}]}',
        ),
    ],
    ids=["chat", "stream", "rag", "completion", "rag-completion", "model-name", "stop"],
)
def test_attack_lone_surrogate_is_400_json(forge, url, work, path, raw):
    before = usage(forge)
    r = post(url, path, raw % SURROGATE)
    assert r.status_code == 400, r.text
    assert "Unicode" in r.json()["error"]["message"] and "Traceback" not in r.text
    assert work == [] and usage(forge) == before


@pytest.mark.parametrize(
    "args",
    [["ask", "caf\udce9 policy?"], ["index", "query", INDEX, "caf\udce9"], ["token", "create", "b\udce9b"]],
    ids=["ask", "index-query", "token-create"],
)
def test_attack_latin1_bytes_in_cli_arguments_are_one_line(forge, capsys, args):
    from llmforge.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--home", str(forge.home), "--user", "alice", *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "UTF-8" in err and "0xe9" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
