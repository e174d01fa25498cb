"""Evaluation of a fine-tuned model: perplexity, ROUGE, faithfulness, closed-book accuracy.

- ``perplexity``: exp of the mean cross-entropy per learned token on held-out examples.
- ``rouge``: ROUGE-1/2/L F1 (Google's ``rouge-score`` package, stemming on) of generated
  answers against the gold responses of ``eval_table``.
- ``faithfulness``: share of generated sentences supported by the gold response and the
  prompt, by :func:`llmforge.guardrails.faithfulness_score` (the guardrail's own measure, so
  training and serving judge answers the same way).
- ``closed_book_accuracy``: share of questions whose answer contains the expected fact.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmforge.guardrails import faithfulness_score


def perplexity(model: Any, examples: Sequence[Any], batch_size: int = 8, device: str | None = None) -> float:
    """Perplexity over ``examples`` (objects with ``input_ids`` and ``labels`` lists;
    label -100 is not scored)."""
    import torch
    import torch.nn.functional as F

    if not examples:
        raise ValueError("perplexity needs at least one held-out example")
    device = device or str(next(model.parameters()).device)
    total, count = 0.0, 0
    model.eval()
    ordered = sorted(examples, key=lambda e: len(e.input_ids))
    with torch.no_grad():
        for i in range(0, len(ordered), batch_size):
            chunk = ordered[i : i + batch_size]
            width = max(len(e.input_ids) for e in chunk)
            ids = torch.tensor([e.input_ids + [0] * (width - len(e.input_ids)) for e in chunk])
            labels = torch.tensor([e.labels + [-100] * (width - len(e.labels)) for e in chunk])
            mask = torch.tensor([[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in chunk])
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            target = labels[:, 1:].to(device)  # (B, T-1)
            keep = target != -100
            total += float(F.cross_entropy(logits[:, :-1][keep].float(), target[keep], reduction="sum"))
            count += int(keep.sum())
    if count == 0:
        raise ValueError("held-out examples have no scored tokens")
    return math.exp(total / count)


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F1 of ``predictions`` against ``references``."""
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    if not predictions:
        raise ValueError("rouge needs at least one prediction")
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    sums = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for p, r in zip(predictions, references, strict=True):
        for k, s in scorer.score(r, p).items():
            sums[k] += s.fmeasure
    return {k: v / len(predictions) for k, v in sums.items()}


def faithfulness(answers: Sequence[str], contexts: Sequence[Sequence[str]]) -> float:
    """Mean faithfulness of each answer to its own contexts (gold response, prompt)."""
    if not answers:
        raise ValueError("faithfulness needs at least one answer")
    return sum(faithfulness_score(a, c)[0] for a, c in zip(answers, contexts, strict=True)) / len(answers)


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def contains_fact(answer: str, expected: str | Sequence[str]) -> bool:
    """True when the answer states the expected fact (any of several accepted spellings),
    compared on lower-cased words so punctuation and case do not matter."""
    options = [expected] if isinstance(expected, str) else list(expected)
    a = f" {_norm(answer)} "
    return any(f" {_norm(o)} " in a for o in options if _norm(o))


def closed_book_accuracy(answers: Sequence[str], expected: Sequence[str | Sequence[str]]) -> float:
    """Share of ``answers`` that contain their expected fact (no retrieval context given)."""
    if not answers:
        raise ValueError("closed-book accuracy needs at least one question")
    hits = [contains_fact(a, e) for a, e in zip(answers, expected, strict=True)]
    return sum(hits) / len(hits)


def generate_answers(
    model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int = 64, batch_size: int = 8
) -> list[str]:
    """Greedy answers to single-turn chat ``prompts`` (left-padded batches)."""
    import torch

    device = next(model.parameters()).device
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    out: list[str] = []
    try:
        for i in range(0, len(prompts), batch_size):
            texts = [
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False
                )
                for p in prompts[i : i + batch_size]
            ]
            enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.no_grad():
                gen = model.generate(
                    **enc.to(device),
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = gen[:, enc["input_ids"].shape[1] :]
            out.extend(t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = side
    return out


def html_report(
    path: str | Path,
    title: str,
    metrics: dict[str, float],
    samples: Sequence[dict[str, str]] = (),
    loss_curve: str | None = None,
) -> Path:
    """A self-contained HTML page: metrics table, loss curve, sample answers vs gold."""
    esc = html.escape
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{v:.4f}</td></tr>" for k, v in sorted(metrics.items()))
    cols = list(samples[0]) if samples else []
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(str(s.get(c, '')))}</td>" for c in cols) + "</tr>" for s in samples
    )
    img = f'<img src="{esc(loss_curve)}" alt="loss curve">' if loss_curve else ""
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}"
        "</style></head><body>"
        f"<h1>{esc(title)}</h1><h2>Metrics</h2><table>{rows}</table>{img}"
        f"<h2>Samples</h2><table><tr>{head}</tr>{body}</table></body></html>"
    )
    path = Path(path)
    path.write_text(page)
    return path
