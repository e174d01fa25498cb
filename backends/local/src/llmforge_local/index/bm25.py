"""Okapi BM25 over the chunk texts: the keyword signal of HYBRID search.

Built in memory from the stored rows when first needed (one pass over the text) and
dropped when the index changes. Scores come back for every row so the caller can apply
the same filter mask as the vector search: the keyword part never sees a row the
filter excludes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from llmforge.text import content_words


class BM25:
    def __init__(self, texts: list[str], k1: float = 1.2, b: float = 0.75) -> None:
        import numpy as np

        self.k1, self.b, self.n = k1, b, len(texts)
        postings: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
        lengths = np.zeros(self.n, dtype="float32")
        for i, text in enumerate(texts):
            words = content_words(text or "")
            lengths[i] = len(words)
            for term, tf in Counter(words).items():
                docs, tfs = postings[term]
                docs.append(i)
                tfs.append(tf)
        avg = float(lengths.mean()) if self.n else 1.0
        self.norm = k1 * (1 - b + b * lengths / max(avg, 1e-9))  # per-document length term
        self.postings = {
            t: (np.asarray(d, dtype="int64"), np.asarray(f, dtype="float32"))
            for t, (d, f) in postings.items()
        }

    def idf(self, df: int) -> float:
        import math

        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))

    def scores(self, query: str) -> Any:
        """BM25 score of every document for ``query`` (0 where no query term occurs)."""
        import numpy as np

        out = np.zeros(self.n, dtype="float32")
        for term in set(content_words(query)):
            hit = self.postings.get(term)
            if hit is None:
                continue
            docs, tf = hit
            out[docs] += self.idf(len(docs)) * tf * (self.k1 + 1) / (tf + self.norm[docs])
        return out
