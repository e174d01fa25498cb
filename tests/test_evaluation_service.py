"""forge.evaluate / `llmforge eval`: table checks, metrics, MLflow run, HTML report, gates."""

from __future__ import annotations

import json

import pytest

from llmforge.errors import DataError
from llmforge.evals import load_table, score
from llmforge.tracking import check_gate

ROWS = [
    {"question": "How long is parental leave?", "answer": "16 weeks", "document_id": "d-hr-1"},
    {
        "question": "When does the office open?",
        "answer": "8am",
        "aliases": ["8 am"],
        "document_id": "d-all-1",
    },
    {"question": "What is the CEO's favourite colour?", "answerable": False},
]


def row(
    answer, gold=("16 weeks",), answerable=True, refused=False, contexts=(), retrieved=(), doc=None, t=0.1
):
    return {
        "question": "How long is parental leave?",
        "answer": answer,
        "gold": list(gold),
        "answerable": answerable,
        "refused": refused,
        "contexts": list(contexts),
        "retrieved": list(retrieved),
        "doc_id": doc,
        "latency_s": t,
    }


def test_score_counts_correctness_refusals_retrieval_and_faithfulness():
    ctx = ["Parental leave is 16 weeks."]
    rows = [
        row("Parental leave is 16 weeks.", contexts=ctx, retrieved=["x", "d-hr-1"], doc="d-hr-1", t=0.2),
        row("Parental leave is 52 weeks.", contexts=ctx, retrieved=["y"], doc="d-hr-1", t=0.4),
        row("I don't know.", gold=(), answerable=False, refused=True),
        row("It is blue.", gold=(), answerable=False),
    ]
    want = ["answer_correctness", "refusal_rate", "recall_at_k", "mrr", "faithfulness", "latency_mean_s"]
    metrics, why = score(rows, want, "rag", k=4)
    assert metrics["answer_correctness"] == 0.5
    assert metrics["refusal_rate"] == 0.5
    assert metrics["recall_at_k"] == 0.5 and metrics["mrr"] == 0.25
    assert rows[0]["faithfulness"] > 0.8 and rows[1]["faithfulness"] < 0.4  # 52 is not in the context
    assert metrics["faithfulness"] == pytest.approx((rows[0]["faithfulness"] + rows[1]["faithfulness"]) / 2)
    assert rows[1]["failed_claims"] and "52" in rows[1]["failed_claims"][0]
    assert metrics["latency_mean_s"] == pytest.approx((0.2 + 0.4 + 0.1 + 0.1) / 4)
    assert why == {}
    metrics, why = score([row("16 weeks")], ["recall_at_k", "refusal_rate"], "rag", k=4)
    assert metrics == {} and "gold document" in why["recall_at_k"] and "unanswerable" in why["refusal_rate"]


def test_table_checks(tmp_path):
    rows = load_table(ROWS)
    assert [r.answerable for r in rows] == [True, True, False]
    assert rows[1].answers == ["8am", "8 am"] and rows[0].doc_id == "d-hr-1"
    with pytest.raises(DataError, match="no 'question' column"):
        load_table([{"prompt": "x", "answer": "y"}])
    with pytest.raises(DataError, match="empty"):
        load_table([])
    with pytest.raises(DataError, match="row 1 has no question"):
        load_table([{"question": "a"}, {"question": "  "}])
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"question": "a"}\nnot json\n')
    with pytest.raises(DataError, match="t.jsonl:2 is not JSON"):
        load_table(bad)
    csv = tmp_path / "t.csv"
    csv.write_text("question,answer,answerable\nWho?,Dana Kim,true\nWhy?,,false\n")
    assert [(r.answers, r.answerable) for r in load_table(csv)] == [(["Dana Kim"], True), ([], False)]
    hidden = load_table([{"question": "Salary?", "answer": "1", "visible_to_asker": False, "user": "carol"}])
    assert not hidden[0].answerable and hidden[0].user == "carol"


def test_clapnq_rows_read_as_they_are():
    rec = {
        "id": "1",
        "input": "who?",
        "passages": [{"title": "T", "text": "x"}],
        "output": [{"answer": "Dana"}],
    }
    (r,) = load_table([rec])
    assert (r.question, r.answers, r.doc_id, r.answerable) == ("who?", ["Dana"], "T", True)


def test_forge_evaluate_rag_logs_mlflow_and_writes_report(echo_forge, tmp_path):
    res = echo_forge.evaluate(ROWS, report=tmp_path / "r.html", name="eval-echo")
    m = res.metrics
    assert m["recall_at_k"] == 1.0 and m["mrr"] > 0.3
    assert m["answer_correctness"] == 1.0  # echo repeats the retrieved passage
    # echo never says "I don't know", but no passage addresses the CEO's favourite colour, so
    # the faithfulness guard refuses the echoed passage (min_question_support)
    assert m["refusal_rate"] == 1.0
    assert 0.0 <= m["faithfulness"] <= 1.0 and m["latency_p95_s"] >= m["latency_mean_s"] * 0 and "rougeL" in m
    page = (tmp_path / "r.html").read_text()
    assert "Worst examples" in page and "data:image/png;base64" in page and "favourite colour" in page
    run = echo_forge.models.client.get_run(res.run_id)
    assert run.data.metrics["recall_at_k"] == 1.0 and run.info.run_name == "eval-echo"
    assert check_gate(run.data.metrics, {"min_answer_correctness": 0.8, "max_latency_p95_s": 60}) == []
    assert check_gate(run.data.metrics, {"min_refusal_rate": 0.7}) == []
    again = echo_forge.evaluate(ROWS, report=tmp_path / "r2.html")
    assert again.run_id != res.run_id  # the second report plots both runs
    assert (tmp_path / "r2.html").read_text().count("data:image/png") >= 1


def test_forge_evaluate_bad_input(echo_forge):
    with pytest.raises(DataError, match="unknown metric"):
        echo_forge.evaluate(ROWS, metrics=["bleu"], log=False)
    with pytest.raises(DataError, match="no 'question' column"):
        echo_forge.evaluate([{"q": "x"}], log=False)
    res = echo_forge.evaluate([{"question": "x" * 5000, "answer": "y"}], log=False, metrics=["answered_rate"])
    assert "limit" in res.rows[0]["error"] and res.metrics["answered_rate"] == 0.0  # scored, not crashed


def test_cli_eval_reports_and_rejects_unknown_metric(tmp_path, capsys):
    from llmforge.cli import main

    table = tmp_path / "t.jsonl"
    table.write_text("\n".join(json.dumps(r) for r in ROWS))
    with pytest.raises(SystemExit) as exit_:
        main(["--home", str(tmp_path / "h"), "eval", str(table), "--metrics", "nope"])
    assert exit_.value.code == 1 and "unknown metric(s) ['nope']" in capsys.readouterr().err


def test_closed_book_scores_the_generator_alone(echo_forge):
    res = echo_forge.evaluate(ROWS, closed_book=True, log=False)
    # echo answers "nothing" when the prompt has no retrieved passage
    assert res.metrics["closed_book_accuracy"] == 0.0 and res.metrics["answered_rate"] == 1.0
    assert all(r["retrieved"] == [] for r in res.rows)
    assert "recall_at_k" not in res.metrics
    both = echo_forge.evaluate(ROWS, metrics=["answer_correctness", "closed_book_accuracy"], log=False)
    assert both.metrics == {"answer_correctness": 1.0, "closed_book_accuracy": 0.0}


def test_model_must_be_a_registered_uri(echo_forge):
    with pytest.raises(DataError, match="registered model URI"):
        echo_forge.evaluate(ROWS, model="SmolLM2", log=False)


def test_perplexity_examples_mask_the_prompt(tiny_model, tiny_tokenizer):
    import math

    from llmforge.evals.perplexity import examples
    from llmforge.evaluation import perplexity

    (ex,) = examples(tiny_tokenizer, [("Who owns Helix?", "Dana Kim")])
    answer_ids = tiny_tokenizer("Dana Kim", add_special_tokens=False)["input_ids"]
    assert ex.input_ids[-len(answer_ids) :] == answer_ids
    assert ex.labels == [-100] * (len(ex.input_ids) - len(answer_ids)) + answer_ids
    assert math.isfinite(perplexity(tiny_model, [ex]))


@pytest.mark.slow
def test_model_version_metrics_feed_its_promotion_gate(train_forge, tmp_path):
    from fixtures.train import FACTS, MODEL_NAME, tiny_config

    from llmforge.tracking import PromotionRefused

    version = train_forge.finetune(tiny_config()).model_version
    uri = f"models:/{MODEL_NAME}/{version}"
    rows = [{"question": q, "answer": a} for q, a in FACTS[:2]]
    res = train_forge.evaluate(
        rows, model=uri, closed_book=True, metrics=["closed_book_accuracy", "perplexity"], max_tokens=4
    )
    assert res.metrics["closed_book_accuracy"] == 0.0  # a random tiny model says nothing useful
    assert res.metrics["perplexity"] > 1.0, res.unmeasured
    mv = train_forge.models.client.get_model_version(MODEL_NAME, str(version))
    logged = train_forge.models.client.get_run(mv.run_id).data.metrics
    assert logged["closed_book_accuracy"] == 0.0 and logged["perplexity"] == res.metrics["perplexity"]
    with pytest.raises(PromotionRefused, match="closed_book_accuracy=0 < 0.5"):
        train_forge.models.promote(MODEL_NAME, version, gate={"min_closed_book_accuracy": 0.5})
