"""Evaluation metrics: ROUGE, faithfulness, closed-book accuracy, perplexity, the report."""

from __future__ import annotations

import math

import pytest

from llmforge import evaluation as E


def test_rouge_identical_and_disjoint():
    same = E.rouge(["Maria Chen owns Project Helix."], ["Maria Chen owns Project Helix."])
    assert same == pytest.approx({"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0})
    none = E.rouge(["bananas are yellow"], ["Maria Chen owns Project Helix."])
    assert none["rouge1"] == 0.0
    partial = E.rouge(["Maria Chen owns it"], ["Maria Chen owns Project Helix."])
    assert 0.0 < partial["rouge2"] < partial["rouge1"] < 1.0
    with pytest.raises(ValueError, match="1 predictions but 2 references"):
        E.rouge(["a"], ["a", "b"])


def test_faithfulness_against_gold_and_prompt():
    gold = ["Parental leave is 16 weeks.", "How long is parental leave?"]
    assert E.faithfulness(["Parental leave is 16 weeks."], [gold]) == 1.0
    assert E.faithfulness(["Parental leave is 52 weeks."], [gold]) == 0.0  # wrong number
    assert E.faithfulness(["Leave is 16 weeks.", "Pigs fly over Mars daily."], [gold, gold]) == 0.5


def test_closed_book_accuracy_matches_facts_not_formatting():
    answers = ["It's owned by MARIA CHEN, since 2021.", "The office opens at 9am.", "Bazel!"]
    expected = ["Maria Chen", "8am", ["Bazel", "bazel build"]]
    assert E.closed_book_accuracy(answers, expected) == pytest.approx(2 / 3)
    assert not E.contains_fact("Mariachen", "Maria Chen")
    assert not E.contains_fact("18am", "8am")  # whole words only


def test_perplexity_is_exp_of_mean_token_loss(tiny_model):
    import torch
    import torch.nn.functional as F
    from llmforge_local.train.data import IGNORE, Example

    ex = [Example([5, 6, 7, 8, 9], [IGNORE, IGNORE, 7, 8, 9]), Example([11, 12, 13], [IGNORE, 12, 13])]
    ppl = E.perplexity(tiny_model, ex, batch_size=2)
    with torch.no_grad():
        losses = []
        for e in ex:
            logits = tiny_model(input_ids=torch.tensor([e.input_ids])).logits[0]
            keep = [i for i, t in enumerate(e.labels[1:]) if t != IGNORE]
            losses += F.cross_entropy(
                logits[keep], torch.tensor([e.labels[1:][i] for i in keep]), reduction="none"
            ).tolist()
    assert ppl == pytest.approx(math.exp(sum(losses) / len(losses)), rel=1e-4)
    assert 1e4 < ppl < 1e6  # a random model is about as unsure as the 49k vocabulary


def test_generate_answers_greedy_and_batched(tiny_model, tiny_tokenizer):
    prompts = ["Who owns Project Helix?", "Hi", "When does the office open?"]
    one = E.generate_answers(tiny_model, tiny_tokenizer, prompts, max_new_tokens=5, batch_size=1)
    many = E.generate_answers(tiny_model, tiny_tokenizer, prompts, max_new_tokens=5, batch_size=3)
    assert len(one) == 3 and all(isinstance(a, str) for a in one)
    assert one == many  # left padding does not change greedy answers
    assert tiny_tokenizer.padding_side == "right"


def test_html_report_escapes_content(tmp_path):
    path = E.html_report(
        tmp_path / "r.html",
        "run <1>",
        {"rougeL": 0.25},
        [{"prompt": "<script>x</script>", "answer": "a", "gold": "g"}],
        "loss.png",
    )
    page = path.read_text()
    assert "&lt;script&gt;" in page and "<script>" not in page
    assert "0.2500" in page and 'src="loss.png"' in page
