"""Databricks Vector Search (now "AI Search") through ``VectorSearchClient``, with the local
index's method names so code moves between backends unchanged."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from llmforge.components import Hit, IndexInfo, VectorSearch, document_column
from llmforge.errors import DataError
from llmforge.vector_filters import governed
from llmforge_databricks.governance import UnityPolicies
from llmforge_databricks.workspace import calling, reachable_credentials


def client_class() -> type:
    """``VectorSearchClient`` from ``databricks.ai_search`` (the new name) or ``databricks.vector_search``."""
    try:
        from databricks.ai_search.client import VectorSearchClient
    except ImportError:
        from databricks.vector_search.client import VectorSearchClient
    return VectorSearchClient


@dataclass(frozen=True)
class DatabricksIndexOptions:
    #: embedding endpoint used when a delta-sync index names none (the service requires one)
    embedding_model_endpoint_name: str = "databricks-gte-large-en"


class DatabricksVectorSearch(VectorSearch):
    name = "databricks"
    description = "Databricks Vector Search via databricks-vectorsearch / databricks-ai-search"
    Options = DatabricksIndexOptions

    @cached_property
    def client(self) -> Any:
        host, token = reachable_credentials()
        return client_class()(workspace_url=host, personal_access_token=token, disable_notice=True)

    def _wrap(self, raw: Any, name: str) -> DatabricksIndex:
        return DatabricksIndex(self, raw, name, self.forge.user)

    # --- endpoints -------------------------------------------------------------------------
    def create_endpoint(self, name: str, endpoint_type: str = "STANDARD", **kw: Any) -> dict:
        with calling(f"create vector search endpoint '{name}'"):
            return self.client.create_endpoint(name=name, endpoint_type=endpoint_type, **kw)

    def get_endpoint(self, name: str) -> dict:
        with calling(f"get vector search endpoint '{name}'"):
            return self.client.get_endpoint(name)

    def list_endpoints(self) -> dict:
        with calling("list vector search endpoints"):
            return self.client.list_endpoints()

    # --- indexes ---------------------------------------------------------------------------
    def create_delta_sync_index(
        self,
        endpoint_name: str,
        source_table_name: str,
        index_name: str,
        primary_key: str,
        embedding_source_column: str,
        pipeline_type: str = "TRIGGERED",
        embedding_model_endpoint_name: str | None = None,
        columns_to_sync: Sequence[str] | None = None,
    ) -> DatabricksIndex:
        with calling(f"create delta-sync index '{index_name}'"):
            raw = self.client.create_delta_sync_index(
                endpoint_name=endpoint_name,
                index_name=index_name,
                primary_key=primary_key,
                source_table_name=source_table_name,
                pipeline_type=pipeline_type,
                embedding_source_column=embedding_source_column,
                embedding_model_endpoint_name=(
                    embedding_model_endpoint_name or self.options.embedding_model_endpoint_name
                ),
                columns_to_sync=list(columns_to_sync) if columns_to_sync else None,
            )
        return self._wrap(raw, index_name)

    def create_direct_access_index(
        self,
        endpoint_name: str,
        index_name: str,
        primary_key: str,
        embedding_dimension: int,
        embedding_vector_column: str,
        schema: dict[str, str],
        embedding_model_endpoint_name: str | None = None,
    ) -> DatabricksIndex:
        with calling(f"create direct-access index '{index_name}'"):
            raw = self.client.create_direct_access_index(
                endpoint_name=endpoint_name,
                index_name=index_name,
                primary_key=primary_key,
                embedding_dimension=embedding_dimension,
                embedding_vector_column=embedding_vector_column,
                schema=schema,
                embedding_model_endpoint_name=embedding_model_endpoint_name,
            )
        return self._wrap(raw, index_name)

    def get_index(self, endpoint_name: str | None = None, index_name: str = "") -> DatabricksIndex:
        with calling(f"get index '{index_name}'"):
            raw = self.client.get_index(endpoint_name=endpoint_name, index_name=index_name)
        return self._wrap(raw, index_name)

    def index_exists(self, endpoint_name: str | None = None, index_name: str = "") -> bool:
        with calling(f"look up index '{index_name}'"):
            return self.client.index_exists(endpoint_name=endpoint_name, index_name=index_name)

    def list_indexes(self, name: str | None = None) -> list[dict]:
        """Indexes on endpoint ``name``, or on every endpoint when ``name`` is None."""
        names = [name] if name else [e["name"] for e in self.list_endpoints().get("endpoints", [])]
        out: list[dict] = []
        for ep in names:
            with calling(f"list the indexes of endpoint '{ep}'"):
                out += self.client.list_indexes(ep).get("vector_indexes", [])
        return out

    def delete_index(self, endpoint_name: str | None = None, index_name: str = "") -> None:
        with calling(f"delete index '{index_name}'"):
            self.client.delete_index(endpoint_name=endpoint_name, index_name=index_name)


class DatabricksIndex:
    """One index: ``similarity_search``, ``sync``, ``describe``, ``upsert``, ``delete``, ``scan``.

    The workspace answers for the token's identity. ``user`` (or :meth:`as_user`) additionally
    ANDs that principal's row filter from ``forge.catalog`` into every search, so identity-aware
    retrieval narrows results on this backend as it does locally.
    """

    def __init__(self, vs: DatabricksVectorSearch, raw: Any, name: str, user: str | None) -> None:
        self._vs, self._raw, self.name, self.user = vs, raw, name, user

    def as_user(self, user: str) -> DatabricksIndex:
        return DatabricksIndex(self._vs, self._raw, self.name, user)

    def describe(self) -> dict:
        with calling(f"describe index '{self.name}'"):
            return self._raw.describe()

    def info(self) -> IndexInfo:
        d = self.describe()
        spec = d.get("delta_sync_index_spec")
        text = ((spec or d.get("direct_access_index_spec") or {}).get("embedding_source_columns") or [{}])[0]
        return IndexInfo(
            name=self.name,
            index_type=d.get("index_type") or ("DELTA_SYNC" if spec else "DIRECT_ACCESS"),
            primary_key=d["primary_key"],
            source_table=spec.get("source_table") if spec else None,
            text_column=text.get("name"),
            columns=tuple(self._columns(d)),
        )

    def wait_until_ready(self, verbose: bool = False, **kw: Any) -> None:
        with calling(f"wait for index '{self.name}'"):
            self._raw.wait_until_ready(verbose=verbose, **kw)

    def sync(self) -> dict:
        with calling(f"sync index '{self.name}'"):
            return self._raw.sync()

    def upsert(self, inputs: Sequence[dict]) -> dict:
        with calling(f"upsert into index '{self.name}'"):
            return self._raw.upsert(list(inputs))

    def delete(self, primary_keys: Sequence[Any]) -> dict:
        with calling(f"delete from index '{self.name}'"):
            return self._raw.delete(list(primary_keys))

    def scan(self, num_results: int = 10, last_primary_key: Any = None) -> dict:
        with calling(f"scan index '{self.name}'"):
            return self._raw.scan(num_results=num_results, last_primary_key=last_primary_key)

    def _columns(self, info: dict) -> list[str]:
        """All returnable columns, as the local index defaults to (the client requires a list)."""
        if "delta_sync_index_spec" in info:
            spec = info["delta_sync_index_spec"]
            cols = [info["primary_key"], *[c["name"] for c in spec.get("embedding_source_columns", [])]]
            return list(dict.fromkeys(cols + list(spec.get("columns_to_sync") or [])))
        spec = info["direct_access_index_spec"]
        vector = spec["embedding_vector_columns"][0]["name"]
        return [c for c in json.loads(spec["schema_json"]) if c != vector]

    def retrieve(
        self,
        query_text: str,
        *,
        user: Any,
        num_results: int = 5,
        filters: Any = None,
        query_type: str | None = None,
        score_threshold: float | None = None,
    ) -> list[Hit]:
        """Chunks for ``user``; the service reports no row versions, so ``source_version`` is None."""
        info = self.info()
        if not info.source_table or not info.text_column:
            raise DataError(
                f"index '{self.name}' is not a delta-sync index over a text column; answers "
                f"need one so they can cite their source rows"
            )
        pk, text = info.primary_key, info.text_column
        doc_col = document_column(info.columns, pk)
        columns = list(dict.fromkeys([pk, text, *([doc_col] if doc_col else [])]))
        res = self.similarity_search(
            columns=columns,
            query_text=query_text,
            filters=filters,
            num_results=num_results,
            score_threshold=score_threshold,
            query_type=query_type,
            user=user,
        )
        names = [c["name"] for c in res["manifest"]["columns"]]
        hits = []
        for row in res["result"].get("data_array") or []:
            r = dict(zip(names, row, strict=True))
            hits.append(
                Hit(
                    primary_key=r[pk],
                    text=r[text] or "",
                    score=float(r["score"]),
                    document_id=r[doc_col] if doc_col else r[pk],
                )
            )
        return hits

    def similarity_search(
        self,
        columns: Sequence[str] | None = None,
        query_text: str | None = None,
        query_vector: Sequence[float] | None = None,
        filters: Any = None,
        num_results: int = 5,
        debug_level: int = 0,
        score_threshold: float | None = None,
        query_type: str | None = None,
        *,
        user: str | None = None,
        disable_notice: bool = True,
    ) -> dict:
        """The client's ``similarity_search``; rows are lists in manifest order, score last."""
        who = user or self.user
        info = self.describe() if columns is None or who else {}
        if who and "delta_sync_index_spec" in info:
            source = info["delta_sync_index_spec"]["source_table"]
            # the table's row filter spec from Unity Catalog (its llmforge.row_filter property),
            # the principal's departments and groups from the home identity directory
            filters = governed(UnityPolicies(self._vs.forge.catalog), source, who, filters)
        with calling(f"query index '{self.name}'"):
            return self._raw.similarity_search(
                columns=list(columns) if columns is not None else self._columns(info),
                query_text=query_text,
                query_vector=list(query_vector) if query_vector is not None else None,
                filters=filters,
                num_results=num_results,
                debug_level=debug_level,
                score_threshold=score_threshold,
                query_type=query_type,
                disable_notice=disable_notice,
            )
