"""FAISS + sentence-transformers vector search with the Databricks client's API."""

from llmforge.components import VectorSearch


class LocalVectorSearch(VectorSearch):
    name = "local"
    description = "FAISS + sentence-transformers, delta-sync and direct-access indexes"
