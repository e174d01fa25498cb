"""``forge.evaluate(...)``: run a RAG application or a model version over an evaluation table,
score it, log the metrics to MLflow and write an HTML report."""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmforge.errors import DataError
from llmforge.evals import metrics as M
from llmforge.evals.table import EvalRow, load_table

EXPERIMENT = "llmforge-eval"


@dataclass
class EvalResult:
    metrics: dict[str, float]
    rows: list[dict[str, Any]]
    target: str
    run_id: str | None = None
    report: Path | None = None
    #: metric names that could not be measured on this table (e.g. recall_at_k with no doc ids)
    unmeasured: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "metrics": self.metrics,
            "unmeasured": self.unmeasured,
            "run_id": self.run_id,
            "report": str(self.report) if self.report else None,
            "rows": self.rows,
        }


def _with_model(forge: Any, model: str) -> Any:
    """A forge whose generator serves registered model ``model`` (``models:/name@alias``)."""
    if not model.startswith("models:/"):
        raise DataError(
            f"model {model!r} is not a registered model URI; use models:/<name>@<alias> or /<version>"
        )
    forge.models.resolve(model)  # a clear NotFoundError before anything loads
    sc = forge.config.slot("generator")
    klass = forge.registry.get("generator", sc.name)
    fields = {f.name for f in dataclasses.fields(klass.Options)}
    key = "adapter" if "adapter" in fields else "model"
    slot = {"name": sc.name, "options": {**sc.options, key: model}}
    return type(forge).open(config=forge.config, home=str(forge.home), user=forge.user, generator=slot)


def _ask_rag(forge: Any, row: EvalRow, k: int, index: str | None, user: str | None) -> dict:
    t = time.perf_counter()
    ans = forge.rag.ask(row.question, user=row.user or user, index=index, num_results=k)
    seconds = time.perf_counter() - t
    docs = [str(c.get("document_id", c.get("primary_key"))) for c in ans.citations]
    return {
        "answer": ans.text,
        "refused": ans.refused or ans.no_answer or M.is_refusal(ans.text),
        "contexts": ans.contexts,
        "retrieved": docs,
        "latency_s": seconds,
        "guard_verdicts": [{"guard": g.guard, "passed": g.passed, "reason": g.reason} for g in ans.guards],
    }


def _ask_closed(forge: Any, row: EvalRow, max_tokens: int) -> dict:
    t = time.perf_counter()
    c = forge.generator.chat(
        [{"role": "user", "content": row.question}], max_tokens=max_tokens, temperature=0.0
    )
    return {
        "answer": c.text,
        "refused": M.is_refusal(c.text),
        "contexts": [],
        "retrieved": [],
        "latency_s": time.perf_counter() - t,
    }


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def score(rows: list[dict], wanted: list[str], mode: str, k: int) -> tuple[dict[str, float], dict[str, str]]:
    """Metrics over scored rows; names that cannot be measured go to the second dict, with why."""
    from llmforge.guard.faithfulness import DEFAULT, check

    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    for r in rows:
        r["correct"] = M.correct(r["answer"], r["gold"]) if r["answerable"] else None
        if (
            mode == "rag"
            and r["contexts"]
            and not r["refused"]
            and {"faithfulness", "faithfulness_pass_rate"} & set(wanted)
        ):
            v = check(r["answer"], r["contexts"], DEFAULT, question=r["question"])
            r["faithfulness"], r["faithfulness_passed"] = v["score"], v["passed"]
            r["failed_claims"] = [
                f"{f['kind']} '{f['text']}': {f['why']}" for f in v.get("failed_claims", [])
            ][:5]
        if r.get("doc_id") and mode == "rag":
            r["gold_rank"] = M.gold_rank(r["retrieved"][:k], r["doc_id"])
    out: dict[str, float | None] = {}
    why: dict[str, str] = {}
    scored = [r for r in answerable if r["gold"]]
    acc = _mean([float(r["correct"]) for r in scored])
    out["answer_correctness" if mode == "rag" else "closed_book_accuracy"] = acc
    if mode == "rag" and any("closed_book_answer" in r for r in scored):
        out["closed_book_accuracy"] = _mean(
            [float(M.correct(r.get("closed_book_answer", ""), r["gold"])) for r in scored]
        )
    out["answered_rate"] = _mean([float(not r["refused"]) for r in answerable])
    out["refusal_rate"] = _mean([float(r["refused"]) for r in unanswerable])
    faith = [r for r in rows if "faithfulness" in r]
    out["faithfulness"] = _mean([r["faithfulness"] for r in faith])
    out["faithfulness_pass_rate"] = _mean([float(r["faithfulness_passed"]) for r in faith])
    ranked = [r for r in rows if "gold_rank" in r]
    out["recall_at_k"] = _mean([float(r["gold_rank"] is not None) for r in ranked])
    out["mrr"] = _mean([1.0 / r["gold_rank"] if r["gold_rank"] else 0.0 for r in ranked])
    if {"rouge1", "rouge2", "rougeL"} & set(wanted) and scored:
        from llmforge.evaluation import rouge

        out.update(rouge([r["answer"] or "" for r in scored], [r["gold"][0] for r in scored]))
    lat = sorted(r["latency_s"] for r in rows)
    out["latency_mean_s"] = statistics.fmean(lat) if lat else None
    out["latency_p95_s"] = lat[int(0.95 * (len(lat) - 1))] if lat else None
    reasons = {
        "answer_correctness": "no answerable row has a gold answer"
        if mode == "rag"
        else "measured as closed_book_accuracy without retrieval",
        "closed_book_accuracy": "no answerable row has a gold answer",
        "answered_rate": "the table has no answerable rows",
        "refusal_rate": "the table has no unanswerable rows (answerable: false)",
        "faithfulness": "no answered row with retrieved context"
        if mode == "rag"
        else "closed-book answers have no context",
        "faithfulness_pass_rate": "no answered row with retrieved context"
        if mode == "rag"
        else "closed-book answers have no context",
        "recall_at_k": "no row has a gold document id"
        if mode == "rag"
        else "closed-book runs retrieve nothing",
        "mrr": "no row has a gold document id" if mode == "rag" else "closed-book runs retrieve nothing",
        "perplexity": "needs model=models:/<name>@<alias> and a local transformers model",
    }
    metrics: dict[str, float] = {}
    for name in wanted:
        value = out.get(name)
        if value is None:
            why[name] = reasons.get(name, "no gold answers to score")
        else:
            metrics[name] = round(float(value), 6)
    return metrics, why


def evaluate(
    forge: Any,
    table: Any,
    *,
    model: str | None = None,
    closed_book: bool = False,
    index: str | None = None,
    metrics: list[str] | tuple[str, ...] | None = None,
    k: int | None = None,
    user: str | None = None,
    max_tokens: int = 128,
    report: str | Path | None = None,
    log: bool = True,
    name: str | None = None,
) -> EvalResult:
    """Evaluate ``forge.rag`` (default) or the generator alone (``closed_book=True``), served by
    registered ``model`` when given, over ``table`` (see :mod:`llmforge.evals.table`).

    Metrics are logged to MLflow (experiment ``llmforge-eval``; with ``model`` also onto that
    version's training run, so ``min_<metric>`` promotion gates see them) and written as an
    HTML report (``report``, default ``<home>/eval/<run name>.html``).
    """
    mode = "closed" if closed_book else "rag"
    wanted = (
        M.check_metric_names(metrics)
        if metrics
        else list(M.RAG_DEFAULT if mode == "rag" else M.CLOSED_BOOK_DEFAULT)
    )
    if metrics is None and model:
        wanted.append("perplexity")
    rows_in = load_table(table, forge)
    k = k or forge.config.rag.num_results
    if k < 1:
        raise DataError(f"k must be >= 1, got {k}")
    target = model or (f"rag:{index or forge.config.rag.index}" if mode == "rag" else "generator")
    runner = _with_model(forge, model) if model else forge
    rows: list[dict] = []
    for row in rows_in:
        base = {
            "question": row.question,
            "gold": row.answers,
            "doc_id": row.doc_id,
            "answerable": row.answerable,
        }
        try:
            if mode == "rag":
                got = _ask_rag(runner, row, k, index, user)
                if "closed_book_accuracy" in wanted:
                    got["closed_book_answer"] = _ask_closed(runner, row, max_tokens)["answer"]
            else:
                got = _ask_closed(runner, row, max_tokens)
        except Exception as exc:  # one failing question is a scored failure, not a crashed run
            got = {"error": f"{type(exc).__name__}: {exc}", "answer": "", "refused": True}
            got.update({"contexts": [], "retrieved": [], "latency_s": 0.0})
        rows.append({**base, **got})
    values, why = score(rows, [w for w in wanted if w != "perplexity"], mode, k)
    if "perplexity" in wanted:
        if not model:
            why["perplexity"] = "needs model=models:/<name>@<alias>"
        else:
            from llmforge.evals.perplexity import gold_perplexity

            try:
                values["perplexity"] = gold_perplexity(
                    forge, model, [(r.question, r.answers[0]) for r in rows_in if r.answers]
                )
            except Exception as exc:
                why["perplexity"] = f"{type(exc).__name__}: {exc}"
    result = EvalResult(values, rows, target, unmeasured=why)
    run_name = name or f"eval-{time.strftime('%Y%m%d-%H%M%S')}"
    path = Path(report) if report else forge.home / "eval" / f"{run_name}.html"
    from llmforge.evals.report import write_report

    history = _history(forge, target) if log else []
    result.report = write_report(path, result, history)
    if log:
        result.run_id = _log(forge, result, run_name, model, k)
    return result


def _history(forge: Any, target: str) -> list[dict]:
    """Earlier evaluations of any target: ``[{target, run_name, metrics}]``, oldest first."""
    try:
        client = forge.models.client
        exp = client.get_experiment_by_name(EXPERIMENT)
        if exp is None:
            return []
        runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"], max_results=50)
    except Exception:
        return []
    return [
        {
            "target": r.data.tags.get("llmforge.eval.target", "?"),
            "run_name": r.info.run_name,
            "metrics": dict(r.data.metrics),
        }
        for r in runs
    ]


def _log(forge: Any, result: EvalResult, run_name: str, model: str | None, k: int) -> str:
    import json

    tracker = forge.models
    with tracker.start_run(
        EXPERIMENT, run_name=run_name, tags={"llmforge.eval.target": result.target}
    ) as run:
        run.log_params({"target": result.target, "k": k, "rows": len(result.rows)})
        run.log_metrics(result.metrics)
        run.log_dict(
            {"metrics": result.metrics, "unmeasured": result.unmeasured, "rows": result.rows},
            "eval/rows.json",
        )
        if result.report is not None:
            run.log_artifact(result.report, "eval")
    if model:  # the version's own run carries the metrics its promotion gate reads
        from llmforge.tracking import Run

        mv_run = tracker.resolve(model).run_id
        # logged after the training's own values (step order), so they are the run's latest
        steps = [m.step for key in result.metrics for m in tracker.client.get_metric_history(mv_run, key)]
        version_run = Run(tracker.client, mv_run)
        version_run.log_metrics(result.metrics, step=max(steps, default=-1) + 1)
        version_run.set_tags(
            {"llmforge.eval.last_run": run.run_id, "llmforge.eval.metrics": json.dumps(result.metrics)}
        )
    return run.run_id
