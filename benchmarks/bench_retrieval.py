"""Retrieval quality on ClapNQ (real Wikipedia passages and questions).

Index all 600 gold passages (answerable + unanswerable dev sets) through the real pipeline
(a Delta table -> delta-sync index), query with the 300 answerable questions, and report
recall@1, recall@5 and MRR@10 for ANN, HYBRID and the index's own FULL_TEXT (BM25), beside a
plain BM25 baseline (rank-bm25, whitespace tokens) run in the same process.

``--questions N`` (a quick run) keeps the first N answerable questions, their gold passages and
the passages of the first N unanswerable records as distractors.

    .venv/bin/python benchmarks/bench_retrieval.py [--data ../shared/data/clapnq] [--questions N]
        [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _results import add_json_option, figure, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent


def load(data: Path, limit: int = 0) -> tuple[list[dict], list[tuple[str, str]]]:
    """Unique passages (id, title, text) and (question, gold passage id) pairs; ``limit``: only
    the first ``limit`` records of each file."""
    passages: dict[str, dict] = {}
    questions = []
    for name in ("dev_answerable.jsonl", "dev_unanswerable.jsonl"):
        for line in (data / name).read_text().splitlines()[: limit or None]:
            rec = json.loads(line)
            for p in rec["passages"]:
                content = f"{p['title']}. {p['text'].strip()}"
                new = {"pid": f"p{len(passages):04d}", "content": content}
                pid = passages.setdefault(content, new)["pid"]
            if name == "dev_answerable.jsonl":
                questions.append((rec["input"], pid))
    return list(passages.values()), questions


def score(ranked: list[list[str]], gold: list[str]) -> dict[str, float]:
    pairs = list(zip(ranked, gold, strict=True))
    r1 = sum(r[:1].count(g) for r, g in pairs) / len(gold)
    r5 = sum(g in r[:5] for r, g in pairs) / len(gold)
    mrr = sum(1 / (r.index(g) + 1) if g in r[:10] else 0 for r, g in pairs) / len(gold)
    return {"recall@1": round(r1, 3), "recall@5": round(r5, 3), "MRR@10": round(mrr, 3)}


def dedupe(ids: list[str]) -> list[str]:
    """Chunk hits -> document ranking (first occurrence wins)."""
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(i, None)
    return list(seen)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "clapnq"))
    ap.add_argument("--questions", type=int, default=0, help="first N questions (0: all 300)")
    add_json_option(ap)
    args = ap.parse_args()
    import pyarrow as pa
    from rank_bm25 import BM25Okapi

    import llmforge

    passages, questions = load(Path(args.data), args.questions)
    print(f"{len(passages)} unique passages, {len(questions)} answerable questions")
    forge = llmforge.connect(backend="local", home=tempfile.mkdtemp(prefix="bench-retrieval-"), user="admin")
    forge.table("main.bench.clapnq").create(pa.Table.from_pylist(passages), primary_key="pid")
    t0 = time.perf_counter()
    idx = forge.vector_search.create_delta_sync_index(
        "bench", "main.bench.clapnq", "main.bench.clapnq_idx", "pid", "content"
    )
    chunks = idx.describe()["status"]["indexed_row_count"]
    print(f"indexed {chunks} chunks in {time.perf_counter() - t0:.1f}s")
    gold = [g for _, g in questions]
    results = {}
    for qt in ("ANN", "HYBRID", "FULL_TEXT"):
        ranked, t0 = [], time.perf_counter()
        for q, _ in questions:
            resp = idx.similarity_search(["pid"], query_text=q, num_results=20, query_type=qt)
            ranked.append(dedupe([r[0] for r in resp["result"]["data_array"]]))
        ms = round(1000 * (time.perf_counter() - t0) / len(gold), 1)
        results[qt] = {**score(ranked, gold), "ms/query": ms}
    bm25 = BM25Okapi([p["content"].lower().split() for p in passages])
    pids = [p["pid"] for p in passages]
    t0 = time.perf_counter()
    ranked = []
    for q, _ in questions:
        s = bm25.get_scores(q.lower().split())
        ranked.append([pids[i] for i in sorted(range(len(s)), key=lambda i: -s[i])[:10]])
    results["plain BM25 (rank-bm25)"] = {
        **score(ranked, gold),
        "ms/query": round(1000 * (time.perf_counter() - t0) / len(gold), 1),
    }
    width = max(map(len, results))
    print(f"{'method':<{width}}  recall@1  recall@5  MRR@10  ms/query")
    for name, r in results.items():
        print(
            f"{name:<{width}}  {r['recall@1']:>8}  {r['recall@5']:>8}  {r['MRR@10']:>6}  {r['ms/query']:>8}"
        )
    base = results["plain BM25 (rank-bm25)"]["recall@5"]
    for qt in ("ANN", "HYBRID"):
        print(f"{qt} recall@5 / plain BM25 recall@5 = {results[qt]['recall@5'] / base:.2f}")
    if args.json:
        bm25 = results["plain BM25 (rank-bm25)"]
        figs = [
            figure(
                f"{qt} {metric}", results[qt][metric], "", baseline="plain BM25", baseline_value=bm25[metric]
            )
            for qt in ("ANN", "HYBRID", "FULL_TEXT")
            for metric in ("recall@1", "recall@5", "MRR@10")
        ]
        figs.append(
            figure(
                "HYBRID ms/query",
                results["HYBRID"]["ms/query"],
                "ms",
                better="lower",
                baseline="plain BM25",
                baseline_value=bm25["ms/query"],
            )
        )
        note = f"{len(passages)} passages, {len(questions)} questions; recall is exact (no repeats needed)"
        write_json(args.json, "retrieval", figs, note)


if __name__ == "__main__":
    main()
