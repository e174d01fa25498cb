"""The sample company as a governed, indexed project home, shared by the RAG benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "examples" / "enterprise"
DOCS = "main.knowledge.documents"
INDEX = "main.knowledge.documents_index"
#: one user per department of examples/enterprise/principals.yaml
USERS = {
    "engineering": "alice@acme.example",
    "finance": "carol@acme.example",
    "sales": "dave@acme.example",
    "hr": "erin@acme.example",
}


def govern_and_index(forge: Any) -> Any:
    """Ingest the sample documents, row-filter them by department, grant SELECT to everyone
    and build the delta-sync index (MiniLM) that ``rag.index`` names."""
    from llmforge.loaders import load_documents

    docs, _ = load_documents(CORPUS / "docs")
    forge.table(DOCS).create(docs, primary_key="document_id")
    forge.catalog.set_row_filter(
        DOCS,
        {
            "type": "department_membership",
            "column": "department",
            "always_visible": ["all"],
            "exempt_groups": ["admins"],
        },
    )
    forge.catalog.grant("USE", "main", "account users")
    forge.catalog.grant("SELECT", "main.knowledge", "account users")
    forge.vector_search.create_delta_sync_index(
        endpoint_name="vs",
        source_table_name=DOCS,
        index_name=INDEX,
        primary_key="document_id",
        embedding_source_column="content",
        columns_to_sync=["department", "document_id"],
    )
    return forge
