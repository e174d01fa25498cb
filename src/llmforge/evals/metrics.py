"""Metric names the evaluation service measures (and promotion gates may name), and the small
per-row scorers behind them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from llmforge.errors import DataError
from llmforge.evaluation import contains_fact

#: name -> (what it measures, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "answer_correctness": ("answerable questions whose answer states a gold answer or alias", True),
    "answered_rate": ("answerable questions answered rather than refused", True),
    "refusal_rate": ("unanswerable questions refused ('I don't know')", True),
    "faithfulness": ("mean faithfulness of answers to their retrieved context (the guard's score)", True),
    "faithfulness_pass_rate": ("answers the faithfulness guard would pass at its threshold", True),
    "recall_at_k": ("questions whose gold document is among the k retrieved", True),
    "mrr": ("mean reciprocal rank of the gold document among the k retrieved", True),
    "closed_book_accuracy": ("answer correctness with no retrieved context", True),
    "perplexity": ("exp of the mean token loss of gold answers (needs model=)", False),
    "rouge1": ("ROUGE-1 F1 against the first gold answer", True),
    "rouge2": ("ROUGE-2 F1 against the first gold answer", True),
    "rougeL": ("ROUGE-L F1 against the first gold answer", True),
    "latency_mean_s": ("mean seconds per question", False),
    "latency_p95_s": ("95th percentile seconds per question", False),
}
RAG_DEFAULT = (
    "answer_correctness",
    "answered_rate",
    "refusal_rate",
    "faithfulness",
    "faithfulness_pass_rate",
    "recall_at_k",
    "mrr",
    "rouge1",
    "rouge2",
    "rougeL",
    "latency_mean_s",
    "latency_p95_s",
)
CLOSED_BOOK_DEFAULT = (
    "closed_book_accuracy",
    "answered_rate",
    "refusal_rate",
    "rouge1",
    "rouge2",
    "rougeL",
    "latency_mean_s",
    "latency_p95_s",
)
RAG_ONLY = {"faithfulness", "faithfulness_pass_rate", "recall_at_k", "mrr"}

_REFUSAL = re.compile(
    r"\b(i don'?t know|i do not know|cannot (answer|help)|can'?t (answer|help)|no information|"
    r"not (stated|mentioned|provided|found) in|nothing in the documents|unable to answer)\b",
    re.I,
)


def check_metric_names(names: Sequence[str]) -> list[str]:
    """``names`` if all are known; otherwise a :class:`DataError` listing the known ones."""
    bad = [n for n in names if n not in METRICS]
    if bad:
        raise DataError(f"unknown metric(s) {bad}; known: {sorted(METRICS)}")
    return list(dict.fromkeys(names))


def is_refusal(text: str) -> bool:
    """An empty answer or one that says it does not know."""
    return not (text or "").strip() or bool(_REFUSAL.search(text))


def correct(answer: str, gold: Sequence[str]) -> bool:
    """The answer states one of the gold answers or aliases (whole words, any case)."""
    return bool(gold) and not is_refusal(answer) and contains_fact(answer, list(gold))


def gold_rank(retrieved: Sequence[str], gold: str) -> int | None:
    """1-based rank of ``gold`` among the retrieved document ids (duplicates collapsed)."""
    seen = list(dict.fromkeys(str(r) for r in retrieved))
    return seen.index(str(gold)) + 1 if str(gold) in seen else None
