"""Every benchmark the suite runs: its script, its quick and full arguments, and its floors."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from llmforge.errors import ConfigError

PROFILES = ("quick", "full")


@dataclasses.dataclass(frozen=True)
class Gate:
    """A floor (or, for a lower-is-better figure, a ceiling) on one figure of a benchmark.

    The check is on the figure's ``value`` or on its ``ratio`` to its baseline (``field``).
    With a previous results file of the same machine, profile and device, the floor becomes
    ``max(floor, last - K * noise)`` (ceiling: ``min(ceiling, last + K * noise)``), where noise
    is the larger of the two runs' spreads, ``min_noise`` x last (spreads of 2-3 repeats
    understate the noise) and ``tolerance`` (for exact, repeat-free figures such as recall).
    """

    figure: str
    field: str = "value"
    floor: float | None = None
    ceiling: float | None = None
    min_noise: float = 0.0
    tolerance: float = 0.0
    why: str = ""


@dataclasses.dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    measures: str
    quick: tuple[str, ...] | None  # None: not in the quick profile
    full: tuple[str, ...]
    device: bool = False  # the script takes --device
    gates: tuple[Gate, ...] = ()

    def args(self, profile: str) -> tuple[str, ...]:
        if profile == "quick":
            if self.quick is None:
                raise ConfigError(f"benchmark '{self.name}' has no quick profile; run it with --full")
            return self.quick
        return self.full


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "ingest",
        "bench_ingest.py",
        "ingest and pair generation rows/s: Arrow engine vs Spark engine vs a plain Python loop",
        quick=("--docs", "1000", "--engines", "arrow", "--repeats", "2"),
        full=("--docs", "5000", "--repeats", "2"),
    ),
    Benchmark(
        "train",
        "bench_train.py",
        "LoRA training tokens/s and MFU: llmforge's loop vs a plain HF Trainer, same examples",
        quick=("--examples", "16", "--repeats", "2"),
        full=("--examples", "128", "--repeats", "3"),
        device=True,
        gates=(
            Gate(
                "llmforge tokens/s",
                field="ratio",
                floor=1.5,
                min_noise=0.10,
                why="training must stay at least 1.5x the HF Trainer's tokens/s",
            ),
        ),
    ),
    Benchmark(
        "learns_business",
        "bench_learns_business.py",
        "closed-book accuracy and held-out perplexity before vs after fine-tuning",
        quick=None,
        # the recipe measured to inject the facts: full fine-tuning on augmented pairs with the
        # documents' own text mixed in, early stopping on a held-in probe (~35 min on 2 CPU cores)
        full=(
            "--docs",
            "asked",
            "--method",
            "full",
            "--lr",
            "2e-4",
            "--epochs",
            "6",
            "--augment",
            "1",
            "--replay",
            "--raw-text",
            "--evals-per-epoch",
            "1",
            "--patience",
            "2",
        ),
        device=True,
    ),
    Benchmark(
        "governed_knowledge",
        "bench_governed_knowledge.py",
        "per-department adapters: what each served model reveals about other departments vs the base model",
        quick=None,
        full=(),
    ),
    Benchmark(
        "raft",
        "bench_raft.py",
        "RAG correctness on held-out documents with a RAFT-trained adapter vs the base model",
        quick=None,
        full=(),
    ),
    Benchmark(
        "retrieval",
        "bench_retrieval.py",
        "ClapNQ recall@1/5 and MRR@10 of ANN, HYBRID, FULL_TEXT vs plain BM25",
        quick=("--questions", "150"),
        full=(),
        gates=(
            Gate("ANN recall@5", tolerance=0.015, why="dense retrieval recall must not drop"),
            Gate("HYBRID recall@5", tolerance=0.015, why="hybrid retrieval recall must not drop"),
        ),
    ),
    Benchmark(
        "search_speed",
        "bench_search_speed.py",
        "similarity_search p50/QPS, exact vs HNSW, unfiltered and filtered; HNSW recall@10",
        quick=("--skip-throughput", "--vectors", "5000", "--queries", "200", "--repeats", "2"),
        full=("--skip-throughput", "--repeats", "3"),
        gates=(
            Gate(
                "HNSW recall@10, no filter",
                floor=0.95,
                tolerance=0.01,
                why="HNSW must find at least 95% of the exact top-10",
            ),
        ),
    ),
    Benchmark(
        "index_throughput",
        "bench_search_speed.py",
        "delta-sync index creation texts/s vs a raw SentenceTransformer.encode of the same texts",
        quick=None,
        full=("--only-throughput", "--passages", "300"),
    ),
    Benchmark(
        "guard",
        "bench_guard.py",
        "faithfulness guard AUROC (swapped names/numbers, other answers) vs the lexical guard",
        quick=("--half", "test"),
        full=("--half", "test"),
        gates=(
            Gate("AUROC swap-out", tolerance=0.01, why="the guard must keep catching swapped facts"),
            Gate("AUROC swap-in", tolerance=0.01, why="the guard must keep catching swapped facts"),
        ),
    ),
    Benchmark(
        "generate",
        "bench_generate.py",
        "generation tokens/s: batched and threaded chat vs plain model.generate one by one",
        quick=("--quick", "--max-tokens", "16"),
        full=(),
        device=True,
    ),
    Benchmark(
        "serve",
        "bench_serve.py",
        "llmforge serve tokens/s, latency and TTFT under concurrent clients vs sequential HF",
        quick=None,
        full=("--clients", "1,4,16,64"),
        device=True,
    ),
    Benchmark(
        "serve_int8",
        "bench_serve.py",
        "llmforge serve on int8 weights (quantize: int8) under concurrent clients vs sequential HF and llama.cpp",
        quick=None,
        full=("--clients", "1,4,16,64", "--quantize", "int8"),
        device=True,
    ),
    Benchmark(
        "serve_w8a8",
        "bench_serve.py",
        "llmforge serve on int8 weights and inputs (quantize: w8a8) under concurrent clients vs sequential HF and llama.cpp",
        quick=None,
        full=("--clients", "1,4,16,64", "--quantize", "w8a8"),
        device=True,
    ),
    Benchmark(
        "prefix_cache",
        "bench_prefix_cache.py",
        "engine tokens/s and TTFT with the prefix cache vs without, distinct requests after a shared system prompt",
        quick=None,
        full=(),
        device=True,
    ),
    Benchmark(
        "kernels",
        "bench_kernels.py",
        "engine decode step and tokens/s with the fused CPU kernels vs the same engine on PyTorch ops",
        quick=None,
        full=(),
    ),
    Benchmark(
        "quantize",
        "bench_quantize.py",
        "int8 weights (quantize: int8, w8a8): engine decode step, tokens/s and perplexity vs the same engine on bf16 weights",
        quick=None,
        full=(),
    ),
    Benchmark(
        "rag_overhead",
        "bench_rag_overhead.py",
        "rag.ask time besides generation and catalog statements vs a bare similarity_search",
        quick=("--repeats", "1"),
        full=("--repeats", "2"),
    ),
    Benchmark(
        "rag_answers",
        "bench_rag_answers.py",
        "RAG answer correctness on the sample questions vs the same model closed book",
        quick=None,
        full=(),
    ),
    Benchmark(
        "rag_clapnq",
        "bench_rag_clapnq.py",
        "RAG end to end on ClapNQ: answered, refused, correct, recall@k and guard cost vs generation",
        quick=None,
        full=(),
    ),
    Benchmark(
        "emulator",
        "bench_emulator.py",
        "similarity_search p50 through the real client + emulator vs the in-process index",
        quick=("--docs", "100", "--queries", "30"),
        full=(),
    ),
    Benchmark(
        "kill9",
        "bench_kill9.py",
        "kill -9 during append/merge/delete/create/index sync: share of consistent outcomes",
        quick=("--trials", "1", "--rows", "5000"),
        full=("--trials", "5"),
        gates=(Gate("consistent outcomes", floor=100.0, why="a killed write must never half-commit"),),
    ),
    Benchmark(
        "quota_soak",
        "bench_quota_soak.py",
        "quota ledger under concurrent serving load: tokens charged exactly, requests refused at the limit",
        quick=None,
        full=(),
    ),
)

BY_NAME = {b.name: b for b in BENCHMARKS}


def select(profile: str, only: Iterable[str] = ()) -> list[Benchmark]:
    """The benchmarks of ``profile``, or just those named in ``only`` (in registry order)."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; use one of {', '.join(PROFILES)}")
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ConfigError(
            f"unknown benchmark {', '.join(repr(n) for n in unknown)}; "
            f"known: {', '.join(BY_NAME)} (see `llmforge bench --list`)"
        )
    if names:
        chosen = [b for b in BENCHMARKS if b.name in names]
        for b in chosen:
            b.args(profile)  # a named benchmark without this profile is an error, not a skip
        return chosen
    return [b for b in BENCHMARKS if (b.quick is not None or profile == "full")]
