"""The whole enterprise-LLM recipe on the ``databricks`` backend: ingest, govern, pairs,
fine-tune, register, promote, serve, index and identity-aware answers.

Every step goes through the real clients (``databricks-sdk``, ``databricks-vectorsearch``,
``mlflow.deployments``) configured only by ``DATABRICKS_HOST`` / ``DATABRICKS_TOKEN``:

    python examples/databricks_recipe.py --emulate     # offline, against llmforge's emulator

    export DATABRICKS_HOST=https://<workspace> DATABRICKS_TOKEN=dapi...
    export LLMFORGE_WAREHOUSE_ID=<sql warehouse id> LLMFORGE_VOLUME=/Volumes/main/llmforge/jobs
    export LLMFORGE_GPU_POLICY_ID=<cluster policy id>   # or LLMFORGE_GPU_NODE_TYPE=g5.12xlarge
    python examples/databricks_recipe.py               # the same code on a workspace

With ``--emulate`` a local forge in a temporary home is served as the workspace (its
principals: admin, alice in engineering, bob in hr) and the training job trains the tiny
random Llama in seconds. On a workspace the principals are its users and groups (a
department ``d`` is the account group ``dept_d``) and the job trains the config's
``databricks:`` model on the GPU compute named above.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile

DOCS = "main.knowledge.documents"
PAIRS = "ml.llm_training.enterprise_instructions_v1"
MODEL = "main.production.enterprise_llm_v1"
SERVING = "enterprise-llm-v1"
VS_ENDPOINT = "knowledge-endpoint"
INDEX = "main.knowledge.documents_index"
DOCUMENTS = [
    ("hr-001", "hr", "Vacation policy", "Full-time employees get 25 days of paid leave per year."),
    ("hr-002", "hr", "Salary bands", "Salary bands are reviewed by the HR team every spring."),
    (
        "eng-007",
        "engineering",
        "Project Helix",
        "Project Helix is owned by the platform team. Helix ships in Q3.",
    ),
    (
        "eng-009",
        "engineering",
        "Build tooling",
        "The build uses Bazel. The build cache lives in the data center.",
    ),
    ("all-003", "all", "Holidays", "The offices are closed on public holidays."),
    ("all-004", "all", "Office hours", "The office opens at 8am and closes at 6pm."),
]
ROW_FILTER = {
    "type": "department_membership",
    "column": "department",
    "always_visible": ["all"],
    "exempt_groups": ["admins"],
}


def finetune_config(emulated: bool) -> dict:
    """The seed's config shape; the ``databricks:`` block is what the training job trains."""
    config = {
        "model": "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "task_type": "INSTRUCTION_FINETUNE",
        "training_data": {"table": PAIRS, "split": 0.8},
        "training_params": {"learning_rate": 2e-5, "num_epochs": 1, "batch_size": 2},
        "evaluation": {"metrics": ["perplexity", "rouge"], "max_examples": 2, "max_new_tokens": 6},
        "output": {"registered_model": MODEL, "experiment": "/Shared/llmforge/enterprise-llm"},
    }
    if emulated:
        config["databricks"] = {
            "model": "tiny-random-llama",
            "learning_rate": 1e-3,
            "max_steps": 4,
            "max_seq_len": 96,
        }
    return config


def connect(home: str) -> object:
    """A databricks-backend project: options from the environment, nothing else."""
    import llmforge

    trainer = {
        "volume": os.environ.get("LLMFORGE_VOLUME", "/Volumes/main/llmforge/jobs"),
        "poll_seconds": 1.0,
    }
    if os.environ.get("LLMFORGE_GPU_POLICY_ID"):
        trainer["policy_id"] = os.environ["LLMFORGE_GPU_POLICY_ID"]
    trainer["node_type_id"] = os.environ.get("LLMFORGE_GPU_NODE_TYPE", "g5.12xlarge")
    return llmforge.connect(
        home=home,
        user="admin",
        config={
            "backend": "databricks",
            "components": {
                "data_source": {
                    "name": "databricks",
                    "options": {"warehouse_id": os.environ.get("LLMFORGE_WAREHOUSE_ID", "")},
                },
                "trainer": {"name": "databricks", "options": trainer},
                "generator": {"name": "databricks", "options": {"endpoint": SERVING}},
            },
            "rag": {"index": INDEX, "num_results": 3, "score_threshold": 0.0},
        },
    )


def recipe(forge: object, config: dict, say=print) -> dict:
    """The recipe, stage by stage; returns what each stage produced."""
    import pyarrow as pa
    import pyarrow.compute
    from databricks.sdk.service.serving import EndpointCoreConfigInput, ServedEntityInput
    from llmforge_databricks.workspace import workspace_client

    from llmforge.pairs import pairs_table

    w = workspace_client()
    # 1. ingest: one CREATE TABLE + one parameterised INSERT on the SQL warehouse
    rows = [dict(zip(("document_id", "department", "title", "content"), d, strict=True)) for d in DOCUMENTS]
    docs = forge.table(DOCS)
    docs.create(pa.Table.from_pylist(rows), primary_key="document_id", comment="company documents")
    say(f"1. ingested {docs.read().num_rows} documents into {DOCS} (version {docs.version})")
    # 2. govern: grants through the permissions API, the row filter as a UC function + property
    for privilege, securable in (("USE", "main"), ("USE", "main.knowledge"), ("SELECT", DOCS)):
        forge.data.grant(privilege, securable, "account users")
    forge.data.set_row_filter(DOCS, ROW_FILTER)
    info = w.tables.get(DOCS)
    say(f"2. row filter {info.row_filter.function_name} on ({', '.join(info.row_filter.input_column_names)})")
    # 3. pairs: deterministic instruction/response pairs from the documents everyone may read.
    #    Weights are governed like rows: a model served to everyone (@champion) may learn only
    #    rows everyone may read, so department documents stay out of this training table.
    public = docs.read().filter(pa.compute.equal(docs.read().column("department"), "all"))
    pairs = pairs_table(public).drop_columns(["messages"])
    forge.table(PAIRS).create(pairs, primary_key="pair_id")
    for privilege, securable in (("USE", "ml"), ("USE", "ml.llm_training"), ("SELECT", PAIRS)):
        forge.data.grant(privilege, securable, "account users")
    say(
        f"3. {pairs.num_rows} training pairs in {PAIRS}, from the {public.num_rows} documents everyone may read"
    )
    # 4-5. fine-tune as a Jobs run on GPU compute; the run registers a UC model version
    run = forge.finetune(config)
    say(f"4. training job {run.details['job_run_id']} finished: MLflow run {run.run_id}")
    say(f"5. registered {run.model_uri}")
    # 6. promote: the UC alias, through the workspace client
    w.registered_models.set_alias(full_name=MODEL, alias="champion", version_num=int(run.model_version))
    champion = w.model_versions.get_by_alias(full_name=MODEL, alias="champion")
    say(f"6. {MODEL}@champion -> version {champion.version}")
    # 7. serve that version on a serving endpoint
    w.serving_endpoints.create_and_wait(
        name=SERVING,
        config=EndpointCoreConfigInput(
            name=SERVING,
            served_entities=[
                ServedEntityInput(
                    entity_name=MODEL,
                    entity_version=str(champion.version),
                    workload_size="Small",
                    scale_to_zero_enabled=True,
                )
            ],
        ),
    )
    say(f"7. serving endpoint {SERVING} is READY")
    # 8. index: a delta-sync index over the governed documents
    vs = forge.vector_search
    vs.create_endpoint(VS_ENDPOINT)
    vs.create_delta_sync_index(
        endpoint_name=VS_ENDPOINT,
        source_table_name=DOCS,
        index_name=INDEX,
        primary_key="document_id",
        embedding_source_column="content",
    )
    say(f"8. delta-sync index {INDEX} on {VS_ENDPOINT}")
    # 9. identity-aware answers: each user's row filter is ANDed into the search
    answers = {}
    for user, question in (
        ("bob", "How many days of paid leave do we get?"),
        ("alice", "Who owns Project Helix?"),
    ):
        ans = forge.rag.ask(question, user=user)
        cited = [c["primary_key"] for c in ans.citations]
        answers[user] = cited
        say(f"9. {user}: {question} -> cites {cited}")
    return {"model_version": run.model_version, "answers": answers}


def start_emulated_workspace(home: str) -> callable:
    """A local forge served as the workspace; sets DATABRICKS_HOST/TOKEN and the options."""
    from llmforge_emulator import start_emulator

    import llmforge

    local = llmforge.connect(
        backend="local",
        home=home,
        user="admin",
        generator={"name": "local", "options": {"model": "tiny-random-llama"}},
    )
    cat = local.catalog
    cat.add_principal("admin", groups=["admins"])
    cat.add_principal("alice", departments=["engineering"])
    cat.add_principal("bob", departments=["hr"])
    cat.create_catalog("ml", owner="admin")
    cat.create_schema("ml.llm_training", owner="admin")  # the volume for job files lives in this schema
    token = "dapi" + secrets.token_hex(16)
    url, stop = start_emulator(local, tokens={token: "admin"})
    os.environ.update(
        DATABRICKS_HOST=url,
        DATABRICKS_TOKEN=token,
        DATABRICKS_CONFIG_FILE=os.devnull,
        LLMFORGE_WAREHOUSE_ID="emulated",
        LLMFORGE_VOLUME="/Volumes/ml/llm_training/jobs",
    )
    return stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emulate", action="store_true", help="run against llmforge's emulator, offline")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as home:
        stop = start_emulated_workspace(home) if args.emulate else (lambda: None)
        try:
            out = recipe(connect(home), finetune_config(args.emulate))
        finally:
            stop()
    print(f"done: model version {out['model_version']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
