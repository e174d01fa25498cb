"""Ingest and pair-generation throughput: the Arrow engine vs the Spark engine, same data, same run.

The documents are the sample enterprise corpus (``examples/enterprise``), repeated with fresh
``document_id``s up to ``--docs`` rows. Each engine, in this one process:

* ingest: frame over the loaded documents -> ``saveAsTable`` (a governed Delta create);
* pairs: the seed's Step 1 — read the table, ``select``, ``withColumn("training_format",
  create_training_pair(col("content")))``, ``saveAsTable``;
* read: a governed read of the whole table as a principal with a row filter and a mask.

A plain Python loop over ``training_format`` is the pair-generation baseline. Ratios are
printed against the Arrow engine. Spark runs ``local[N]`` (``--spark-master``), so on a
laptop it measures the engine's overhead, not a cluster's speed.

    .venv/bin/python benchmarks/bench_ingest.py [--docs 5000] [--spark-master local[2]]
        [--engines arrow,spark] [--repeats 1] [--json PATH]

``--engines arrow`` leaves Spark (and its JVM start) out; ``--repeats`` times each stage that
many times (best kept, spread recorded).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from _results import add_json_option, figure, write_json

REPO = Path(__file__).resolve().parent.parent
DOCS = "main.knowledge.documents"


def corpus(n: int):
    """``n`` documents: the sample corpus repeated, or synthesized when it is not there."""
    import pyarrow as pa

    folder = REPO / "examples" / "enterprise" / "docs"
    if folder.is_dir():
        from llmforge.loaders import load_documents

        base, _ = load_documents(folder)
    else:
        base = pa.table(
            {
                "document_id": [f"doc-{i}" for i in range(50)],
                "title": [f"Doc {i}" for i in range(50)],
                "department": ["engineering", "hr", "finance", "sales", "all"] * 10,
                "content": [
                    f"# Project {i}\n\nProject Helix (PH) phase {i}.\n\nOwner: Ann\n"
                    f"Status: Active\n\n" + "Details follow. " * 40
                    for i in range(50)
                ],
            }
        )
    reps = -(-n // base.num_rows)
    parts = []
    for r in range(reps):
        ids = [f"{d}~{r}" for d in base.column("document_id").to_pylist()]
        parts.append(
            base.set_column(base.schema.get_field_index("document_id"), "document_id", pa.array(ids))
        )
    return pa.concat_tables(parts).slice(0, n).combine_chunks()


def step1(engine, out: str) -> None:
    F = engine.functions
    df = engine.read.table(DOCS)
    df = df.select("document_id", "title", "content").withColumn(
        "training_format", F.create_training_pair(F.col("content"))
    )
    df.write.mode("overwrite").saveAsTable(out)


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def rates(n: int, fn, repeats: int) -> list[float]:
    """Rows/s of ``repeats`` runs of ``fn`` over ``n`` rows."""
    return [n / timed(fn) for _ in range(repeats)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=5000)
    ap.add_argument("--spark-master", default="local[2]")
    ap.add_argument("--engines", default="arrow,spark", help="comma-separated: arrow, spark")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs of each stage")
    add_json_option(ap)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from llmforge_local.data.spark import local_session

    import llmforge
    from llmforge.catalog import SYSTEM
    from llmforge.pairs import training_format

    docs = corpus(args.docs)
    n = docs.num_rows
    forge = llmforge.connect(backend="local", home=tempfile.mkdtemp(prefix="bench-ingest-"), user=SYSTEM)
    forge.catalog.add_principal("reader", departments=["engineering"])
    wanted = args.engines.split(",")
    engines = {"arrow": forge.data.arrow(user=SYSTEM)}
    spark = None
    if "spark" in wanted:
        spark = local_session(master=args.spark_master)
        spark.sparkContext.setLogLevel("ERROR")
        engines["spark"] = forge.data.spark(spark, user=SYSTEM)
        # warm-up: the first Spark job starts Python workers; not what a long job pays per row
        step_warm = engines["spark"].createDataFrame(docs.slice(0, 10))
        step_warm.write.mode("overwrite").saveAsTable("tmp.warm.docs")

    results: dict[str, dict[str, list[float]]] = {}
    reps = args.repeats
    contents = docs.column("content").to_pylist()
    baseline = rates(n, lambda: [training_format(c) for c in contents], reps)
    for name, engine in engines.items():
        r = results[name] = {}
        r["ingest"] = rates(
            n, lambda: engine.createDataFrame(docs).write.mode("overwrite").saveAsTable(DOCS), reps
        )
        r["pairs"] = rates(n, lambda: step1(engine, f"ml.llm_training.pairs_{name}"), reps)
        forge.catalog.set_row_filter(
            DOCS, {"type": "department_membership", "column": "department", "always_visible": ["all"]}
        )
        forge.catalog.set_column_mask(DOCS, "content", {"type": "hash"})
        forge.catalog.grant("USE", "main", "reader")
        forge.catalog.grant("SELECT", "main", "reader")
        reader = (
            forge.data.arrow(user="reader") if name == "arrow" else forge.data.spark(spark, user="reader")
        )
        r["governed read"] = rates(n, lambda: reader.read.table(DOCS).count(), reps)
        forge.catalog.set_row_filter(DOCS, None)
        forge.catalog.set_column_mask(DOCS, "content", None)

    print(f"documents: {n}  spark master: {args.spark_master}  python {sys.version.split()[0]}")
    if spark is not None:
        a = forge.table("ml.llm_training.pairs_arrow", user=SYSTEM).read().sort_by("document_id")
        s = forge.table("ml.llm_training.pairs_spark", user=SYSTEM).read().sort_by("document_id")
        print(f"identical training rows on both engines: {a.equals(s)}")
    vs_head = f"{'spark/arrow':>13}" if spark is not None else ""
    print(f"{'stage':<15}" + "".join(f"{e + ' rows/s':>14}" for e in engines) + vs_head)
    figs = []
    for stage in ("ingest", "pairs", "governed read"):
        best = {e: max(results[e][stage]) for e in engines}
        vs = f"{best['spark'] / best['arrow']:>12.2f}x" if spark is not None else ""
        print(f"{stage:<15}" + "".join(f"{best[e]:>14,.0f}" for e in engines) + vs)
        if stage == "pairs":
            loop = "plain loop over training_format"
            figs.append(
                figure(
                    "arrow pairs rows/s",
                    results["arrow"][stage],
                    "rows/s",
                    baseline=loop,
                    baseline_value=baseline,
                )
            )
        else:
            figs.append(figure(f"arrow {stage} rows/s", results["arrow"][stage], "rows/s"))
        if spark is not None:
            figs.append(
                figure(
                    f"spark {stage} rows/s",
                    results["spark"][stage],
                    "rows/s",
                    baseline="arrow engine",
                    baseline_value=results["arrow"][stage],
                )
            )
    line = f"pair generation baseline (plain loop over training_format): {max(baseline):,.0f} docs/s; "
    line += ", ".join(
        f"{e} engine step 1 = {max(results[e]['pairs']) / max(baseline):.2f}x of it" for e in engines
    )
    print(line)
    if spark is not None:
        spark.stop()
    if args.json:
        note = f"{n} documents, engines {','.join(engines)}, best of {reps}, spark {args.spark_master}"
        write_json(args.json, "ingest", figs, note)


if __name__ == "__main__":
    main()
