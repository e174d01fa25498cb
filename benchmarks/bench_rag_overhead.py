"""What one ``forge.rag.ask`` costs besides generation: catalog statements and retrieval + guard time.

The sample corpus (``examples/enterprise``) is ingested into a governed table (department row
filter), indexed, and asked its 83 questions by users of every department. The generator is a
no-op plugin that returns the first retrieved passage, so the time measured is everything
``rag.ask`` does around generation: identity, grants, the row filter, the vector search, the
guards, the request log and lineage. Catalog statements are counted with SQLite's trace hook
on ``catalog.db``. Baseline in the same run: the bare ``similarity_search`` of the same index
for the same question (what retrieval alone costs). The question's embedding is computed once,
untimed, before both (the embedder caches query vectors, so whichever ran first would otherwise
pay for it alone).

    HF_HUB_OFFLINE=1 python benchmarks/bench_rag_overhead.py [--repeats 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from _results import add_json_option, figure, write_json
from sample_home import CORPUS, INDEX, REPO, USERS, govern_and_index

STATEMENTS: list[str] = []


def _trace_catalog() -> None:
    real = sqlite3.connect

    def connect(path, *a, **kw):
        con = real(path, *a, **kw)
        if str(path).endswith("catalog.db"):
            con.set_trace_callback(STATEMENTS.append)
        return con

    sqlite3.connect = connect


def _echo_plugin():
    from llmforge.components import Completion, Generator, Usage
    from llmforge.hookspecs import hookimpl

    class Echo(Generator):
        name = "echo"

        def chat(self, messages, *, max_tokens=256, temperature=0.0, stop=None, **kw):
            text = messages[-1]["content"].split("[1] ", 1)[-1].split("\n", 1)[0]
            return Completion(text=text, usage=Usage(10, 10), model="echo")

    class Plugin:
        @hookimpl
        def register_generators(self, register):
            register(Echo)

    return Plugin()


def build(home: Path):
    from llmforge import config as cfg
    from llmforge.forge import Forge
    from llmforge.plugins import make_plugin_manager
    from llmforge.registry import collect

    registry = collect(make_plugin_manager(extra=(_echo_plugin(),)))
    conf = cfg.validate(
        {
            "home": str(home),
            "components": {"generator": "echo"},
            "identity": {"directory": str(CORPUS / "principals.yaml")},
            "rag": {"index": INDEX, "num_results": 4},
        }
    )
    return govern_and_index(Forge(conf, REPO, registry, user="admin"))


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="passes over the 83 questions")
    add_json_option(ap)
    args = ap.parse_args()
    _trace_catalog()
    questions = [json.loads(line) for line in (CORPUS / "questions.jsonl").open()]
    users = USERS
    with tempfile.TemporaryDirectory() as tmp:
        forge = build(Path(tmp) / "home")
        idx = forge.vector_search.get_index(index_name=INDEX)
        forge.rag.ask(questions[0]["question"], user=users["engineering"])  # warm caches
        ask_ms, search_ms, counts = [], [], []
        for _ in range(args.repeats):
            for q in questions:
                user = users.get(q["asked_by"], "alice@acme.example")
                search = lambda: idx.similarity_search(  # noqa: E731
                    columns=["document_id", "content"], query_text=q["question"], num_results=4
                )
                search()  # embeds the question (cached from here on), untimed
                t = time.perf_counter()
                search()
                search_ms.append((time.perf_counter() - t) * 1e3)
                STATEMENTS.clear()
                t = time.perf_counter()
                forge.rag.ask(q["question"], user=user)
                ask_ms.append((time.perf_counter() - t) * 1e3)
                counts.append(len(STATEMENTS))
    print(f"{len(ask_ms)} asks on {len(questions)} questions, generation excluded (echo generator)")
    print(f"{'':28}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"{'similarity_search (baseline)':28}{pct(search_ms, 0.5):9.2f}{pct(search_ms, 0.99):9.2f}")
    print(f"{'rag.ask (all but generation)':28}{pct(ask_ms, 0.5):9.2f}{pct(ask_ms, 0.99):9.2f}")
    print(f"overhead ratio rag.ask / similarity_search (p50): {pct(ask_ms, 0.5) / pct(search_ms, 0.5):.2f}x")
    print(
        f"catalog statements per rag.ask: median {statistics.median(counts):.0f}, "
        f"min {min(counts)}, max {max(counts)}"
    )
    if args.json:
        figs = [
            figure(
                "rag.ask p50 ms (all but generation)",
                pct(ask_ms, 0.5),
                "ms",
                better="lower",
                baseline="bare similarity_search p50",
                baseline_value=pct(search_ms, 0.5),
            ),
            figure("rag.ask p99 ms (all but generation)", pct(ask_ms, 0.99), "ms", better="lower"),
            figure("catalog statements per rag.ask", statistics.median(counts), "statements", better="lower"),
        ]
        write_json(args.json, "rag_overhead", figs, f"{len(ask_ms)} asks, echo generator")


if __name__ == "__main__":
    main()
