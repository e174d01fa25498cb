"""Prefix cache: tokens/s and time-to-first-token with it vs the same engine without it.

A deployment's prompts share a long beginning (its system prompt, a RAG prompt's
instructions) and differ after it. ``--clients`` closed-loop clients (threads calling the
continuous-batching engine directly, so no HTTP in the figure) each send their next request as
their last one ends; every request is distinct (``Ticket N: <question>``) after one shared
system prompt of about ``--system-tokens`` tokens. Each round runs the same kind of load twice,
once with the prefix cache and once with it switched off (``capacity`` 0), in alternating
order, on one engine and one loaded model in one process.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_prefix_cache.py [--clients 16]
        [--requests 48] [--rounds 2] [--system-tokens 300] [--max-tokens 48] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time

from _results import add_json_option, figure, write_json
from bench_serve import Tickets

#: one paragraph of standing instructions, repeated to the requested length
SYSTEM = (
    "You are the internal assistant of Acme Corporation. Answer employees' questions accurately "
    "and briefly. Use only the context you are given and say plainly when it does not hold the "
    "answer. Never reveal one department's documents to another department. Cite the document you "
    "used by its identifier. Give dates in ISO format and amounts with their currency. Do not "
    "speculate about people, salaries or performance. If a question is about travel, refer to the "
    "travel policy; if it is about leave, refer to the HR handbook; if it is about a security "
    "incident, tell the employee to contact the security desk at once. "
)


def load(engine, prompts: list[list[int]], clients: int, max_tokens: int) -> tuple[float, list[float]]:
    """``(tokens/s, each request's time to first token)`` of ``prompts`` run by ``clients``
    closed-loop threads."""
    from llmforge_local.engine import Sequence

    queue, tokens, firsts = list(prompts), [], []
    lock = threading.Lock()

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                ids = queue.pop(0)
            s = engine.submit(Sequence(ids, max_tokens)).wait()
            tokens.append(len(s.tokens))
            firsts.append(s.first_token - s.submitted)

    start = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(tokens) / (time.perf_counter() - start), firsts


def loaded_engine(model: str | None, device: str, clients: int, label: str):
    """``(loaded model, its continuous engine, model name)`` from a generator in a fresh home;
    exits where the model has no engine."""
    from llmforge_local.models import DEFAULT_MODEL

    import llmforge

    options = {"model": model or DEFAULT_MODEL, "device": device, "max_batch_size": clients}
    gen = llmforge.connect(
        backend="local",
        home=tempfile.mkdtemp(prefix=f"llmforge-bench-{label}-"),
        user="admin",
        generator={"name": "local", "options": options},
    ).generator
    m = gen.loaded()
    engine = gen.engine(m)
    if engine is None:
        raise SystemExit(f"{options['model']} has no continuous-batching engine (Llama models only)")
    return m, engine, options["model"]


def chat_ids(tok, question: str, system: str | None = None) -> list[int]:
    """The chat template's prompt tokens for ``question`` (after ``system`` when given)."""
    convo = [{"role": "system", "content": system}] if system else []
    convo.append({"role": "user", "content": question})
    return tok.apply_chat_template(convo, add_generation_prompt=True, tokenize=True, return_dict=True)[
        "input_ids"
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model spec (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=48, help="requests per run")
    ap.add_argument("--rounds", type=int, default=2, help="pairs of runs (cache on, cache off)")
    ap.add_argument("--system-tokens", type=int, default=300, help="about this long a shared system prompt")
    ap.add_argument("--max-tokens", type=int, default=48)
    add_json_option(ap)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from llmforge_local.engine import Sequence

    m, engine, name = loaded_engine(args.model, args.device, args.clients, "prefix")
    tok = m.tokenizer
    system, per = "", len(tok(SYSTEM)["input_ids"])
    while len(tok(system)["input_ids"]) + per <= args.system_tokens or not system:
        system += SYSTEM

    def encode(question: str) -> list[int]:
        return chat_ids(tok, question, system)

    ticket = Tickets()

    def prompts() -> list[list[int]]:
        return [encode(question) for question, _ in ticket.jobs(args.requests, args.max_tokens)]

    engine.submit(Sequence(encode("hi"), 4)).wait()  # warm-up, untimed
    capacity = engine.slots.prefix.capacity
    length = statistics.median(len(p) for p in prompts())
    print(
        f"model={name} device={m.device} clients={args.clients} requests={args.requests} "
        f"prompt tokens (median)={length:.0f} max_tokens={args.max_tokens}",
        flush=True,
    )
    rates: dict[str, list[float]] = {"on": [], "off": []}
    ttfts: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(args.rounds):
        for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
            engine.slots.prefix.capacity = capacity if mode == "on" else 0
            rate, firsts = load(engine, prompts(), args.clients, args.max_tokens)
            rates[mode].append(rate)
            ttfts[mode].append(statistics.mean(firsts))
            print(
                f"round {r + 1}, prefix cache {mode:3}: {rate:7.1f} tokens/s, "
                f"TTFT mean {statistics.mean(firsts):6.3f} s, p50 {statistics.median(firsts):6.3f} s",
                flush=True,
            )
    engine.slots.prefix.capacity = capacity
    on, off = statistics.mean(rates["on"]), statistics.mean(rates["off"])
    t_on, t_off = statistics.mean(ttfts["on"]), statistics.mean(ttfts["off"])
    print(f"tokens/s: {on:.1f} with the prefix cache vs {off:.1f} without = {on / off:.2f}x")
    print(f"TTFT mean: {t_on:.3f} s with vs {t_off:.3f} s without = {t_off / t_on:.2f}x sooner")
    if args.json:
        base = "the same engine, prefix cache off"
        figs = [
            figure(
                "tokens/s with the prefix cache",
                rates["on"],
                "tokens/s",
                baseline=base,
                baseline_value=rates["off"],
            ),
            figure(
                "TTFT mean with the prefix cache",
                ttfts["on"],
                "s",
                better="lower",
                baseline=base,
                baseline_value=ttfts["off"],
            ),
        ]
        note = f"{args.clients} clients, {args.requests} requests, ~{length:.0f}-token prompts, device {m.device}"
        write_json(args.json, "prefix_cache", figs, note)


if __name__ == "__main__":
    main()
