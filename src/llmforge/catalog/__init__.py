"""The embedded catalog: principals, grants, row filters, column masks and lineage (SQLite)."""

from llmforge.catalog.catalog import Catalog
from llmforge.catalog.identity import ALL_USERS, SYSTEM, Principal

__all__ = ["ALL_USERS", "SYSTEM", "Catalog", "Principal"]
