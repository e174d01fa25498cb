"""One index, with the method names of ``databricks.vector_search.index.VectorSearchIndex``.

A handle acts for a principal (``forge.user`` by default, ``user=`` per call): every query
ANDs the catalog's row filter for the source table into the caller's filters and needs
SELECT on that table. A request can narrow what it sees, never widen it.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from llmforge.catalog.policies import apply_masks
from llmforge.components import Hit, IndexInfo, document_column
from llmforge.errors import DataError
from llmforge.vector_filters import FilterError, columns_of, governed, parse_filters
from llmforge_local.index import search as S
from llmforge_local.index.embed import Embedder
from llmforge_local.index.mutate import apply_changes
from llmforge_local.index.store import CHUNK_ID, HASH, VERSION, IndexState

if TYPE_CHECKING:
    from llmforge_local.index import LocalVectorSearch

DELTA_SYNC, DIRECT_ACCESS = "DELTA_SYNC", "DIRECT_ACCESS"


def empty_rows(state: IndexState, schema: Any) -> Any:
    """An empty chunk table: the synced columns (typed as given), then the internal ones."""
    import pyarrow as pa

    fields = [schema.field(c) for c in state.columns]
    fields += [pa.field(CHUNK_ID, pa.int32()), pa.field(VERSION, pa.int64()), pa.field(HASH, pa.string())]
    return pa.schema(fields).empty_table()


def unit(vec: Any, dim: int, what: str) -> Any:
    import numpy as np

    try:
        v = np.asarray(vec, dtype="float32")
    except (TypeError, ValueError):
        raise DataError(f"{what} must be a list of {dim} numbers") from None
    if v.ndim != 1 or v.shape[0] != dim:
        raise DataError(
            f"{what} has {v.shape[0] if v.ndim == 1 else v.shape} dimensions; this index expects {dim}"
        )
    norm = float(np.linalg.norm(v))
    if not np.isfinite(norm) or norm == 0:
        raise DataError(f"{what} must be a finite, non-zero vector")
    return v / norm


def _value(v: Any) -> dict:
    """A scan cell in the REST API's typed-value form."""
    if v is None:
        return {"null_value": "NULL_VALUE"}
    if isinstance(v, bool):
        return {"bool_value": v}
    if isinstance(v, int | float):
        return {"number_value": v}
    return {"string_value": str(v)}


class LocalIndex:
    def __init__(self, vs: LocalVectorSearch, name: str, user: str | None) -> None:
        self._vs, self.name, self.user = vs, name, user
        self._store = vs.store(name)

    def as_user(self, user: str) -> LocalIndex:
        return LocalIndex(self._vs, self.name, user)

    @property
    def state(self) -> IndexState:
        return self._vs.load(self.name).state

    @property
    def endpoint_name(self) -> str:
        return self.state.endpoint_name

    @property
    def version(self) -> int:
        return self.state.version

    def _embedder(self, state: IndexState) -> Embedder:
        return Embedder(state.model_path, self._vs.options.batch_size)

    # --- describe ------------------------------------------------------------------------
    def info(self) -> IndexInfo:
        st = self.state
        return IndexInfo(
            name=st.name,
            index_type=st.index_type,
            primary_key=st.primary_key,
            source_table=st.source_table if st.index_type == DELTA_SYNC else None,
            text_column=st.text_column,
            columns=tuple(S.returnable(st)),
            version=st.version,
            synced_version=st.synced_version,
        )

    def describe(self) -> dict:
        """The Databricks index description; ``indexed_row_count`` counts chunks, and
        ``indexed_document_count`` the source rows they came from."""
        import pyarrow.compute as pc

        loaded = self._vs.load(self.name)
        st = loaded.state
        docs = int(pc.sum(pc.equal(loaded.rows.column(CHUNK_ID), 0)).as_py() or 0)
        out: dict[str, Any] = {
            "name": st.name,
            "endpoint_name": st.endpoint_name,
            "primary_key": st.primary_key,
            "index_type": st.index_type,
        }
        source_cols = [
            {"name": st.text_column, "embedding_model_endpoint_name": st.embedding_model_endpoint_name}
        ]
        if st.index_type == DELTA_SYNC:
            out["delta_sync_index_spec"] = {
                "source_table": st.source_table,
                "pipeline_type": st.pipeline_type,
                "embedding_source_columns": source_cols,
                "columns_to_sync": list(st.columns),
            }
        else:
            spec: dict[str, Any] = {
                "embedding_vector_columns": [{"name": st.vector_column, "embedding_dimension": st.dimension}],
                "schema_json": json.dumps(st.schema),
            }
            if st.embedding_model_endpoint_name:
                spec["embedding_source_columns"] = source_cols
            out["direct_access_index_spec"] = spec
        out["status"] = {
            "ready": True,
            "detailed_state": "ONLINE_NO_PENDING_UPDATE",
            "indexed_row_count": st.indexed_row_count,
            "index_url": None,
            "message": f"local index version {st.version}",
        }
        out.update(
            index_version=st.version,
            synced_version=st.synced_version,
            indexed_document_count=docs,
            embedding_model=st.model_path,
            embedding_dimension=st.dimension,
            ann=st.ann,
        )
        return out

    def wait_until_ready(
        self, verbose: bool = False, timeout: Any = None, wait_for_updates: bool = False
    ) -> None:
        """Local indexes are ready as soon as a call returns; kept for API parity."""
        self.state  # noqa: B018 - raises NotFoundError when the index was deleted

    # --- writes --------------------------------------------------------------------------
    def sync(self) -> dict:
        """Apply the source table's inserts, updates and deletes since the last sync."""
        from llmforge_local.index.sync import pending

        with self._store.lock():
            loaded = self._vs.load(self.name)
            st = loaded.state
            if st.index_type != DELTA_SYNC:
                raise DataError(
                    f"index '{self.name}' is a direct-access index; use upsert()/delete(), not sync()"
                )
            # a sync writes the index (as the emulator checks it): MODIFY on the index's schema, or
            # on the source table when that schema is not in the catalog
            cat, forge = self._vs.forge.catalog, self._vs.forge
            schema = self.name.rsplit(".", 1)[0]
            on = schema if schema.count(".") == 1 and cat.exists(schema) else st.source_table
            cat.check(self.user or forge.user or getpass.getuser(), "MODIFY", on)
            keys = set(loaded.rows.column(st.primary_key).to_pylist())
            p = pending(self._vs.forge, st, keys)
            return self._commit(
                loaded, p.docs, p.delete_keys, p.target_version, synced_version=p.target_version, mode=p.mode
            )

    def upsert(self, inputs: Sequence[dict]) -> dict:
        """Direct access: insert or replace rows (each with its vector) by primary key."""
        import numpy as np

        with self._store.lock():
            loaded = self._vs.load(self.name)
            st = self._direct(loaded.state, "upsert")
            if not isinstance(inputs, list | tuple) or not inputs:
                raise DataError("upsert() needs a non-empty list of row dicts")
            by_key: dict[Any, dict] = {}
            for i, row in enumerate(inputs):
                if not isinstance(row, dict) or st.primary_key not in row or st.vector_column not in row:
                    raise DataError(
                        f"upsert row {i} must be a dict with '{st.primary_key}' and '{st.vector_column}'"
                    )
                unknown = sorted(set(row) - set(st.columns) - {st.vector_column})
                if unknown:
                    raise DataError(
                        f"upsert row {i} has column(s) {unknown} not in the index schema "
                        f"{sorted(st.schema or {})}"
                    )
                by_key[row[st.primary_key]] = row
            docs = list(by_key.values())
            vecs = np.stack(
                [
                    unit(
                        d[st.vector_column],
                        st.dimension,
                        f"'{st.vector_column}' of row {d[st.primary_key]!r}",
                    )
                    for d in docs
                ]
            )
            stats = self._commit(loaded, docs, set(), st.version + 1, vectors=vecs)
        return {
            "status": "SUCCESS",
            "result": {"success_row_count": len(docs), "failed_primary_keys": []},
            "stats": stats,
        }

    def delete(self, primary_keys: Sequence[Any]) -> dict:
        """Direct access: remove rows by primary key (unknown keys are ignored)."""
        with self._store.lock():
            loaded = self._vs.load(self.name)
            st = self._direct(loaded.state, "delete")
            if not isinstance(primary_keys, list | tuple):
                raise DataError("delete() needs a list of primary keys")
            stats = self._commit(loaded, [], set(primary_keys), st.version + 1)
        return {
            "status": "SUCCESS",
            "result": {"success_row_count": len(primary_keys), "failed_primary_keys": []},
            "stats": stats,
        }

    def _direct(self, st: IndexState, verb: str) -> IndexState:
        if st.index_type != DIRECT_ACCESS:
            raise DataError(
                f"index '{self.name}' is a delta-sync index; it follows its source table "
                f"{st.source_table}: change the table and call sync() instead of {verb}()"
            )
        return st

    def _commit(
        self,
        loaded: S.Loaded,
        docs: list[dict],
        delete_keys: set,
        row_version: int,
        vectors: Any = None,
        synced_version: int | None = None,
        mode: str = "",
    ) -> dict:
        st = loaded.state
        try:
            rows, index, stats = apply_changes(
                st,
                loaded.rows,
                loaded.index,
                docs,
                delete_keys,
                row_version,
                None if vectors is not None else self._embedder(st),
                vectors,
                self._vs.options.hnsw_m,
            )
            new = dataclasses.replace(
                st, synced_version=synced_version if synced_version is not None else st.synced_version
            )
            changed = stats.inserted or stats.updated or stats.deleted or st.generation == 0
            if changed:
                new = self._store.commit(new, rows, index)
            elif new.synced_version != st.synced_version:
                self._store.write_state(new)
        except BaseException:
            self._vs.forget(self.name)  # the in-memory index may be half-modified
            raise
        # callers hold the index lock, so no other writer committed since: keep what we
        # wrote in memory instead of reading it back
        self._vs.remember(self.name, S.Loaded(new, rows, index, ef_search=loaded.ef_search))
        if changed and st.index_type == DELTA_SYNC:
            self._vs.forge.catalog.record_lineage(
                [f"table:{st.source_table}@{new.synced_version}"],
                f"index:{st.name}@{new.version}",
                job="vector_index_sync",
            )
        return {
            **stats.as_dict(),
            "index_version": new.version,
            "synced_version": new.synced_version,
            "mode": mode,
        }

    # --- reads ---------------------------------------------------------------------------
    def _masks(self, st: IndexState, filters: Any, user: str | None) -> dict:
        """The caller's column masks on the source table. Filtering or ranking on a column
        masked for the caller would reveal it, so both are refused."""
        if st.index_type != DELTA_SYNC:
            return {}
        masks = self._vs.forge.catalog.masks_for(st.source_table, user)
        node = parse_filters(filters)
        hidden = sorted(set(masks) & (columns_of(node) if node is not None else set()))
        if hidden:
            raise FilterError(
                f"column(s) {hidden} of {st.source_table} are masked for {user}; "
                f"they cannot be used in filters"
            )
        if st.text_column in masks:
            raise FilterError(
                f"the embedded column '{st.text_column}' of {st.source_table} is masked "
                f"for {user}; this index cannot be searched by them"
            )
        return masks

    def _effective_filters(self, st: IndexState, filters: Any, user: Any) -> Any:
        """The caller's filters AND the row filter their identity carries (never widened)."""
        if st.index_type != DELTA_SYNC:
            return filters
        return governed(
            self._vs.forge.catalog,
            st.source_table,
            user,
            filters,
            synced_columns=st.columns,
            index_name=f"index '{st.name}'",
        )

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
        disable_notice: bool = False,
    ) -> dict:
        """Databricks ``similarity_search``; the response has ``score`` as its last column."""
        qt = S.check_query(query_type, num_results)
        st = self.state
        if st.index_type == DELTA_SYNC and st.pipeline_type == "CONTINUOUS":
            self.sync()
        loaded = self._vs.load(self.name)
        st = loaded.state
        columns = list(columns) if columns is not None else list(st.columns)
        allowed = S.returnable(st)
        bad = [c for c in columns if c not in allowed]
        if bad or not columns:
            raise DataError(
                f"column(s) {bad or '[]'} cannot be returned by index '{st.name}'; choose from {allowed}"
            )
        if query_text is not None and (not isinstance(query_text, str) or not query_text.strip()):
            raise DataError("query_text is empty; pass the question text (or a query_vector)")
        if query_text is None and query_vector is None:
            raise DataError("similarity_search needs query_text or query_vector")
        if qt != "ANN" and query_text is None:
            raise DataError(f"{qt} search needs query_text (the keyword part matches words)")
        who = user or self.user
        effective = self._effective_filters(st, filters, who)
        parse_filters(effective, columns=st.columns, index_name=f"index '{st.name}'")
        masks = self._masks(st, filters, who)
        admitted = loaded.mask(effective)
        q = None
        if query_vector is not None:
            q = unit(query_vector, st.dimension, "query_vector")
        elif qt != "FULL_TEXT":
            if not st.model_path:
                raise DataError(
                    f"index '{st.name}' has no embedding model; pass query_vector "
                    f"({st.dimension} numbers) instead of query_text"
                )
            q = self._embedder(st).encode_query(query_text)
        if qt == "ANN":
            ids, scores = S.ann(loaded, q, num_results, admitted)
        elif qt == "FULL_TEXT":
            ids, scores = S.keyword(loaded, query_text, num_results, admitted)
        else:
            ids, scores = S.hybrid(loaded, q, query_text, num_results, admitted, score_threshold)
        if score_threshold is not None and qt != "HYBRID":
            keep = scores >= score_threshold
            ids, scores = ids[keep], scores[keep]
        return S.response(loaded, columns, ids, scores, masks)

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
        """Chunks for ``user``, best first, with their chunk id and source row version."""
        st = self.state
        if st.index_type != DELTA_SYNC or not st.text_column:
            raise DataError(
                f"index '{st.name}' is not a delta-sync index over a text column; answers "
                f"need one so they can cite their source rows"
            )
        doc_col = document_column(st.columns, st.primary_key)
        columns = [st.primary_key, st.text_column, *([doc_col] if doc_col else []), CHUNK_ID, VERSION]
        res = self.similarity_search(
            columns=columns,
            query_text=query_text,
            filters=filters,
            num_results=num_results,
            score_threshold=score_threshold,
            query_type=query_type,
            user=user,
        )
        hits = []
        for row in res["result"]["data_array"]:
            r = dict(zip(columns, row[:-1], strict=True))
            hits.append(
                Hit(
                    primary_key=r[st.primary_key],
                    text=r[st.text_column] or "",
                    score=float(row[-1]),
                    document_id=r[doc_col] if doc_col else r[st.primary_key],
                    chunk_id=int(r[CHUNK_ID]),
                    source_version=r[VERSION],
                )
            )
        return hits

    def scan(self, num_results: int = 10, last_primary_key: Any = None, *, user: str | None = None) -> dict:
        """Rows in primary-key order after ``last_primary_key`` (those the caller may see)."""
        loaded = self._vs.load(self.name)
        st = loaded.state
        first = loaded.rows.column(CHUNK_ID).to_numpy() == 0  # one row per document
        who = user or self.user
        admitted = loaded.mask(self._effective_filters(st, None, who))
        rows = loaded.rows.filter(first if admitted is None else first & admitted)
        masks = self._masks(st, None, who)
        rows = rows.sort_by(st.primary_key).select(st.columns)
        rows = (apply_masks(rows, masks) if masks else rows).to_pylist()
        if last_primary_key is not None:
            rows = [r for r in rows if r[st.primary_key] > last_primary_key]
        page = rows[:num_results]
        return {
            "data": [{"fields": [{"key": k, "value": _value(v)} for k, v in r.items()]} for r in page],
            "last_primary_key": page[-1][st.primary_key] if page else None,
        }
