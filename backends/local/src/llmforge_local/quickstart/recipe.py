"""``llmforge quickstart``: the whole recipe end to end on the local backend, offline.

documents (sample enterprise corpus) → governed Delta table (grants, row filter, lineage) →
instruction pairs → LoRA fine-tune of SmolLM2-135M tracked in MLflow → new model version,
promoted to ``@champion`` when it passes its gate → delta-sync vector index → identity-aware
answers with citations and guardrails → an HTML report.

Everything it needs ships with the package: the fine-tuning config is package data and the
corpus is generated into the project home, so a plain ``pip install`` runs it anywhere.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import click

FT_CONFIG = "mosaic-ft-config.yaml"
DOCS = "main.knowledge.documents"
PAIRS = "ml.llm_training.enterprise_instructions_v1"
PAIRS_EVAL = "ml.llm_training.enterprise_instructions_v1_eval"
INDEX = "main.knowledge.documents_index"
ENDPOINT = "llmforge-quickstart"
DEPARTMENTS = ("engineering", "finance", "hr", "sales")
#: a version becomes @champion only if its held-out evaluation passes this gate
GATE = {"max_perplexity": 60.0, "min_rougeL": 0.1}
#: optimizer steps per department adapter (four adapters ~ the time of one 48-step run)
ADAPTER_STEPS = 12
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
    cat.set_row_filter(
        DOCS,
        {
            "type": "department_membership",
            "column": "department",
            "always_visible": ["all"],
            "exempt_groups": ["admins"],
        },
    )


@dataclass(frozen=True)
class Assets:
    """What the quickstart reads, inside its project home."""

    ft_config: Path  #: the fine-tuning config (the seed's file plus its ``local:`` overrides)
    corpus: Path  #: the sample corpus: ``docs/``, ``questions.jsonl``, ``principals.yaml``


def assets(home: str | Path) -> Assets:
    """Put the quickstart's inputs under ``home``: the packaged fine-tuning config (kept when
    already there, so an edited copy is used on reruns) and the sample corpus, generated from
    the packaged generator unless an up-to-date copy is there."""
    from llmforge_local.quickstart.sample import sample_corpus_path

    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / FT_CONFIG
    if not config.exists():
        config.write_bytes(resources.files(__package__).joinpath(FT_CONFIG).read_bytes())
    return Assets(ft_config=config, corpus=sample_corpus_path(home / "corpus"))


def run(home: str, model: str | None = None, max_steps: int | None = None, fresh: bool = False) -> Path:
    import llmforge
    from llmforge.finetune_config import Governance, load_finetune_config
    from llmforge.governance import inherit_row_filter
    from llmforge.loaders import load_documents
    from llmforge.pairs import pairs_table
    from llmforge.pairs.augment import AugmentOptions, augment_table

    home_path = Path(home).resolve()
    if fresh and home_path.exists():
        shutil.rmtree(home_path)
    timings: dict[str, float] = {}
    inputs = assets(home_path)
    corpus = inputs.corpus
    forge = llmforge.connect(
        "local", home=str(home_path), user="admin", guardrails=["prompt_injection", "faithfulness", "pii"]
    )
    click.echo(f"project home: {forge.home}\ncorpus: {corpus}\nfine-tuning config: {inputs.ft_config}")

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
        # each training fact also asked in other words (held-out eval pairs stay as written)
        train = augment_table(train, AugmentOptions(phrasings=1, relations=3))
        src = [f"table:{DOCS}@{table.version}"]
        for name, data in ((PAIRS, train), (PAIRS_EVAL, held)):
            t = forge.table(name)
            if t.exists:
                t.overwrite(data, sources=src)
            else:
                t.create(data, primary_key="pair_id", sources=src)
            # the pairs keep each document's department: they inherit the documents' row filter
            inherit_row_filter(forge.catalog, name, data.column_names)
        # everyone may query the training tables: the inherited row filter decides which pairs
        # (a department's adapter is then servable to exactly that department)
        forge.catalog.grant("USE", PAIRS.split(".")[0], "account users")
        forge.catalog.grant("SELECT", PAIRS.rsplit(".", 1)[0], "account users")
        click.echo(f"      {train.num_rows} training pairs, {held.num_rows} eval pairs")

    with step(4, "fine-tune SmolLM2-135M with LoRA (MLflow run → new model version)", timings):
        # four adapters instead of one: each gets a quarter of the single run's steps by default
        steps = max_steps or ADAPTER_STEPS
        overrides = {k: v for k, v in {"model": model, "max_steps": steps}.items() if v}
        # one adapter per department, each on the rows that department may read
        cfg = load_finetune_config(inputs.ft_config)
        cfg = cfg.model_copy(
            update={
                "llmforge": Governance(audiences="departments"),
                "evaluation": cfg.evaluation.model_copy(update={"gate": GATE}),
            }
        )
        result = forge.finetune(cfg, **overrides)
        base = cfg.for_backend("local", **overrides).model
        for audience, r in result.adapters.items():
            click.echo(
                f"      {audience}: run {r.run_id}, version {r.model_version} → "
                f"@{result.aliases[audience] or '(gate refused)'}; "
                f"metrics {json.dumps({k: round(v, 3) for k, v in r.metrics.items()})}"
            )
        promoted = {a: al for a, al in result.aliases.items() if al}

    with step(5, "build the delta-sync vector index", timings):
        vs = forge.vector_search
        if not vs.index_exists(index_name=INDEX):
            vs.create_endpoint(ENDPOINT)
            vs.create_delta_sync_index(
                endpoint_name=ENDPOINT,
                source_table_name=DOCS,
                index_name=INDEX,
                primary_key="document_id",
                embedding_source_column="content",
                columns_to_sync=["document_id", "title", "department", "content"],
            )
        idx = vs.get_index(index_name=INDEX)
        stats = idx.sync()
        d = idx.describe()
        click.echo(
            f"      {d['status']['indexed_row_count']} chunks from {d.get('indexed_document_count')} "
            f"documents at {DOCS}@v{d.get('synced_version')}; last sync {stats}"
        )

    if promoted:  # each caller is served the adapter of its department, on one base model
        forge = llmforge.connect(
            "local",
            home=str(home_path),
            user="admin",
            guardrails=["prompt_injection", "faithfulness", "pii"],
            generator={"name": "local", "options": {"model": base, "routed_model": result.registered_model}},
        )
    with step(6, "ask as different users (identity-aware RAG, guardrails, citations)", timings):
        click.echo(
            f"      generator: {forge.generator.options.routed_model or forge.generator.options.model}"
        )
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


def _report(forge: Any, result: Any, promoted: Any, answers: list, timings: dict) -> Path:
    from llmforge_local.quickstart.report import quickstart_report

    return quickstart_report(
        forge.home / "quickstart-report.html",
        result=result,
        promoted=promoted,
        answers=answers,
        timings=timings,
    )
