"""The usage table: one row per served request (every route, streams, errors, `rag`), written
in batches off the hot path, flushed on a clean shutdown, readable by admins only, and
summarised by `llmforge usage`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import httpx
import openai
import pytest
from fixtures.generation import generator_config

import llmforge
from llmforge.cli import main
from llmforge.errors import PermissionDeniedError
from llmforge.server import start_in_thread
from llmforge.usage import USAGE_TABLE, read_usage, summarise

MODEL = "llmforge-local"
HELLO = [{"role": "user", "content": "Who owns Project Helix?"}]
TOKENS = {"tok-alice": "alice", "tok-bob": "bob"}


def client(url: str, key: str = "tok-alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def served(tmp_path_factory, chat_model_dir):
    """A server that answered one request of each kind and was then stopped: (forge, replies)."""
    home = tmp_path_factory.mktemp("usage") / "home"
    forge = llmforge.connect(
        backend="local",
        home=str(home),
        user="admin",
        config={"quotas": {"sales": 30}},
        generator=generator_config(chat_model_dir),
    )
    forge.catalog.add_principal("admin", groups=["admins"])
    forge.catalog.add_principal("alice", departments=["engineering", "research"])
    forge.catalog.add_principal("bob", departments=["sales"])
    url, stop = start_in_thread(forge, tokens=TOKENS)
    replies: dict = {}
    try:
        replies["chat"] = client(url).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=5)
        chunks = list(
            client(url).chat.completions.create(
                model=MODEL,
                messages=HELLO,
                max_tokens=6,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        replies["stream"] = chunks[-1]
        replies["completion"] = client(url).completions.create(
            model=MODEL, prompt=["Once upon a time", "The capital of"], max_tokens=3
        )
        with pytest.raises(openai.RateLimitError):
            client(url, "tok-bob").chat.completions.create(model=MODEL, messages=HELLO, max_tokens=500)
        with pytest.raises(openai.BadRequestError):
            client(url).chat.completions.create(model=MODEL, messages=HELLO, temperature=7)
        with pytest.raises(openai.AuthenticationError):
            client(url, "nope").chat.completions.create(model=MODEL, messages=HELLO)
        body = {"model": MODEL, "messages": HELLO, "max_tokens": 1500, "stream": True}
        auth = {"Authorization": "Bearer tok-alice"}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=auth, timeout=60) as r:
            next(r.iter_lines())  # then hang up mid-answer
        client(url).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2)  # after it
    finally:
        stop()  # a clean shutdown: every queued row is committed
    return forge, replies


def rows_by(forge) -> list[dict]:
    return sorted(read_usage(forge), key=lambda r: r["ts"])


def test_every_request_has_one_row_after_a_clean_shutdown(served):
    forge, replies = served
    rows = rows_by(forge)
    assert [(r["route"], r["status"], r["stream"]) for r in rows] == [
        ("/v1/chat/completions", 200, False),
        ("/v1/chat/completions", 200, True),
        ("/v1/completions", 200, False),
        ("/v1/chat/completions", 429, False),
        ("/v1/chat/completions", 400, False),
        ("/v1/chat/completions", 401, False),
        ("/v1/chat/completions", 499, True),
        ("/v1/chat/completions", 200, False),
    ]
    assert len({r["request_id"] for r in rows}) == len(rows)


def test_rows_hold_the_caller_tokens_and_times(served):
    forge, replies = served
    chat, stream, completion, quota, invalid, anonymous, gone, _ = rows_by(forge)
    assert chat["request_id"] == replies["chat"].id
    assert (chat["principal"], chat["departments"]) == ("alice", ["engineering", "research"])
    assert (chat["model"], chat["adapter"]) == (MODEL, None)  # the bare base model answered
    u = replies["chat"].usage
    assert (chat["prompt_tokens"], chat["completion_tokens"]) == (u.prompt_tokens, u.completion_tokens)
    assert chat["latency_ms"] > 0 and chat["ttft_ms"] is None
    assert (stream["prompt_tokens"], stream["completion_tokens"]) == (
        replies["stream"].usage.prompt_tokens,
        replies["stream"].usage.completion_tokens,
    )
    assert 0 < stream["ttft_ms"] <= stream["latency_ms"]
    assert completion["completion_tokens"] == replies["completion"].usage.completion_tokens == 6
    assert (quota["principal"], quota["departments"], quota["completion_tokens"]) == ("bob", ["sales"], 0)
    assert invalid["principal"] == "alice" and invalid["completion_tokens"] == 0
    assert anonymous["principal"] is None and anonymous["departments"] == []
    # the abandoned stream was cancelled: it produced some tokens, not the 1500 it asked for
    assert 0 < gone["completion_tokens"] < 1500
    assert gone["answer_id"] is None


def test_only_admins_may_read_it(served):
    forge, _ = served
    assert read_usage(forge, user="admin")
    with pytest.raises(PermissionDeniedError, match="admins"):
        read_usage(forge, user="alice")
    with pytest.raises(PermissionDeniedError):
        forge.table(USAGE_TABLE, user="bob").read()


def test_the_cli_summarises_per_department_and_day(served, capsys):
    forge, _ = served
    home = str(forge.home)
    with pytest.raises(SystemExit) as done:
        main(["--home", home, "--user", "admin", "usage", "--json"])
    assert done.value.code == 0
    out = json.loads(capsys.readouterr().out)
    today = datetime.now(UTC).date().isoformat()
    by = {(r["department"], r["day"]): r for r in out}
    # alice's requests count in both her departments; the anonymous one is unassigned
    assert by[("engineering", today)]["requests"] == by[("research", today)]["requests"] == 6
    assert by[("engineering", today)]["errors"] == 2  # the 400 and the 499
    assert by[("sales", today)] == {
        **by[("sales", today)],
        "requests": 1,
        "errors": 1,
        "completion_tokens": 0,
    }
    assert by[("unassigned", today)]["requests"] == 1
    rows = rows_by(forge)
    eng = [r for r in rows if "engineering" in r["departments"]]
    assert by[("engineering", today)]["completion_tokens"] == sum(r["completion_tokens"] for r in eng)

    with pytest.raises(SystemExit):
        main(["--home", home, "--user", "admin", "usage", "--department", "sales"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["department", "day", "requests"] and len(table) == 2
    with pytest.raises(SystemExit):
        main(["--home", home, "--user", "admin", "usage", "--json", "--until", "2000-01-01"])
    assert json.loads(capsys.readouterr().out) == []


def test_the_cli_refuses_a_non_admin_clearly(served, capsys):
    forge, _ = served
    with pytest.raises(SystemExit) as done:
        main(["--home", str(forge.home), "--user", "alice", "usage"])
    assert done.value.code == 1
    err = capsys.readouterr().err
    assert "admins" in err and "alice" in err and "Traceback" not in err


def test_a_rag_row_joins_the_request_log(echo_forge):
    url, stop = start_in_thread(echo_forge, tokens={"tok-alice": "alice"})
    try:
        r = client(url).chat.completions.create(model="rag", messages=HELLO)
    finally:
        stop()
    [row] = read_usage(echo_forge)
    assert (row["model"], row["status"], row["answer_id"]) == ("rag", 200, r.model_extra["request_id"])
    assert row["prompt_tokens"] + row["completion_tokens"] == r.usage.total_tokens
    logged = echo_forge.rag.lineage(row["answer_id"], user="alice")  # joins the request log, lineage
    assert logged["request"]["user"] == "alice"


def _row(day: str, depts: list[str], latency: float, status: int = 200) -> dict:
    return {
        "ts": datetime.fromisoformat(f"{day}T12:00:00+00:00"),
        "departments": depts,
        "latency_ms": latency,
        "status": status,
        "prompt_tokens": 10,
        "completion_tokens": 5,
    }


def test_summarise_filters_days_and_departments_and_takes_percentiles():
    rows = [_row("2026-03-01", ["eng"], float(ms)) for ms in range(1, 101)]
    rows += [_row("2026-03-02", ["eng", "hr"], 50.0, 429), _row("2026-03-03", [], 10.0)]
    out = summarise(rows)
    assert [(r["department"], r["day"], r["requests"]) for r in out] == [
        ("eng", "2026-03-01", 100),
        ("eng", "2026-03-02", 1),
        ("hr", "2026-03-02", 1),
        ("unassigned", "2026-03-03", 1),
    ]
    first = out[0]
    assert (first["p50_latency_ms"], first["p95_latency_ms"]) == (50.5, 95.0)
    assert (first["prompt_tokens"], first["completion_tokens"], first["errors"]) == (1000, 500, 0)
    assert out[1]["errors"] == 1
    picked = summarise(rows, since=date(2026, 3, 2), until=date(2026, 3, 2), department="hr")
    assert [(r["department"], r["day"]) for r in picked] == [("hr", "2026-03-02")]


@pytest.mark.slow  # starts `llmforge serve` as its own process
def test_sigterm_to_llmforge_serve_commits_every_queued_row(tmp_path, chat_model_dir):
    """`llmforge serve` stopped by SIGTERM (what a service manager sends) flushes the writer at
    its lifespan's shutdown: uvicorn re-raises the signal afterwards, so later code never runs."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import yaml

    config = tmp_path / "llmforge.yaml"
    generator = generator_config(chat_model_dir)
    config.write_text(yaml.safe_dump({"home": "home", "components": {"generator": generator}}))
    forge = llmforge.connect(config=str(config), user="admin")
    forge.catalog.add_principal("admin", groups=["admins"])
    forge.catalog.add_principal("alice", departments=["engineering"])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LLMFORGE_API_TOKENS": "tok-alice=alice"}
    cmd = [sys.executable, "-m", "llmforge", "--config", str(config), "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        ids = [
            client(url).chat.completions.create(model=MODEL, messages=HELLO, max_tokens=2).id
            for _ in range(4)
        ]
    finally:
        proc.send_signal(signal.SIGTERM)  # at once: rows since the last periodic flush are queued
        proc.wait(timeout=60)
    assert sorted(r["request_id"] for r in read_usage(forge)) == sorted(ids)


def test_a_failed_commit_keeps_its_rows_for_the_next_flush(forge, monkeypatch):
    from llmforge import usage

    real, calls = usage.usage_table, []

    def flaky(f):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk full")
        return real(f)

    monkeypatch.setattr(usage, "usage_table", flaky)
    forge.catalog.add_principal("admin", groups=["admins"])
    log = usage.UsageLog(forge, flush_s=3600)  # only explicit flushes here
    try:
        for n in range(3):
            log.add(usage.UsageRecord(route="/v1/completions", request_id=f"r{n}").row(200, 0.01, None))
        assert log.flush() == 0  # the commit failed: nothing written, nothing dropped
        assert log.flush() == 3
    finally:
        log.close()
    assert sorted(r["request_id"] for r in read_usage(forge)) == ["r0", "r1", "r2"]


def test_the_adapter_is_the_registered_version_that_answered():
    from llmforge.usage import UsageRecord

    rec = UsageRecord(route="/v1/chat/completions")
    rec.served_by("smollm2-135m-instruct")  # the bare base model
    assert rec.adapter is None
    rec.served_by("models:/helix-assistant/3")  # a routed per-department adapter
    assert rec.row(200, 0.1, None)["adapter"] == "models:/helix-assistant/3"
