"""Query one loaded index generation: ANN (FAISS), FULL_TEXT (BM25) and HYBRID (both, fused).

Scores: ANN returns the cosine similarity (vectors are unit length, FAISS inner product).
HYBRID returns reciprocal-rank fusion (k=60) of the vector and BM25 rankings, scaled so 1.0
means "first in both lists"; its ``score_threshold`` gates candidates on their cosine
similarity before fusion, so a keyword-only hit on an unrelated passage cannot slip
through as "relevant". Every part works on the rows the filter mask admits, nothing else.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from llmforge.errors import DataError
from llmforge.vector_filters import canonical, mask
from llmforge_local.index.bm25 import BM25
from llmforge_local.index.store import CHUNK_ID, VERSION, IndexState

QUERY_TYPES = ("ANN", "HYBRID", "FULL_TEXT")
MAX_RESULTS = {"ANN": 10_000, "HYBRID": 200, "FULL_TEXT": 200}
RRF_K = 60
#: a filtered query admitting at most max(this, 1% of rows) scans them exactly instead of
#: asking FAISS to skip the others: cheaper, and HNSW recall drops when most of its graph
#: is excluded; above it, copying the admitted vectors costs more than a masked FAISS search
SUBSET_SCAN_ROWS = 4096
MASK_CACHE = 64


def vectors_of(index: Any) -> Any:
    """Zero-copy (n, d) view of the vectors a flat or HNSW FAISS index stores."""
    import faiss
    import numpy as np

    n, d = index.ntotal, index.d
    if n == 0:
        return np.zeros((0, d), dtype="float32")
    flat = faiss.downcast_index(index.storage) if hasattr(index, "storage") else index
    return faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d)


def make_index(kind: str, dim: int, vecs: Any, hnsw_m: int = 32) -> Any:
    import faiss

    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = max(40, 2 * hnsw_m)
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vecs):
        index.add(vecs)
    return index


@dataclass
class Loaded:
    """One committed generation in memory, with caches that die with it."""

    state: IndexState
    rows: Any
    index: Any
    ef_search: int = 128
    _bm25: BM25 | None = None
    _masks: OrderedDict = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def vectors(self) -> Any:
        return vectors_of(self.index)

    def bm25(self) -> BM25:
        with self._lock:
            if self._bm25 is None:
                col = self.state.text_column
                texts = self.rows.column(col).to_pylist() if col else [""] * self.rows.num_rows
                self._bm25 = BM25(texts)
            return self._bm25

    def mask(self, spec: Any) -> Any:
        """Filter mask, cached per generation. The key is the whole filter (row filter
        included), so two users never share an entry unless their filters are identical."""
        if spec is None:
            return None
        key = canonical(spec)
        with self._lock:
            if key in self._masks:
                self._masks.move_to_end(key)
                return self._masks[key]
        m = mask(spec, self.rows)
        with self._lock:
            self._masks[key] = m
            while len(self._masks) > MASK_CACHE:
                self._masks.popitem(last=False)
        return m


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run FAISS single-threaded in this thread for one query. A single query does not
    parallelise, and OpenMP threads spinning at barriers make it 10-20x slower on a busy
    machine. The OpenMP thread count is per calling thread, so builds elsewhere keep theirs."""
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _top(scores: Any, ids: Any, k: int) -> tuple[Any, Any]:
    import numpy as np

    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        scores, ids = scores[part], ids[part]
    order = np.argsort(-scores, kind="stable")
    return ids[order], scores[order]


def ann(loaded: Loaded, q: Any, k: int, admitted: Any) -> tuple[Any, Any]:
    """Row ids and cosine scores of the ``k`` nearest admitted vectors."""
    import faiss
    import numpy as np

    n = loaded.index.ntotal
    empty = (np.zeros(0, dtype="int64"), np.zeros(0, dtype="float32"))
    if n == 0 or k <= 0:
        return empty
    if admitted is not None:
        count = int(admitted.sum())
        if count == 0:
            return empty
        if count <= max(SUBSET_SCAN_ROWS, n // 100):
            ids = np.flatnonzero(admitted)
            with one_thread():
                dist, pos = faiss.knn(
                    q[None, :], loaded.vectors[ids], min(k, count), metric=faiss.METRIC_INNER_PRODUCT
                )
            return ids[pos[0]], dist[0]
    k = min(k, n)
    params = None
    sel_bits = None
    if admitted is not None:
        sel_bits = np.packbits(admitted, bitorder="little")
        sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(sel_bits))
    if loaded.state.ann == "hnsw":
        params = faiss.SearchParametersHNSW(efSearch=max(loaded.ef_search, k))
        if sel_bits is not None:
            params.sel = sel
    elif sel_bits is not None:
        params = faiss.SearchParameters(sel=sel)
    with one_thread():
        dist, ids = loaded.index.search(q[None, :], k, params=params)
    keep = ids[0] >= 0
    return ids[0][keep].astype("int64"), dist[0][keep]


def keyword(loaded: Loaded, text: str, k: int, admitted: Any) -> tuple[Any, Any]:
    import numpy as np

    scores = loaded.bm25().scores(text)
    if admitted is not None:
        scores = np.where(admitted, scores, 0.0).astype("float32")
    ids = np.flatnonzero(scores > 0)
    return _top(scores[ids], ids, min(k, len(ids))) if len(ids) else (ids, scores[ids])


def hybrid(
    loaded: Loaded, q: Any, text: str, k: int, admitted: Any, threshold: float | None
) -> tuple[Any, Any]:
    import numpy as np

    depth = max(4 * k, 50)
    a_ids, _ = ann(loaded, q, depth, admitted)
    b_ids, _ = keyword(loaded, text, depth, admitted)
    fused: dict[int, float] = {}
    for ranked in (a_ids, b_ids):
        for rank, i in enumerate(ranked.tolist()):
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank + 1)
    if not fused:
        return np.zeros(0, dtype="int64"), np.zeros(0, dtype="float32")
    ids = np.fromiter(fused, dtype="int64")
    scores = np.fromiter(fused.values(), dtype="float32") / (2.0 / (RRF_K + 1))
    if threshold is not None:
        keep = loaded.vectors[ids] @ q >= threshold
        ids, scores = ids[keep], scores[keep]
    return _top(scores, ids, min(k, len(ids))) if len(ids) else (ids, scores)


def check_query(query_type: str | None, num_results: Any) -> str:
    qt = (query_type or "ANN").upper()
    if qt not in QUERY_TYPES:
        raise DataError(f"query_type {query_type!r} is not supported; use one of {list(QUERY_TYPES)}")
    limit = MAX_RESULTS[qt]
    if isinstance(num_results, bool) or not isinstance(num_results, int) or not 1 <= num_results <= limit:
        raise DataError(
            f"num_results must be an integer from 1 to {limit} for {qt} queries, got {num_results!r}"
        )
    return qt


def response(loaded: Loaded, columns: list[str], ids: Any, scores: Any, masks: dict | None = None) -> dict:
    """The Databricks query response: requested columns, then ``score`` last.
    ``masks`` are the caller's column masks, applied to the returned values."""
    from llmforge.catalog.policies import apply_masks

    state = loaded.state
    picked = loaded.rows.take(ids) if len(ids) else loaded.rows.slice(0, 0)
    if masks:
        picked = apply_masks(picked, masks)
    cols = []
    for c in columns:
        if c == state.vector_column:
            cols.append([v.tolist() for v in loaded.vectors[ids]])
        else:
            cols.append(picked.column(c).to_pylist())
    data = [[col[r] for col in cols] + [float(scores[r])] for r in range(len(ids))]
    return {
        "manifest": {
            "column_count": len(columns) + 1,
            "columns": [{"name": c} for c in columns] + [{"name": "score"}],
        },
        "result": {"row_count": len(data), "data_array": data},
    }


def returnable(state: IndexState) -> list[str]:
    extra = [state.vector_column] if state.vector_column else []
    return list(state.columns) + extra + [CHUNK_ID, VERSION]
