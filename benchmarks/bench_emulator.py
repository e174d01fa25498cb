"""Emulator overhead: ``similarity_search`` p50 through the real client + the emulator vs the
in-process local index it is backed by, on the same delta-sync index and the same queries.

Both sides embed the query text with the same local model and search the same FAISS index;
the difference is the client (request building, retries, JSON), HTTP on loopback, the
emulator's auth, grant checks and row-filter AND, and the response round trip.

    .venv/bin/python benchmarks/bench_emulator.py [--docs 500] [--queries 100] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from _results import add_json_option, figure, write_json

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
TOPICS = ["vacation", "salary", "build", "deploy", "holiday", "travel", "security", "onboarding"]
DEPTS = ["hr", "engineering", "all"]
INDEX = "main.bench.docs_idx"


def timed(fn, q: str) -> float:
    t0 = time.perf_counter()
    fn(q)
    return (time.perf_counter() - t0) * 1000


def interleaved_p50(a, b, queries_a: list[str], queries_b: list[str], warmup: int = 5) -> tuple[float, float]:
    """p50 of ``a`` and of ``b``, called alternately so load on the machine hits both alike."""
    for qa, qb in zip(queries_a[:warmup], queries_b[:warmup], strict=True):
        a(qa), b(qb)
    la, lb = [], []
    for qa, qb in zip(queries_a, queries_b, strict=True):
        la.append(timed(a, qa))
        lb.append(timed(b, qb))
    return statistics.median(la), statistics.median(lb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=500)
    ap.add_argument("--queries", type=int, default=100)
    add_json_option(ap)
    args = ap.parse_args()

    import pyarrow as pa
    from databricks.vector_search.client import VectorSearchClient
    from llmforge_emulator import start_emulator

    import llmforge

    with tempfile.TemporaryDirectory() as home:
        forge = llmforge.connect(backend="local", home=home, user="admin")
        forge.catalog.add_principal("admin", groups=["admins"])
        rows = [
            {
                "id": i,
                "text": f"Note {i} about {TOPICS[i % len(TOPICS)]} policy, revision {i // 7}.",
                "dept": DEPTS[i % 3],
            }
            for i in range(args.docs)
        ]
        forge.table("main.bench.docs").create(pa.Table.from_pylist(rows), primary_key="id")
        forge.vector_search.create_endpoint("ep")
        forge.vector_search.create_delta_sync_index(
            endpoint_name="ep",
            source_table_name="main.bench.docs",
            index_name=INDEX,
            primary_key="id",
            embedding_source_column="text",
            embedding_model_endpoint_name="databricks-gte-large-en",
            columns_to_sync=["id", "text", "dept"],
        )
        local = forge.vector_search.get_index(endpoint_name="ep", index_name=INDEX)  # as a reader opens it
        # distinct texts per side: the embedder caches query vectors, so a repeated text would
        # measure a cache hit on the second side
        queries = [f"{TOPICS[i % len(TOPICS)]} policy question {i}" for i in range(args.queries)]
        other = [f"{TOPICS[i % len(TOPICS)]} policy question {i + args.queries}" for i in range(args.queries)]
        cols = ["id", "text"]
        url, stop = start_emulator(forge, tokens={"tok-bench": "admin"})
        try:
            client = VectorSearchClient(
                workspace_url=url, personal_access_token="tok-bench", disable_notice=True
            )
            remote = client.get_index(endpoint_name="ep", index_name=INDEX)
            in_process, emulated = interleaved_p50(
                lambda q: local.similarity_search(columns=cols, query_text=q, num_results=5),
                lambda q: remote.similarity_search(
                    columns=cols, query_text=q, num_results=5, disable_notice=True
                ),
                queries,
                other,
            )
        finally:
            stop()
    print(f"docs={args.docs} queries={args.queries} num_results=5")
    print(f"in-process local index   p50 {in_process:8.2f} ms")
    print(f"real client + emulator   p50 {emulated:8.2f} ms")
    print(f"ratio (emulated / local)     {emulated / in_process:8.2f}x  (+{emulated - in_process:.2f} ms)")
    if args.json:
        fig = figure(
            "similarity_search p50 through client + emulator",
            emulated,
            "ms",
            better="lower",
            baseline="in-process local index p50",
            baseline_value=in_process,
        )
        write_json(args.json, "emulator", [fig], f"docs={args.docs} queries={args.queries}, interleaved")


if __name__ == "__main__":
    main()
