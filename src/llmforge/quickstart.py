"""``llmforge quickstart``: the whole recipe end to end on the local backend, offline.

documents (sample enterprise corpus) → governed Delta table (grants, row filter, lineage) →
instruction pairs → LoRA fine-tune of SmolLM2-135M tracked in MLflow → new model version,
promoted to ``@champion`` when it passes its gate → delta-sync vector index → identity-aware
answers with citations and guardrails → an HTML report.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

DOCS = "main.knowledge.documents"
PAIRS = "ml.llm_training.enterprise_instructions_v1"
PAIRS_EVAL = "ml.llm_training.enterprise_instructions_v1_eval"
INDEX = "main.knowledge.documents_index"
ENDPOINT = "llmforge-quickstart"
DEPARTMENTS = ("engineering", "finance", "hr", "sales")
#: a version becomes @champion only if its held-out evaluation passes this gate
GATE = {"max_perplexity": 60.0, "min_rougeL": 0.1}
#: (asker, question): one per department, plus a question about another department's document
ASKS = [
    ("alice@acme.example", "What is the current status of Project Helix?"),
    ("alice@acme.example", "Who owns Project Helix?"),
    ("carol@acme.example", "What is the expense approval limit for managers?"),
    ("dave@acme.example", "Who is the account owner for our largest customer?"),
    ("erin@acme.example", "How many PTO days do employees get per year?"),
    ("alice@acme.example", "What is the salary band for a senior engineer?"),
]


@contextmanager
def step(n: int, title: str, timings: dict[str, float]) -> Iterator[None]:
    click.secho(f"[{n}/7] {title}", bold=True)
    t0 = time.perf_counter()
    yield
    timings[title] = time.perf_counter() - t0
    click.echo(f"      done in {timings[title]:.1f}s")


def govern(forge: Any, corpus: Path) -> None:
    """Principals from the directory file; department groups may read the knowledge schema
    and see only their department's rows (plus company-wide ones); admins see everything."""
    cat = forge.catalog
    cat.load_directory(corpus / "principals.yaml")
    for dept in DEPARTMENTS:
        cat.grant("USE", "main", dept)  # inherited by main.knowledge
        cat.grant("SELECT", "main.knowledge", dept)
    cat.set_row_filter(DOCS, {"type": "department_membership", "column": "department",
                              "always_visible": ["all"], "exempt_groups": ["admins"]})


def run(home: str, model: str | None = None, max_steps: int | None = None, fresh: bool = False) -> Path:
    import llmforge
    from llmforge.loaders import load_documents
    from llmforge.pairs import pairs_table
    from llmforge.sample import sample_corpus_path

    home_path = Path(home).resolve()
    if fresh and home_path.exists():
        shutil.rmtree(home_path)
    timings: dict[str, float] = {}
    corpus = sample_corpus_path()
    forge = llmforge.connect("local", home=str(home_path), user="admin",
                             guardrails=["prompt_injection", "faithfulness", "pii"])
    click.echo(f"project home: {forge.home}\ncorpus: {corpus}")

    with step(1, "ingest documents into a Delta table", timings):
        docs, report = load_documents(corpus / "docs")
        table = forge.table(DOCS)
        if table.exists:
            table.merge(docs, key="document_id")
        else:
            table.create(docs, primary_key="document_id", comment="Acme Dynamics documents")
        click.echo(f"      {docs.num_rows} documents → {DOCS}@v{table.version}; {report.summary()}")

    with step(2, "govern: principals, grants, row filter", timings):
        govern(forge, corpus)
        for user in ("alice@acme.example", "erin@acme.example", "admin"):
            n = forge.table(DOCS, user=user).read().num_rows
            click.echo(f"      {user:<22} sees {n} documents")

    with step(3, "create instruction pairs (with lineage)", timings):
        # instruction tuning: question/answer kinds only (raw chunks are for CONTINUED_PRETRAIN)
        pairs = pairs_table(docs, kinds=("fact", "acronym", "heading", "summary"))
        train, held = _split(pairs)
        src = [f"table:{DOCS}@{table.version}"]
        for name, data in ((PAIRS, train), (PAIRS_EVAL, held)):
            t = forge.table(name)
            if t.exists:
                t.overwrite(data, sources=src)
            else:
                t.create(data, primary_key="pair_id", sources=src)
        click.echo(f"      {train.num_rows} training pairs, {held.num_rows} eval pairs")

    with step(4, "fine-tune SmolLM2-135M with LoRA (MLflow run → new model version)", timings):
        overrides = {k: v for k, v in {"model": model, "max_steps": max_steps}.items() if v}
        result = forge.finetune(str(_ft_config()), **overrides)
        click.echo(f"      run {result.run_id}: {result.registered_model} version {result.model_version}; "
                   f"metrics {json.dumps({k: round(v, 3) for k, v in result.metrics.items()})}")
        promoted = _promote(forge, result)

    with step(5, "build the delta-sync vector index", timings):
        vs = forge.vector_search
        if not vs.index_exists(index_name=INDEX):
            vs.create_endpoint(ENDPOINT)
            vs.create_delta_sync_index(endpoint_name=ENDPOINT, source_table_name=DOCS, index_name=INDEX,
                                       primary_key="document_id", embedding_source_column="content",
                                       columns_to_sync=["document_id", "title", "department", "content"])
        idx = vs.get_index(index_name=INDEX)
        stats = idx.sync()
        d = idx.describe()
        click.echo(f"      {d['status']['indexed_row_count']} chunks from {d.get('indexed_document_count')} "
                   f"documents at {DOCS}@v{d.get('synced_version')}; last sync {stats}")

    if isinstance(promoted, dict):  # serve the champion: the fine-tuned adapter on its base model
        forge = llmforge.connect("local", home=str(home_path), user="admin",
                                 guardrails=["prompt_injection", "faithfulness", "pii"],
                                 generator={"name": "local", "options": {
                                     "adapter": f"models:/{result.registered_model}@champion"}})
    with step(6, "ask as different users (identity-aware RAG, guardrails, citations)", timings):
        click.echo(f"      generator: {forge.generator.options.adapter or forge.generator.options.model}")
        answers = []
        for user, q in ASKS:
            a = forge.rag.ask(q, user=user)
            answers.append(a)
            cites = ", ".join(c["document_id"] for c in a.citations) or "none"
            click.echo(f"      {user} asks: {q}\n        → {a.text.strip()[:160]!r}\n        cites: {cites}")

    with step(7, "write the report", timings):
        out = _report(forge, result, promoted, answers, timings)
        click.echo(f"      {out}")
    click.secho(f"quickstart finished in {sum(timings.values()):.0f}s — open {out}", fg="green")
    return out


def _split(pairs: Any, every: int = 10) -> tuple[Any, Any]:
    """Deterministic 90/10 split by pair id, so reruns train and evaluate on the same rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    held = pa.array([int(i[:8], 16) % every == 0 for i in pairs["pair_id"].to_pylist()])
    return pairs.filter(pc.invert(held)), pairs.filter(held)


def _ft_config() -> Path:
    return Path(__file__).resolve().parents[2] / "examples" / "mosaic-ft-config.yaml"


def _promote(forge: Any, result: Any) -> dict | str:
    from llmforge.errors import LLMForgeError

    try:
        out = forge.models.promote(result.registered_model, result.model_version, alias="champion",
                                   gate=GATE)
        click.echo(f"      promoted models:/{result.registered_model}@champion → v{result.model_version}")
        return out
    except LLMForgeError as exc:
        click.echo(f"      not promoted: {exc}")
        return str(exc)


def _report(forge: Any, result: Any, promoted: Any, answers: list, timings: dict) -> Path:
    from llmforge.report import quickstart_report

    return quickstart_report(forge.home / "quickstart-report.html", result=result, promoted=promoted,
                             answers=answers, timings=timings)
