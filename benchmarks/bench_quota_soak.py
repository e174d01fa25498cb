"""Quotas under a burst, then a soak: `llmforge serve` as its own process, real `openai` clients.

(a) Quota: 200 concurrent chat requests from a department whose daily quota admits about 20 of
them (each reserves its prompt + ``max_tokens`` before generating). Counts the admitted ones,
the tokens the ledger charged against the quota (must never exceed it) and checks that every
refusal is a 429 carrying the reset time (``Retry-After`` and "resets at" in the message).

(b) Soak: ``--soak-minutes`` of steady load from 16 clients (half streamed, half not) in an
unlimited department: requests, errors (must be 0) and the server process's RSS sampled every
10 s — start, after warm-up (the first sample at or past 30 s, or a quarter of the soak when
shorter), end and max. Flat: end within a few % of the post-warm-up value.

Afterwards the usage table is read back: one row per request of both phases.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_quota_soak.py [--model smollm2-135m-instruct]
        [--soak-minutes 5] [--skip-soak] [--json PATH]

Exits 1 when an invariant fails (quota overshot, a refusal that is not a 429 with its reset
time, a soak error).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _results import add_json_option, figure, write_json
from _serving import free_port, start_server
from bench_generate import QUESTIONS

MODEL = "llmforge-local"
QUOTA_DEPT, SOAK_DEPT = "marketing", "engineering"
TOKENS = {"tok-quota": "quincy", "tok-soak": "sophie"}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def prompt_tokens(model: str, home: Path, question: str) -> int:
    from llmforge_local.models import resolve_model
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(model, home))
    text = tok.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, tokenize=False
    )
    return len(tok(text, add_special_tokens=False)["input_ids"])


async def quota_burst(url: str, n: int, max_tokens: int) -> dict:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="tok-quota", max_retries=0, timeout=900)
    question = QUESTIONS[0]

    async def one() -> tuple[str, object]:
        try:
            r = await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": question}],
                max_tokens=max_tokens,
                temperature=0.0,
            )
            return "ok", r.usage.total_tokens
        except openai.RateLimitError as exc:
            retry = exc.response.headers.get("retry-after")
            body = exc.body if isinstance(exc.body, dict) else {}
            with_reset = bool(retry and int(retry) > 0 and "resets at" in body.get("message", ""))
            return "429", with_reset
        except openai.APIError as exc:
            return f"error {type(exc).__name__}: {exc}", None

    start = time.perf_counter()
    out = await asyncio.gather(*(one() for _ in range(n)))
    wall = time.perf_counter() - start
    await client.close()
    refusals = [x for k, x in out if k == "429"]
    return {
        "admitted": sum(1 for k, _ in out if k == "ok"),
        "answered_tokens": sum(x for k, x in out if k == "ok"),
        "refused": len(refusals),
        "refused_with_reset": sum(refusals),
        "other": [k for k, _ in out if k not in ("ok", "429")],
        "wall_s": wall,
    }


async def soak(url: str, pid: int, minutes: float, clients: int, max_tokens: int) -> dict:
    import openai

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="tok-soak", max_retries=0, timeout=900)
    duration = minutes * 60
    deadline = time.monotonic() + duration
    counts = {"requests": 0, "errors": 0, "tokens": 0}
    errors: list[str] = []
    samples: list[tuple[float, float]] = []

    async def worker(w: int) -> None:
        i = w
        while time.monotonic() < deadline:
            messages = [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]
            try:
                if i % 2:
                    r = await client.chat.completions.create(
                        model=MODEL, messages=messages, max_tokens=max_tokens
                    )
                    counts["tokens"] += r.usage.completion_tokens
                else:
                    stream = await client.chat.completions.create(
                        model=MODEL,
                        messages=messages,
                        max_tokens=max_tokens,
                        stream=True,
                        stream_options={"include_usage": True},
                    )
                    async for chunk in stream:
                        if chunk.usage is not None:
                            counts["tokens"] += chunk.usage.completion_tokens
            except Exception as exc:  # every failure counts: the soak must have none
                counts["errors"] += 1
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
            counts["requests"] += 1
            i += clients

    async def sampler() -> None:
        start = time.monotonic()
        while True:
            samples.append((time.monotonic() - start, rss_mib(pid)))
            if time.monotonic() >= deadline:
                return
            await asyncio.sleep(min(10.0, max(0.0, deadline - time.monotonic())))

    start = time.perf_counter()
    await asyncio.gather(sampler(), *(worker(w) for w in range(clients)))
    wall = time.perf_counter() - start
    await client.close()
    warm_at = min(30.0, duration / 4)
    warm = next(m for t, m in samples if t >= warm_at)
    return {
        **counts,
        "wall_s": wall,
        "first_errors": errors[:5],
        "rss_start": samples[0][1],
        "rss_warm": warm,
        "rss_end": samples[-1][1],
        "rss_max": max(m for _, m in samples),
        "samples": samples,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct", help="generator model spec")
    ap.add_argument("--requests", type=int, default=200, help="concurrent requests of the quota burst")
    ap.add_argument("--admit", type=int, default=20, help="requests the quota should admit")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--soak-minutes", type=float, default=5.0)
    ap.add_argument("--soak-clients", type=int, default=16)
    ap.add_argument("--skip-soak", action="store_true")
    ap.add_argument("--skip-quota", action="store_true", help="run the soak alone")
    ap.add_argument("--home", default=None, help="project folder (default: a new temporary one)")
    add_json_option(ap)
    args = ap.parse_args()

    import yaml

    import llmforge
    from llmforge.usage import read_usage

    root = Path(args.home or tempfile.mkdtemp(prefix="llmforge-bench-quota-"))
    home = root / "home"
    # the quota admits `--admit` requests: each reserves its prompt and max_tokens up front
    reserve = prompt_tokens(args.model, home, QUESTIONS[0]) + args.max_tokens
    limit = args.admit * reserve
    generator = {"name": "local", "options": {"model": args.model, "max_batch_size": 16}}
    config = {"home": "home", "components": {"generator": generator}, "quotas": {QUOTA_DEPT: limit}}
    (root / "llmforge.yaml").write_text(yaml.safe_dump(config))
    forge = llmforge.connect(config=str(root / "llmforge.yaml"), user="admin")
    forge.catalog.add_principal("admin", groups=["admins"])
    forge.catalog.add_principal("quincy", departments=[QUOTA_DEPT])
    forge.catalog.add_principal("sophie", departments=[SOAK_DEPT])

    port = free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "LLMFORGE_API_TOKENS": ",".join(f"{t}={p}" for t, p in TOKENS.items()),
    }
    proc = start_server(root, port, env)
    url = f"http://127.0.0.1:{port}"
    failures: list[str] = []
    figs: list[dict] = []
    s: dict = {}
    try:
        if not args.skip_quota:
            q = asyncio.run(quota_burst(url, args.requests, args.max_tokens))
            charged = next(r["used"] for r in forge.quotas.usage() if r["department"] == QUOTA_DEPT)
            print(
                f"(a) quota {limit} tokens ({args.admit} x {reserve} reserved each) for {QUOTA_DEPT}; "
                f"{args.requests} concurrent requests, max_tokens {args.max_tokens}: {q['admitted']} admitted, "
                f"{q['refused']} refused (429 with reset time: {q['refused_with_reset']}), "
                f"other errors {len(q['other'])}; charged {charged} tokens = {charged / limit:.1%} of the quota "
                f"(answers report {q['answered_tokens']}) in {q['wall_s']:.1f} s",
                flush=True,
            )
            if charged > limit:
                failures.append(f"charged {charged} > quota {limit}")
            if q["refused_with_reset"] != q["refused"] or q["other"]:
                failures.append(f"refusals not all 429 with a reset time: {q['other'][:3]}")
            figs += [
                figure("quota: requests admitted", q["admitted"], "requests", baseline=None),
                figure(
                    "quota: tokens charged",
                    charged,
                    "tokens",
                    better="lower",
                    baseline="the department's quota",
                    baseline_value=limit,
                ),
                figure(
                    "quota: refusals that are 429 with the reset time",
                    q["refused_with_reset"] / max(1, q["refused"]),
                    "fraction",
                ),
            ]
        if not args.skip_soak:
            s = asyncio.run(soak(url, proc.pid, args.soak_minutes, args.soak_clients, args.max_tokens))
            growth = (s["rss_end"] - s["rss_warm"]) / s["rss_warm"]
            print(
                f"(b) soak {args.soak_minutes:g} min, {args.soak_clients} clients, max_tokens "
                f"{args.max_tokens}: {s['requests']} requests, {s['errors']} errors, "
                f"{s['tokens'] / s['wall_s']:.1f} completion tokens/s; server RSS MiB start "
                f"{s['rss_start']:.0f}, after warm-up {s['rss_warm']:.0f}, end {s['rss_end']:.0f}, "
                f"max {s['rss_max']:.0f} (end vs warm-up {growth:+.1%})",
                flush=True,
            )
            print("    RSS samples (s, MiB): " + json.dumps([(round(t), round(m)) for t, m in s["samples"]]))
            if s["errors"]:
                failures.append(f"soak errors: {s['first_errors']}")
            figs += [
                figure("soak: requests served", s["requests"], "requests"),
                figure("soak: errors", s["errors"], "requests", better="lower"),
                figure("soak: completion tokens/s", s["tokens"] / s["wall_s"], "tokens/s"),
                figure("soak: server RSS growth after warm-up", 100 * growth, "%", better="lower"),
                figure("soak: server RSS max", s["rss_max"], "MiB", better="lower"),
            ]
    finally:
        proc.terminate()  # SIGTERM: a clean shutdown, which commits the queued usage rows
        proc.wait(timeout=120)
    rows = read_usage(forge, user="admin")
    by_dept = {d: sum(1 for r in rows if d in r["departments"]) for d in (QUOTA_DEPT, SOAK_DEPT)}
    print(f"usage table after shutdown: {len(rows)} rows ({by_dept})", flush=True)
    if not args.skip_quota and by_dept[QUOTA_DEPT] != args.requests:
        failures.append(f"usage table has {by_dept[QUOTA_DEPT]} quota-burst rows, not {args.requests}")
    if not args.skip_soak and by_dept[SOAK_DEPT] != s["requests"]:
        failures.append(f"usage table has {by_dept[SOAK_DEPT]} soak rows, not {s['requests']}")
    if args.json:
        note = (
            f"model {args.model}, max_tokens {args.max_tokens}, quota {limit} tokens; soak "
            f"{'skipped' if args.skip_soak else f'{args.soak_minutes:g} min x {args.soak_clients} clients'}"
        )
        write_json(args.json, "quota_soak", figs, note)
    if failures:
        print("FAIL: " + "; ".join(failures), flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
