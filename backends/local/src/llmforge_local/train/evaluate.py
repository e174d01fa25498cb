"""Evaluation of the trained model for the job: the metrics the config asks for."""

from __future__ import annotations

from typing import Any

from llmforge.errors import DataError


def gold_pairs(table: Any, name: str) -> list[tuple[str, str]]:
    """(prompt, gold response) per row from prompt/response or messages columns."""
    cols = table.column_names
    if "prompt" in cols and "response" in cols:
        return [
            (p or "", r or "")
            for p, r in zip(
                table.column("prompt").to_pylist(), table.column("response").to_pylist(), strict=True
            )
        ]
    if "messages" in cols:
        out = []
        for msgs in table.column("messages").to_pylist():
            msgs = msgs or []
            last = max((i for i, m in enumerate(msgs) if m.get("role") == "assistant"), default=None)
            user = [m for m in msgs[: last or 0] if m.get("role") == "user"]
            if last is not None and user:
                out.append((user[-1]["content"], msgs[last]["content"]))
        return out
    raise DataError(
        f"{name} has columns {cols}; rouge and faithfulness need gold answers in "
        "prompt/response or messages columns"
    )


def evaluate(
    cfg: Any, model: Any, tokenizer: Any, heldout: list, gold: list[tuple[str, str]]
) -> tuple[dict[str, float], list[dict[str, str]]]:
    """Metrics named in ``cfg.evaluation.metrics`` and the generated samples behind them."""
    from llmforge import evaluation as E

    wanted = set(cfg.evaluation.metrics)
    metrics: dict[str, float] = {}
    if "perplexity" in wanted and heldout:
        metrics["perplexity"] = E.perplexity(model, heldout)
    samples: list[dict[str, str]] = []
    gold = gold[: cfg.evaluation.max_examples]
    if wanted & {"rouge", "faithfulness"} and gold:
        prompts = [p for p, _ in gold]
        answers = E.generate_answers(model, tokenizer, prompts, cfg.evaluation.max_new_tokens)
        refs = [r for _, r in gold]
        if "rouge" in wanted:
            metrics.update(E.rouge(answers, refs))
        if "faithfulness" in wanted:
            metrics["faithfulness"] = E.faithfulness(answers, [[r, p] for p, r in gold])
        samples = [{"prompt": p, "answer": a, "gold": r} for (p, r), a in zip(gold, answers, strict=True)]
    return metrics, samples
