"""int8 weights (``quantize: int8`` and ``w8a8``): the engine's speed and the model's quality vs
its bf16 weights.

The continuous engine can serve its packed projections and LM head as int8 (a scale per output
channel and 32 inputs), run by llmforge's AMX kernels (``llmforge_local/kernels``, where the CPU
has AMX): ``int8`` keeps the inputs bf16, ``w8a8`` quantizes them to int8 per 32 as well. This
loads the model once and compares, in one process:

- speed, bf16 weights and each scheme (``--schemes``) in turn on one engine: ``--clients`` closed-loop clients
  (threads calling the engine, no HTTP), every request distinct, ``--max-tokens`` each; and the
  median decode step of those runs that decoded all clients' rows and prefilled none (timed in
  the engine's own thread, as it serves);
- quality, on ``--passages`` real passages (CLAPNQ's, from ``shared/data``; any JSONL with
  ``passages[].text`` via ``--data``), each cut to ``--tokens`` tokens: the next-token perplexity
  of the engine's forward pass with bf16 weights and with each scheme, against the float32
  model's (HF forward), and how often each picks float32's most likely token; then greedy answers
  to the serving benchmark's questions, each scheme vs bf16: how many are the same text, and the
  tokens they share before they first differ.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_quantize.py [--clients 16] [--passages 32]
        [--tokens 128] [--rounds 2] [--schemes int8,w8a8] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

from _results import add_json_option, figure, write_json
from bench_prefix_cache import chat_ids, load, loaded_engine
from bench_serve import PROMPTS, Tickets, in_own_thread

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "clapnq" / "dev_answerable.jsonl"


def passages(path: Path, count: int, tok, tokens: int) -> list[list[int]]:
    """The first ``count`` passages of at least ``tokens`` tokens, each cut to ``tokens``."""
    out: list[list[int]] = []
    with path.open() as f:
        for line in f:
            for p in json.loads(line).get("passages", []):
                ids = tok(p["text"], add_special_tokens=False)["input_ids"]
                if len(ids) >= tokens:
                    out.append(ids[:tokens])
                if len(out) == count:
                    return out
    if not out:
        raise SystemExit(f"no passage of {tokens} tokens in {path}")
    return out


def teacher_forced(slots, texts: list[list[int]]) -> list[list]:
    """Each text's next-token logits (float32, (len - 1, V)) from the engine's forward pass: its
    first token prefilled, then every next one fed as a decode step, all texts together."""
    import torch

    rows, n = len(texts), len(texts[0])
    out: list[list] = [[] for _ in texts]
    with torch.inference_mode():
        logits = slots.prefill([t[:1] for t in texts], 0, [0] * rows)
        for pos in range(1, n):
            for r in range(rows):
                out[r].append(logits[r].float())
            if pos < n - 1:
                logits = slots.decode([t[pos] for t in texts], [pos] * rows, [0] * rows)
    return [torch.stack(x) for x in out]


def scores(logits: list, texts: list[list[int]], reference: list) -> tuple[float, float]:
    """(perplexity of the texts, share of positions whose top token is the reference's)."""
    import torch

    nll, same, total = 0.0, 0, 0
    for lg, ids, ref in zip(logits, texts, reference, strict=True):
        target = torch.tensor(ids[1:])
        nll += float(torch.nn.functional.cross_entropy(lg, target, reduction="sum"))
        same += int((lg.argmax(-1) == ref.argmax(-1)).sum())
        total += len(target)
    return math.exp(nll / total), same / total


def greedy(engine, prompts: list[list[int]], max_tokens: int) -> list[list[int]]:
    from llmforge_local.engine import Sequence

    seqs = [engine.submit(Sequence(ids, max_tokens)) for ids in prompts]
    return [s.wait().tokens for s in seqs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model spec (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=48, help="requests per closed-loop run")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of runs (bf16 and each scheme)")
    ap.add_argument("--schemes", default="int8,w8a8", help="int8 schemes to compare with bf16 (int8, w8a8)")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--data", type=Path, default=DATA, help="JSONL whose rows have passages[].text")
    ap.add_argument("--passages", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=128, help="tokens of each passage scored")
    add_json_option(ap)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import copy

    import torch
    from llmforge_local.engine import Sequence
    from llmforge_local.engine_model import SlotModel
    from llmforge_local.engine_packed import Packed, int8_ops

    m, engine, name = loaded_engine(args.model, "cpu", args.clients, "quantize")
    engine.submit(Sequence(chat_ids(m.tokenizer, "hi"), 4)).wait()  # warm-up: packs the bf16 weights
    if engine.slots.packed is None:
        raise SystemExit("int8 weights need the bf16 model and a CPU that runs bf16; nothing to compare")
    packs = {"bf16": engine.slots.packed}
    for scheme in args.schemes.split(","):
        ops = in_own_thread(int8_ops, scheme)
        if ops is None:
            print(f"{scheme}: not available here (see the warning above); left out")
        else:
            packs[scheme] = in_own_thread(Packed, m.model, ops)
    schemes = [k for k in packs if k != "bf16"]
    if not schemes:
        raise SystemExit("no int8 scheme runs here (they need the fused kernels and AMX); nothing to compare")

    def encode(question: str) -> list[int]:
        return chat_ids(m.tokenizer, question)

    ticket = Tickets()
    print(f"model={name} clients={args.clients} requests={args.requests} max_tokens={args.max_tokens}")
    # the decode step as the engine runs it: every step of the closed loops timed in the engine's
    # thread, the figure being the median of those that decode all clients' rows and prefill none
    steps: dict[str, list[float]] = {k: [] for k in packs}
    rates: dict[str, list[float]] = {k: [] for k in packs}
    timed: list[float] = []
    step = engine.slots.step

    def timed_step(last, *a, **k):
        start = time.perf_counter()
        out = step(last, *a, **k)
        prompts = a[2] if len(a) > 2 else k.get("prompts", ())
        if len(last) == args.clients and not prompts:
            timed.append((time.perf_counter() - start) * 1e3)
        return out

    engine.slots.step = timed_step
    order = list(packs)
    for r in range(args.rounds):
        for mode in order[r % len(order) :] + order[: r % len(order)]:  # each round starts elsewhere
            engine.slots.packed = packs[mode]
            engine.slots.prefix.clear()  # the other weights' keys and values are not this one's
            jobs = [encode(question) for question, _ in ticket.jobs(args.requests, args.max_tokens)]
            timed.clear()
            rate, _ = load(engine, jobs, args.clients, args.max_tokens)
            rates[mode].append(rate)
            steps[mode].append(statistics.median(timed))
            print(
                f"round {r + 1}, {mode} weights: closed loop {rate:7.1f} tokens/s, decode step of "
                f"{args.clients} rows {steps[mode][-1]:6.1f} ms (median of {len(timed)})",
                flush=True,
            )
    engine.slots.step = step

    questions = [encode(q) for q in PROMPTS]
    answers = {}
    for mode in packs:
        engine.slots.packed = packs[mode]
        engine.slots.prefix.clear()
        answers[mode] = greedy(engine, questions, args.max_tokens)
    engine.slots.packed = packs["bf16"]

    texts = passages(args.data, args.passages, m.tokenizer, args.tokens)
    reference = copy.deepcopy(m.model).float().eval()
    with torch.inference_mode():
        ref = [reference(torch.tensor([t])).logits[0, :-1].float() for t in texts]
    del reference
    quality = {}
    for mode in packs:
        slots = SlotModel(m.model, "cpu", quantize="none" if mode == "bf16" else mode)
        quality[mode] = scores(teacher_forced(slots, texts), texts, ref)
    ppl32, _ = scores(ref, texts, ref)

    s16, r16 = statistics.median(steps["bf16"]), statistics.mean(rates["bf16"])
    print(
        f"perplexity on {len(texts)} passages x {args.tokens} tokens: float32 {ppl32:.3f}, "
        f"bf16 {quality['bf16'][0]:.3f}; top token as float32's: bf16 {quality['bf16'][1]:.2%}"
    )
    figs = []
    base = "the same engine with bf16 weights"
    for mode in schemes:
        s8, r8 = statistics.median(steps[mode]), statistics.mean(rates[mode])
        same = sum(a == b for a, b in zip(answers["bf16"], answers[mode], strict=True))
        shared = [
            next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            for a, b in zip(answers["bf16"], answers[mode], strict=True)
        ]
        print(f"{mode}: decode step {s8:.1f} ms vs {s16:.1f} ms with bf16 weights = {s16 / s8:.2f}x")
        print(f"{mode}: tokens/s {r8:.1f} vs {r16:.1f} with bf16 weights = {r8 / r16:.2f}x")
        print(
            f"{mode}: perplexity {quality[mode][0]:.3f} ({quality[mode][0] / quality['bf16'][0]:.4f}x bf16's), "
            f"top token as float32's {quality[mode][1]:.2%}"
        )
        print(
            f"{mode}: greedy answers ({len(questions)} questions, {args.max_tokens} tokens): {same} the "
            f"same text as bf16's; tokens before the first difference: median {statistics.median(shared):.0f}"
        )
        figs += [
            figure(
                f"decode step of {args.clients} rows, {mode}",
                steps[mode],
                "ms",
                better="lower",
                baseline=base,
                baseline_value=steps["bf16"],
                ratio=min(steps["bf16"]) / min(steps[mode]),
            ),
            figure(
                f"engine tokens/s, {mode}",
                rates[mode],
                "tokens/s",
                baseline=base,
                baseline_value=rates["bf16"],
            ),
            figure(
                f"perplexity, {mode}",
                quality[mode][0],
                "",
                better="lower",
                baseline="bf16 weights",
                baseline_value=quality["bf16"][0],
            ),
        ]
    if args.json:
        write_json(
            args.json,
            "quantize",
            figs,
            f"{args.clients} clients; {len(texts)} passages x {args.tokens} tokens",
        )


if __name__ == "__main__":
    main()
