"""Serving: `llmforge serve` under 1 / 4 / 16 / 64 concurrent `openai` clients vs sequential HF.

The server runs on loopback in a process of its own (``llmforge.server.serve``, what `llmforge
serve` runs; ``--server thread`` puts it in a thread of the benchmark's process instead, where
the clients' parsing competes for its GIL). Each client is an ``openai.AsyncOpenAI`` streaming
chat completion with ``stream_options.include_usage``, so time-to-first-token (TTFT) is the
first content chunk and completion tokens are the server's exact usage counts. Baselines in the
same run, on the same loaded model and kind of prompt (every request of the run is distinct,
``Ticket N: <question>``, so none is served from the prefix cache of an identical earlier one;
they share the chat template's system turn): (a) HF ``model.generate`` one request at a
time; (b) llama.cpp when ``llama_cpp`` is importable (``CMAKE_ARGS="-DGGML_NATIVE=OFF" pip
install llama-cpp-python``, ~5 min of compiling on 2 cores, so not part of CI's set-up). Mixed
lengths: 16 clients, half asking for ``--short`` tokens, half for ``--long`` — the short ones'
p50 latency vs those same short requests alone, for the continuous engine and, with
``--static``, the static Batcher too.

A level's requests (one per client, at least ``--min-requests``) run ``--rounds`` times over. With
``--load closed`` (the default) they form one queue that the clients take from, each sending its
next request as its last one ends, so the level's concurrency holds until the last requests
drain; the row is all their tokens over the wall time. ``--load waves`` instead starts all clients together ``--rounds``
times and waits for each wave to drain (its ramp-up and tail are in the figure); the row is then
the waves' tokens over their total time, and each wave's rate is printed below it. A closed-load
row is followed by its rate while all the level's clients were busy (from the start until the
last request was sent; after that the clients run out of work one by one, so that tail measures
the length of the run rather than the level's concurrency).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_serve.py [--clients 1,4,16] [--max-tokens 48]
        [--rounds 3] [--load closed|waves] [--quantize none|int8|w8a8] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import tempfile
import time

from _results import add_json_option, figure, write_json
from bench_generate import QUESTIONS

TOKEN = "bench-token"
PROMPTS = QUESTIONS  # the same 16 prompts as bench_generate, so figures compare
LONG = "Write a long, detailed story about a lighthouse keeper and the sea."


class Tickets:
    """Every request of a run distinct: ``Ticket N: <prompt>``, N never repeating. The requests
    still share the chat template's system turn, as a deployment's share its system prompt,
    but a repeated question is never served from the prefix cache of an earlier identical one
    (which would flatter the engine against baselines that answer each prompt once)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, prompt: str, max_tokens: int) -> tuple[str, int]:
        self.n += 1
        return f"Ticket {self.n}: {prompt}", max_tokens

    def jobs(self, count: int, max_tokens: int) -> list[tuple[str, int]]:
        return [self(PROMPTS[i % len(PROMPTS)], max_tokens) for i in range(count)]


def convo(q: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": q}]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


@dataclasses.dataclass
class Result:
    latency: float
    ttft: float
    tokens: int
    #: when each content chunk arrived (``time.perf_counter``); empty for the baselines
    chunks: list[float] = dataclasses.field(default_factory=list)

    def tokens_by(self, when: float) -> float:
        """Completion tokens that had arrived by ``when`` (the exact usage count spread over the
        streamed chunks)."""
        if not self.chunks:
            return 0.0
        return self.tokens * sum(t <= when for t in self.chunks) / len(self.chunks)


async def one(client, prompt: str, max_tokens: int, model: str) -> Result:
    start, chunks, tokens = time.perf_counter(), [], 0
    stream = await client.chat.completions.create(
        model=model,
        messages=convo(prompt),
        max_tokens=max_tokens,
        temperature=0.0,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            chunks.append(time.perf_counter())
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter()
    return Result(end - start, (chunks[0] if chunks else end) - start, tokens, chunks)


@dataclasses.dataclass
class Busy:
    """The part of a closed-load run while every client had a request in flight: from the start
    to the moment the last request was sent (after it, clients run out of work one by one)."""

    seconds: float
    tokens: float

    @property
    def rate(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")


async def clients(
    url: str, jobs: list[tuple[str, int]], concurrency: int, model: str
) -> tuple[float, list, Busy]:
    """``jobs`` run by ``concurrency`` clients, each taking the next job when its last is done."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0, timeout=900)
    queue = list(enumerate(jobs))
    results: list[Result | None] = [None] * len(jobs)
    emptied: list[float] = []

    async def worker() -> None:
        while queue:
            i, (prompt, n) = queue.pop(0)
            if not queue:
                emptied.append(time.perf_counter())
            results[i] = await one(client, prompt, n, model)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    await client.close()
    until = emptied[0] if emptied else start
    busy = Busy(until - start, sum(r.tokens_by(until) for r in results if r is not None))
    return wall, results, busy


def sequential_hf(gen, jobs: list[tuple[str, int]]) -> tuple[float, list[Result]]:
    """Baseline (a): tokenize, ``model.generate``, one request at a time, on the same model."""
    import torch

    m = gen.loaded()
    with torch.inference_mode():  # warm-up, untimed, as the server gets one
        m.model.generate(**m.tokenizer("warm up", return_tensors="pt").to(m.device), max_new_tokens=4)
    out, start = [], time.perf_counter()
    for prompt, n in jobs:
        t = time.perf_counter()
        ids = m.tokenizer.apply_chat_template(
            convo(prompt), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.inference_mode():
            gen_ids = m.model.generate(
                **ids.to(m.device), max_new_tokens=n, do_sample=False, pad_token_id=m.pad_id
            )
        new = gen_ids[0, ids["input_ids"].shape[1] :].tolist()
        toks = next((k + 1 for k, x in enumerate(new) if x in m.eos_ids), len(new))
        lat = time.perf_counter() - t
        out.append(Result(lat, lat, toks))  # no streaming: the first token comes with the last
    return time.perf_counter() - start, out


def llama_cpp(jobs: list[tuple[str, int]]) -> tuple[float, list[Result]] | None:
    """Baseline (b): llama-cpp-python on the Q4_1 GGUF, one request at a time, if importable."""
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    from llmforge_local.models import GGUF_FILE, _gguf_dir

    llm = Llama(model_path=str(_gguf_dir() / GGUF_FILE), n_ctx=2048, n_threads=os.cpu_count(), verbose=False)
    out, start = [], time.perf_counter()
    for prompt, n in jobs:
        t, first, toks = time.perf_counter(), None, 0
        for chunk in llm.create_chat_completion(
            messages=convo(prompt), max_tokens=n, temperature=0.0, stream=True
        ):
            if first is None and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter()
            toks += bool(chunk["choices"][0]["delta"].get("content"))
        end = time.perf_counter()
        out.append(Result(end - t, (first or end) - t, toks))
    return time.perf_counter() - start, out


def in_own_thread(fn, *args):
    """``fn(*args)`` in a thread that ends before the server runs.

    libgomp keeps an OpenMP team for every thread that ran a parallel region, for as long as
    that thread lives; with more team threads than cores it stops spin-waiting, and every
    team then wakes its threads by futex on every op. The engine's decode steps ran ~30% slower
    after a baseline had run on the main thread, and llama.cpp ran at half its speed beside the
    idle engine's team. A server process runs no baseline, so each baseline runs (and lets go of
    its team) in a thread of its own, before the server and its engine start."""
    import threading

    box: dict = {}

    def run() -> None:
        try:
            box["out"] = fn(*args)
        except BaseException as exc:  # re-raised in the caller's thread
            box["err"] = exc

    t = threading.Thread(target=run, name=fn.__name__)
    t.start()
    t.join()
    if "err" in box:
        raise box["err"]
    return box["out"]


def serve_in_process(home: str, generator: dict):
    """``(url, stop)`` of `llmforge serve` in a process of its own, on the bench's home, model
    and engine options: the clients' HTTP and JSON work then shares the cores but not the
    server's GIL."""
    from pathlib import Path

    import yaml
    from _serving import free_port, start_server

    root = Path(tempfile.mkdtemp(prefix="llmforge-bench-serve-server-"))
    (root / "llmforge.yaml").write_text(
        yaml.safe_dump({"home": home, "components": {"generator": generator}})
    )
    port = free_port()
    proc = start_server(root, port, {**os.environ, "LLMFORGE_API_TOKENS": f"{TOKEN}=admin"})

    def stop() -> None:
        proc.terminate()  # SIGTERM: uvicorn shuts down and the usage rows are committed
        proc.wait(timeout=120)

    return f"http://127.0.0.1:{port}", stop


def row(name: str, wall: float, res: list[Result], base: float | None) -> float:
    toks = sum(r.tokens for r in res)
    rate = toks / wall
    lat, ttft = [r.latency for r in res], [r.ttft for r in res]
    vs = f"{rate / base:7.2f}x" if base else "  1.00x"
    print(
        f"{name:34} {len(res):4d} {toks:6d} {rate:8.1f} {vs} {pct(lat, 50):7.2f} {pct(lat, 99):7.2f} "
        f"{pct(ttft, 50):7.2f} {pct(ttft, 99):7.2f}",
        flush=True,
    )
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model spec (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float32"])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--clients", default="1,4,16,64", help="concurrency levels, e.g. 1,4,16")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument(
        "--min-requests", type=int, default=8, help="requests per level (at least one per client)"
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="passes over each level's requests (one queue under closed load, one wave each under "
        "--load waves): a busy neighbour on a shared host moves a single wave by up to 30%%, so each "
        "figure spans several",
    )
    ap.add_argument("--short", type=int, default=16)
    ap.add_argument("--long", type=int, default=256)
    ap.add_argument("--static", action="store_true", help="also run the mixed-length test on the static path")
    ap.add_argument("--skip-mixed", action="store_true")
    ap.add_argument(
        "--load",
        choices=("closed", "waves"),
        default="closed",
        help="closed: clients take the --rounds passes' requests from one queue, each sending its "
        "next as its last ends (steady concurrency, the default); waves: all clients start together, "
        "--rounds times, each wave drained first",
    )
    ap.add_argument(
        "--server",
        choices=("process", "thread"),
        default="process",
        help="run the server in its own process, as `llmforge serve` does (default), or in a "
        "thread of the benchmark's process, where the clients share its GIL",
    )
    ap.add_argument(
        "--quantize",
        choices=("none", "int8", "w8a8"),
        default="none",
        help="the served engine's weights (generator option quantize): int8 or w8a8 where the CPU has AMX; "
        "the HF baseline always runs the model's own weights",
    )
    add_json_option(ap)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    from llmforge_local.models import DEFAULT_MODEL

    import llmforge
    from llmforge.server import start_in_thread

    home = tempfile.mkdtemp(prefix="llmforge-bench-serve-")
    levels = [int(x) for x in args.clients.split(",")]
    size = max(levels + [16])
    options = {"model": args.model or DEFAULT_MODEL, "dtype": args.dtype, "device": args.device}

    def generator(engine: str) -> dict:
        quantize = {"quantize": args.quantize} if engine == "continuous" else {}
        return {"name": "local", "options": {**options, "engine": engine, "max_batch_size": size, **quantize}}

    def forge_with(engine: str):
        return llmforge.connect(backend="local", home=home, user="admin", generator=generator(engine))

    def server(engine: str):
        if args.server == "process":
            return serve_in_process(home, generator(engine))
        return start_in_thread(forge_with(engine), tokens={TOKEN: "admin"})

    forge = forge_with("continuous")
    gen = forge.generator
    m = gen.loaded()
    model = "llmforge-local"
    print(
        f"model={options['model']} dtype={next(m.model.parameters()).dtype} device={m.device} "
        f"threads={torch.get_num_threads()} max_tokens={args.max_tokens} levels={levels} "
        f"served weights={args.quantize}"
    )

    head = f"{'run':34} {'reqs':>4} {'tokens':>6} {'tok/s':>8} {'vs (a)':>8} {'p50 s':>7} {'p99 s':>7} {'ttft50':>7} {'ttft99':>7}"
    print(head, flush=True)
    n0 = max(args.min_requests, 1)
    ticket = Tickets()
    jobs0 = ticket.jobs(n0, args.max_tokens)
    wall, res = in_own_thread(sequential_hf, gen, jobs0)
    base = row("(a) sequential HF generate", wall, res, None)
    base_ttft = pct([r.ttft for r in res], 50)
    figs = []
    cpp = in_own_thread(llama_cpp, jobs0)
    if cpp is None:
        print(
            '(b) llama.cpp: skipped (llama_cpp is not importable: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install llama-cpp-python)',
            flush=True,
        )
        cpp_rate = None
    else:
        cpp_rate = row("(b) llama.cpp Q4_1, one at a time", *cpp, base)
    url, stop = server("continuous")  # after the baselines: see in_own_thread
    asyncio.run(clients(url, [("warm up", 4)], 1, model))
    for n in levels:
        per_pass = max(n0, n)
        wall, res, rates, busy = 0.0, [], [], None
        if args.load == "closed":  # every client sends its next request as its last one ends
            jobs = ticket.jobs(per_pass * args.rounds, args.max_tokens)
            wall, res, busy = asyncio.run(clients(url, jobs, n, model))
        else:
            for _ in range(args.rounds):
                w, r, _ = asyncio.run(clients(url, ticket.jobs(per_pass, args.max_tokens), n, model))
                wall, res = wall + w, res + r
                rates.append(sum(x.tokens for x in r) / w)
        rate = row(f"llmforge serve, {n} clients", wall, res, base)
        if len(rates) > 1:
            print(f"{'':34} rounds: {', '.join(f'{x:.1f}' for x in rates)} tokens/s", flush=True)
        seq = "sequential HF generate"
        figs.append(
            figure(f"serve tokens/s, {n} clients", rate, "tokens/s", baseline=seq, baseline_value=base)
        )
        if busy is not None and busy.seconds > 0:
            vs_cpp = f", {busy.rate / cpp_rate:.2f}x (b)" if cpp_rate else ""
            print(
                f"{'':34} while all {n} were busy (first {busy.seconds:.1f} s of {wall:.1f}): "
                f"{busy.rate:.1f} tokens/s = {busy.rate / base:.2f}x (a){vs_cpp}",
                flush=True,
            )
            figs.append(
                figure(
                    f"serve tokens/s while all {n} clients are busy",
                    busy.rate,
                    "tokens/s",
                    baseline=seq,
                    baseline_value=base,
                )
            )
        if cpp_rate:
            figs.append(
                figure(
                    f"serve tokens/s vs llama.cpp, {n} clients",
                    rate,
                    "tokens/s",
                    baseline="llama.cpp Q4_1, one request at a time",
                    baseline_value=cpp_rate,
                )
            )
        figs.append(
            figure(
                f"TTFT p50, {n} clients",
                pct([r.ttft for r in res], 50),
                "s",
                better="lower",
                baseline=f"{seq} (whole answer)",
                baseline_value=base_ttft,
            )
        )

    if not args.skip_mixed:
        print(f"\nmixed lengths: 16 clients, 8 ask for {args.short} tokens, 8 for {args.long}", flush=True)
        engines = [("continuous", url)]
        if args.static:
            static_url, stop_static = server("static")
            engines.append(("static", static_url))
        for name, where in engines:
            short = [ticket(PROMPTS[i], args.short) for i in range(8)]
            _, alone, _ = asyncio.run(clients(where, short, 8, model))
            short = [ticket(PROMPTS[i], args.short) for i in range(8)]
            mixed = [x for i in range(8) for x in (short[i], ticket(LONG, args.long))]
            _, both, _ = asyncio.run(clients(where, mixed, 16, model))
            s_alone = statistics.median(r.latency for r in alone)
            s_mixed = statistics.median(r.latency for r in both[0::2])
            l_mixed = statistics.median(r.latency for r in both[1::2])
            long_toks = sum(r.tokens for r in both[1::2])
            figs.append(
                figure(
                    f"short answers' p50 beside long ones ({name})",
                    s_mixed,
                    "s",
                    better="lower",
                    baseline="the same short requests alone",
                    baseline_value=s_alone,
                )
            )
            print(
                f"{name:10} short p50 alone {s_alone:6.2f} s, beside the long ones {s_mixed:6.2f} s "
                f"({s_mixed / s_alone:.2f}x); long p50 {l_mixed:6.2f} s ({long_toks} tokens in 8 long answers)",
                flush=True,
            )
        if args.static:
            stop_static()
    stop()
    if args.json:
        note = (
            f"levels {levels}, max_tokens {args.max_tokens}, device {m.device}, {args.rounds} passes over each level's "
            f"requests ({args.load} load), "
            f"server in its own {args.server}, served weights quantize={args.quantize}"
        )
        write_json(args.json, "serve" if args.quantize == "none" else f"serve_{args.quantize}", figs, note)


if __name__ == "__main__":
    main()
