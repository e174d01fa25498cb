"""Fused CPU kernels: the engine's decode step and tokens/s with them vs the same engine on PyTorch ops.

The continuous engine's bf16 CPU path runs RMSNorm, rotary, SiLU·mul and the KV-cache write as
one op each (``llmforge_local/kernels``) where the kernels build. This runs one engine on one
loaded model in one process and switches its kernels off and on in alternating order:

- a decode step of ``--clients`` rows (each ~``--context`` tokens into its cache), timed alone;
- ``--clients`` closed-loop clients (threads calling the engine, no HTTP), every request
  distinct (``Ticket N: <question>``), ``--max-tokens`` each.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_kernels.py [--clients 16] [--requests 48]
        [--rounds 2] [--max-tokens 48] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from _results import add_json_option, figure, write_json
from bench_prefix_cache import chat_ids, load, loaded_engine
from bench_serve import Tickets


def step_ms(slots, rows: int, context: int, repeats: int = 5) -> float:
    """Milliseconds of one decode step of ``rows`` sequences ``context`` tokens long."""
    import torch

    prompts = [[1 + (r * 7 + j) % 900 for j in range(context)] for r in range(rows)]
    with torch.inference_mode():
        slots.prefill(prompts, 0, [0] * rows)
        slots.decode([1] * rows, [context] * rows, [0] * rows)  # warm-up, untimed
        start = time.perf_counter()
        for _ in range(repeats):
            slots.decode([1] * rows, [context] * rows, [0] * rows)
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model spec (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=48, help="requests per closed-loop run")
    ap.add_argument("--rounds", type=int, default=2, help="pairs of runs (kernels on, kernels off)")
    ap.add_argument("--context", type=int, default=80, help="tokens in each row's cache for the step timing")
    ap.add_argument("--max-tokens", type=int, default=48)
    add_json_option(ap)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from llmforge_local.engine import Sequence
    from llmforge_local.kernels import why_off

    m, engine, name = loaded_engine(args.model, "cpu", args.clients, "kernels")

    def encode(question: str) -> list[int]:
        return chat_ids(m.tokenizer, question)

    engine.submit(Sequence(encode("hi"), 4)).wait()  # warm-up: packs the weights, loads the kernels
    ops = engine.slots.kernels
    if ops is None:
        why = why_off() or f"dtype {m.model.dtype}: the kernels serve the packed bf16 CPU path only"
        raise SystemExit(f"the fused kernels are off here ({why}); nothing to compare")
    ticket = Tickets()
    print(f"model={name} clients={args.clients} requests={args.requests} max_tokens={args.max_tokens}")
    steps: dict[str, list[float]] = {"on": [], "off": []}
    rates: dict[str, list[float]] = {"on": [], "off": []}
    for r in range(args.rounds):
        for mode in ("on", "off") if r % 2 == 0 else ("off", "on"):
            engine.slots.kernels = ops if mode == "on" else None
            # the step timing runs between closed-loop runs, when the engine thread is idle
            steps[mode].append(step_ms(engine.slots, args.clients, args.context))
            jobs = [encode(question) for question, _ in ticket.jobs(args.requests, args.max_tokens)]
            rate, _ = load(engine, jobs, args.clients, args.max_tokens)
            rates[mode].append(rate)
            print(
                f"round {r + 1}, kernels {mode:3}: decode step of {args.clients} rows "
                f"{steps[mode][-1]:6.1f} ms, closed loop {rate:7.1f} tokens/s",
                flush=True,
            )
    engine.slots.kernels = ops
    s_on, s_off = statistics.mean(steps["on"]), statistics.mean(steps["off"])
    on, off = statistics.mean(rates["on"]), statistics.mean(rates["off"])
    print(
        f"decode step: {s_on:.1f} ms with the kernels vs {s_off:.1f} ms on PyTorch ops = {s_off / s_on:.2f}x"
    )
    print(f"tokens/s: {on:.1f} with the kernels vs {off:.1f} on PyTorch ops = {on / off:.2f}x")
    if args.json:
        base = "the same engine on PyTorch ops"
        figs = [
            figure(
                f"decode step of {args.clients} rows",
                steps["on"],
                "ms",
                better="lower",
                baseline=base,
                baseline_value=steps["off"],
                ratio=min(steps["off"]) / min(steps["on"]),
            ),
            figure("engine tokens/s", rates["on"], "tokens/s", baseline=base, baseline_value=rates["off"]),
        ]
        write_json(args.json, "kernels", figs, f"{args.clients} clients, {args.requests} requests")


if __name__ == "__main__":
    main()
