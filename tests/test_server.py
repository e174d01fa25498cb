"""The OpenAI-compatible server, over real HTTP on loopback, queried with the `openai` client."""

from __future__ import annotations

import httpx
import openai
import pytest
from fixtures.generation import generator_config

import llmforge
from llmforge.components import Usage
from llmforge.quotas import ledger_for
from llmforge.rag import Answer
from llmforge.server import start_in_thread
from llmforge.tokens import TOKENS_ENV, TokenStore

TOKENS = {"tok-alice": "alice", "tok-bob": "bob"}
MODEL = "llmforge-local"
HELLO = [{"role": "user", "content": "Who owns Project Helix?"}]


class RecordingRag:
    """Stands in for forge.rag (its own tests live with it): records who asked what."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def ask(self, question: str, user: str | None = None) -> Answer:
        self.calls.append((question, user))
        return Answer(
            text="Alice owns Project Helix.",
            request_id="req-1",
            citations=[{"table": "main.knowledge.documents", "version": 3, "primary_key": "d-eng-1"}],
            usage=Usage(40, 6),
        )


@pytest.fixture(scope="module")
def forge(tmp_path_factory, chat_model_dir):
    home = tmp_path_factory.mktemp("server") / "home"
    forge = llmforge.connect(
        backend="local",
        home=str(home),
        user="admin",
        config={"quotas": {"sales": 60, "engineering": 100_000}},
        generator=generator_config(chat_model_dir, max_new_tokens=16),
    )
    forge.catalog.add_principal("alice", departments=["engineering"])
    forge.catalog.add_principal("bob", departments=["sales"])
    forge.__dict__["rag"] = RecordingRag()
    return forge


@pytest.fixture(scope="module")
def url(forge):
    base, stop = start_in_thread(forge, port=0, tokens=TOKENS)
    yield base
    stop()


def client(url: str, key: str = "tok-alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


def used(forge, dept: str) -> int:
    return next((r["used"] for r in ledger_for(forge).usage() if r["department"] == dept), 0)


def test_health_and_models(url):
    assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
    ids = [m.id for m in client(url).models.list()]
    assert ids == [MODEL, "rag"]


def test_chat_matches_the_generator_and_charges_the_department(forge, url):
    before = used(forge, "engineering")
    r = client(url).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=8)
    direct = forge.generator.chat(HELLO, max_tokens=8)
    assert r.choices[0].message.content == direct.text
    assert r.choices[0].finish_reason == direct.finish_reason == "length"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (direct.usage.prompt_tokens, 8)
    assert used(forge, "engineering") - before == r.usage.total_tokens
    assert ledger_for(forge).usage()[0]["reserved"] == 0  # the reservation was settled


def test_streaming_gives_the_same_text_and_usage(forge, url):
    whole = client(url).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=10, stop=["zzz"])
    chunks = list(
        client(url).chat.completions.create(
            model=MODEL,
            messages=HELLO,
            max_tokens=10,
            stop=["zzz"],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 1  # really incremental
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.total_tokens == whole.usage.total_tokens


def test_a_prompt_beginning_seen_before_is_reported_cached_and_charged_in_full(forge, url):
    """The prefix cache, as an OpenAI client sees it: ``usage.prompt_tokens_details.cached_tokens``
    on the caller's second prompt that starts like its first (plain and streamed); the prompt is
    still counted and charged whole, and another caller's prompt never uses the first's cache."""
    system = {
        "role": "system",
        "content": "You answer questions for the Orion programme office. Quote the status report "
        "you used, give dates as written there, and say plainly when no report holds the answer.",
    }
    c = client(url)
    first = c.chat.completions.create(model=MODEL, messages=[system, HELLO[0]], max_tokens=4)
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    before = used(forge, "engineering")
    ask = [system, {"role": "user", "content": "When does Orion ship?"}]
    second = c.chat.completions.create(model=MODEL, messages=ask, max_tokens=4)
    assert second.usage.prompt_tokens_details.cached_tokens >= 32
    assert second.usage.prompt_tokens > second.usage.prompt_tokens_details.cached_tokens
    assert used(forge, "engineering") - before == second.usage.total_tokens
    streamed = list(
        c.chat.completions.create(
            model=MODEL, messages=ask, max_tokens=4, stream=True, stream_options={"include_usage": True}
        )
    )
    assert streamed[-1].usage.prompt_tokens_details.cached_tokens >= 32
    other = forge.generator.chat(ask, max_tokens=4, user="carol")
    assert other.usage.cached_tokens == 0 and other.text == second.choices[0].message.content


def test_concurrent_requests_are_all_answered_and_all_charged(forge, url):
    from concurrent.futures import ThreadPoolExecutor

    before = used(forge, "engineering")
    asks = [[{"role": "user", "content": f"Question number {i}?"}] for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        replies = list(
            pool.map(
                lambda m: client(url).chat.completions.create(model=MODEL, messages=m, max_tokens=5), asks
            )
        )
    for m, r in zip(asks, replies, strict=True):
        assert r.choices[0].message.content == forge.generator.chat(m, max_tokens=5).text
    assert used(forge, "engineering") - before == sum(r.usage.total_tokens for r in replies)


def test_completions_batch_prompts(url):
    r = client(url).completions.create(
        model=MODEL, prompt=["Once upon a time", "The capital of"], max_tokens=4
    )
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.text for c in r.choices) and r.usage.completion_tokens == 8


def test_rag_answers_for_the_caller_with_citations(forge, url):
    r = client(url, "tok-alice").chat.completions.create(
        model="rag", messages=[{"role": "system", "content": "be brief"}, *HELLO]
    )
    assert r.choices[0].message.content == "Alice owns Project Helix."
    assert r.model_extra["citations"] == [
        {"table": "main.knowledge.documents", "version": 3, "primary_key": "d-eng-1"}
    ]
    assert forge.rag.calls[-1] == (HELLO[0]["content"], "alice")  # identity from the token, not the body
    assert r.usage.total_tokens == 46


def test_unauthenticated_requests_get_401_json(url):
    with pytest.raises(openai.AuthenticationError) as exc:
        client(url, "wrong").models.list()
    assert exc.value.body["code"] == "invalid_api_key"
    r = httpx.post(
        f"{url}/v1/chat/completions",
        json={"model": MODEL, "messages": HELLO},
        headers={"X-Llmforge-User": "alice"},
    )  # not trusted unless the server says so
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"


def test_unknown_model_is_404(url):
    with pytest.raises(openai.NotFoundError) as exc:
        client(url).chat.completions.create(model="gpt-4", messages=HELLO)
    assert exc.value.body["code"] == "model_not_found" and MODEL in exc.value.body["message"]


def test_invalid_requests_are_400_json(url):
    with pytest.raises(openai.BadRequestError) as exc:
        client(url).chat.completions.create(model=MODEL, messages=[])
    assert "messages" in exc.value.body["message"]
    r = httpx.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": "Bearer tok-alice"},
        json={"model": MODEL, "messages": HELLO, "max_tokens": -1, "temperature": 9},
    )
    assert r.status_code == 400
    body = r.json()["error"]
    assert "max_tokens" in body["message"] and "temperature" in body["message"]
    assert "Traceback" not in r.text


def test_generator_input_errors_are_400(url):
    with pytest.raises(openai.BadRequestError) as exc:  # prompt + max_tokens beyond the context
        client(url).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=4000)
    assert "context" in exc.value.body["message"]


def test_quota_exceeded_is_429_with_retry_after(forge, url):
    before = used(forge, "sales")
    with pytest.raises(openai.RateLimitError) as exc:
        client(url, "tok-bob").chat.completions.create(model=MODEL, messages=HELLO, max_tokens=200)
    assert exc.value.body["type"] == "insufficient_quota"
    assert "'sales'" in exc.value.body["message"] and "resets at" in exc.value.body["message"]
    assert int(exc.value.response.headers["retry-after"]) > 0
    assert used(forge, "sales") == before  # a refused request costs nothing


def test_unexpected_failures_are_500_json_without_traceback(forge, url, monkeypatch):
    def boom(*a, **kw):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(forge.generator, "chat", boom)
    r = httpx.post(
        f"{url}/v1/chat/completions",
        headers={"Authorization": "Bearer tok-alice"},
        json={"model": MODEL, "messages": HELLO, "max_tokens": 4},
    )
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "internal_error"
    assert "secret internals" not in r.text and "Traceback" not in r.text
    assert ledger_for(forge).usage()[0]["reserved"] == 0  # the reservation was released


def test_tokens_from_file_and_env_and_the_trusted_header(forge, monkeypatch):
    token = TokenStore.for_home(forge.home).create("alice")
    assert token not in (forge.home / "api_tokens.json").read_text()  # only the hash is stored
    monkeypatch.setenv(TOKENS_ENV, "env-tok=bob")
    base, stop = start_in_thread(forge, trust_user_header=True)
    try:
        assert [m.id for m in client(base, token).models.list()][0] == MODEL
        assert client(base, "env-tok").models.list().data
        r = httpx.get(f"{base}/v1/models", headers={"X-Llmforge-User": "alice"})
        assert r.status_code == 200
        assert httpx.get(f"{base}/v1/models").status_code == 401
    finally:
        stop()


def test_rag_model_charges_the_ledger_exactly_once(echo_forge):
    """The server leaves the charge to forge.rag.ask (one hold per answer), so a `rag` request is
    charged once: neither twice (server + rag) nor never."""
    base, stop = start_in_thread(echo_forge, tokens={"tok-alice": "alice"})
    try:
        r = client(base).chat.completions.create(model="rag", messages=HELLO)
    finally:
        stop()
    [row] = [u for u in echo_forge.quotas.usage() if u["department"] == "engineering"]
    assert (row["requests"], row["used"], row["reserved"]) == (1, r.usage.total_tokens, 0)
    assert r.usage.total_tokens > 0
