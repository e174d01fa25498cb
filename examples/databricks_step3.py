"""Step 3 of the seed walkthrough (retrieve with Vector Search, answer with a served LLM) as
plain Databricks workspace code, run offline against llmforge's Databricks emulator.

The seed's Step 3 code fails on a real workspace as written, and fails the same way here:

1. ``index.similarity_search(query_text=q, num_results=3)`` raises ``TypeError`` before any
   request is sent: ``columns`` is the client's first, required parameter.
2. ``r["content"] for r in results["result"]["data_array"]`` raises ``TypeError``: each row is
   a list in the order of ``results["manifest"]["columns"]`` (score last), not a dict.

:func:`step3` is the corrected code. Nothing in it is llmforge: with ``DATABRICKS_HOST`` and
``DATABRICKS_TOKEN`` set for a real workspace it runs there unchanged.

    python examples/databricks_step3.py                      # SmolLM2-135M-Instruct answers
    python examples/databricks_step3.py --model tiny-random-llama   # fast smoke run
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile

ENDPOINT = "knowledge-endpoint"
INDEX = "main.knowledge.documents_index"
LLM = "databricks-meta-llama-3-3-70b-instruct"
DOCS = [
    {
        "doc_id": "hr-001",
        "department": "hr",
        "content": "Vacation policy: full-time employees get 25 days of paid leave per calendar year.",
    },
    {
        "doc_id": "eng-007",
        "department": "engineering",
        "content": "Project Helix is owned by the platform engineering team, led by Dana Ruiz.",
    },
    {
        "doc_id": "all-003",
        "department": "all",
        "content": "The offices are closed on public holidays; support runs an on-call rota.",
    },
]


def step3(question: str, max_tokens: int = 96) -> tuple[str, list[dict]]:
    """Retrieve the top documents and ask the served LLM, the corrected seed code.
    Returns the answer and the retrieved rows."""
    from databricks.vector_search.client import VectorSearchClient
    from mlflow.deployments import get_deploy_client

    vsc = VectorSearchClient(
        workspace_url=os.environ["DATABRICKS_HOST"],
        personal_access_token=os.environ["DATABRICKS_TOKEN"],
        disable_notice=True,
    )
    index = vsc.get_index(endpoint_name=ENDPOINT, index_name=INDEX)
    # Fix 1: name the columns to return (the seed omitted them: TypeError).
    results = index.similarity_search(columns=["doc_id", "content"], query_text=question, num_results=3)
    # Fix 2: rows are lists in manifest order, score last; map them to dicts by column name.
    names = [c["name"] for c in results["manifest"]["columns"]]
    rows = [dict(zip(names, row, strict=True)) for row in results["result"]["data_array"]]
    context = "\n\n".join(f"[{r['doc_id']}] {r['content']}" for r in rows)
    messages = [
        {"role": "system", "content": "Answer only from the context. Cite document ids."},
        {"role": "user", "content": f"Context:\n{context}\n\nQuestion: {question}"},
    ]
    response = get_deploy_client("databricks").predict(
        endpoint=LLM, inputs={"messages": messages, "max_tokens": max_tokens}
    )
    return response["choices"][0]["message"]["content"], rows


def start_offline_workspace(home: str, model: str | None) -> callable:
    """A local forge with the documents table, served as a Databricks workspace on loopback;
    sets DATABRICKS_HOST/TOKEN and builds the endpoint and index with the workspace client."""
    import pyarrow as pa
    from llmforge_emulator import start_emulator

    import llmforge

    generator = {"name": "local", "options": {"model": model}} if model else "local"
    forge = llmforge.connect(backend="local", home=home, user="admin", generator=generator)
    forge.table("main.knowledge.documents").create(pa.Table.from_pylist(DOCS), primary_key="doc_id")
    token = "dapi" + secrets.token_hex(16)
    url, stop = start_emulator(forge, tokens={token: "admin"})
    os.environ.update(DATABRICKS_HOST=url, DATABRICKS_TOKEN=token)

    from databricks.vector_search.client import VectorSearchClient

    vsc = VectorSearchClient(workspace_url=url, personal_access_token=token, disable_notice=True)
    vsc.create_endpoint(name=ENDPOINT, endpoint_type="STANDARD")
    vsc.create_delta_sync_index(
        endpoint_name=ENDPOINT,
        source_table_name="main.knowledge.documents",
        index_name=INDEX,
        primary_key="doc_id",
        pipeline_type="TRIGGERED",
        embedding_source_column="content",
        embedding_model_endpoint_name="databricks-gte-large-en",
        columns_to_sync=["doc_id", "content"],
    )
    return stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--question", default="Who owns Project Helix?")
    parser.add_argument("--model", default=None, help="local generator model (default SmolLM2-135M)")
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as home:
        stop = start_offline_workspace(home, args.model)
        try:
            answer, rows = step3(args.question, args.max_tokens)
            print(f"retrieved: {', '.join(r['doc_id'] for r in rows)}")
            print(f"Q: {args.question}\nA: {answer.strip()}")
        finally:
            stop()


if __name__ == "__main__":
    main()
