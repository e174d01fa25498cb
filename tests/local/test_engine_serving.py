"""The engine behind `llmforge serve`: a disconnected stream stops at the next step and the
tokens it produced are charged; concurrent clients share decode steps."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from fixtures.generation import generator_config

import llmforge
from llmforge.quotas import ledger_for
from llmforge.server import start_in_thread

LONG = 1000  # the tiny model runs to max_tokens (checked below), so only a cancel ends it early
HELLO = [{"role": "user", "content": "Tell me everything about Project Helix."}]


@pytest.fixture(scope="module")
def served(tmp_path_factory, chat_model_dir):
    home = tmp_path_factory.mktemp("engine-serve") / "home"
    forge = llmforge.connect(
        backend="local",
        home=str(home),
        user="admin",
        config={"quotas": {"engineering": 100_000}},
        generator=generator_config(chat_model_dir),
    )
    forge.catalog.add_principal("alice", departments=["engineering"])
    base, stop = start_in_thread(forge, tokens={"tok-alice": "alice"})
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
    # the model is free again at once: a small request is not queued behind 1000 tokens
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
