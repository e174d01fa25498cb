"""The engine behind `llmforge serve`: a disconnected stream stops at the next step and the
tokens it produced are charged; concurrent clients share decode steps."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
from fixtures.generation import generator_config

import llmforge
from llmforge.quotas import ledger_for
from llmforge.server import start_in_thread

LONG = 1500  # the tiny model runs to max_tokens (checked below), so only a cancel ends it early
HELLO = [{"role": "user", "content": "Tell me everything about Project Helix."}]


@pytest.fixture(scope="module")
def served(tmp_path_factory, chat_model_dir):
    home = tmp_path_factory.mktemp("engine-serve") / "home"
    forge = llmforge.connect(
        backend="local",
        home=str(home),
        user="admin",
        config={"quotas": {"engineering": 100_000, "sales": 10}},
        generator=generator_config(chat_model_dir),
    )
    forge.catalog.add_principal("alice", departments=["engineering"])
    forge.catalog.add_principal("sam", departments=["sales"])
    base, stop = start_in_thread(forge, tokens={"tok-alice": "alice", "tok-sam": "sam"})
    yield forge, base
    stop()


def until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def row(forge) -> dict:
    return next(r for r in ledger_for(forge).usage() if r["department"] == "engineering")


def test_a_disconnected_stream_is_cancelled_and_its_tokens_are_charged(served):
    forge, base = served
    gen = forge.generator
    assert gen.chat(HELLO, max_tokens=LONG).finish_reason == "length"  # it would run the whole way
    engine = gen.engine(gen.loaded())
    before = row(forge)["used"]
    prompt = gen.count_prompt_tokens(HELLO)
    body = {"model": "llmforge-local", "messages": HELLO, "max_tokens": LONG, "stream": True}
    headers = {"Authorization": "Bearer tok-alice"}
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, headers=headers, timeout=60) as r:
        assert r.status_code == 200
        chunks = 0
        for line in r.iter_lines():
            chunks += line.startswith("data: ")
            if chunks == 4:
                break  # the client goes away mid-answer
    until(lambda: engine.running() == 0 and row(forge)["reserved"] == 0)
    charged = row(forge)["used"] - before
    assert prompt < charged < prompt + LONG  # its produced tokens, not the whole reservation
    # the model is free again at once: a small request is not queued behind the rest
    c = gen.chat(HELLO, max_tokens=3)
    assert c.usage.completion_tokens == 3


def test_concurrent_requests_share_decode_steps(served):
    forge, base = served
    gen = forge.generator
    engine = gen.engine(gen.loaded())
    engine.step_sizes.clear()
    out: dict[int, str] = {}

    def ask(i: int) -> None:
        r = httpx.post(
            f"{base}/v1/chat/completions",
            json={"model": "llmforge-local", "messages": HELLO, "max_tokens": 40 + i},
            headers={"Authorization": "Bearer tok-alice"},
            timeout=120,
        )
        out[i] = r.json()["choices"][0]["message"]["content"]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(engine.step_sizes) > 1
    alone = gen.chat(HELLO, max_tokens=43).text
    assert out[3] == alone and all(alone.startswith(out[i]) for i in range(3))


def scrape(base: str) -> dict[str, float]:
    text = httpx.get(f"{base}/metrics").text
    return {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_metrics_and_health_report_requests_tokens_latency_and_refusals(served):
    forge, base = served
    before = scrape(base)
    body = {"model": "llmforge-local", "messages": HELLO, "max_tokens": 5}
    alice = {"Authorization": "Bearer tok-alice"}
    first = httpx.post(f"{base}/v1/chat/completions", json=body, headers=alice, timeout=60)
    assert first.status_code == 200
    streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=streamed, headers=alice, timeout=60) as r:
        events = [json.loads(x[6:]) for x in r.iter_lines() if x.startswith("data: {")]
        assert len(events) > 2
    cached = sum(
        u["prompt_tokens_details"]["cached_tokens"] for u in (first.json()["usage"], events[-1]["usage"])
    )
    sam = {"Authorization": "Bearer tok-sam"}
    assert httpx.post(f"{base}/v1/chat/completions", json=body, headers=sam, timeout=60).status_code == 429
    after = scrape(base)

    def grew(key: str) -> float:
        return after.get(key, 0) - before.get(key, 0)

    assert grew('llmforge_requests_total{route="/v1/chat/completions",status="200"}') == 2
    assert grew('llmforge_requests_total{route="/v1/chat/completions",status="429"}') == 1
    assert grew("llmforge_quota_rejections_total") == 1
    assert grew('llmforge_tokens_total{kind="completion"}') == 10  # 5 + 5, exact
    assert grew('llmforge_request_latency_seconds_count{route="/v1/chat/completions"}') == 2
    assert grew('llmforge_time_to_first_token_seconds_count{route="/v1/chat/completions"}') == 1
    assert grew("llmforge_batch_size_count") >= 8  # one observation per decode step
    assert cached > 0 and grew("llmforge_prefix_cache_tokens_total") == cached  # the repeat's prompt
    assert after["llmforge_queue_depth"] == 0
    health = httpx.get(f"{base}/health").json()
    assert health["status"] == "ok" and health["llmforge_running_sequences"] == 0
    assert "llmforge-local" in health["models"]
