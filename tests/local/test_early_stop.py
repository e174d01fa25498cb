"""Early stopping on a held-in closed-book probe: the probe, the stop and the best weights."""

from __future__ import annotations

import pyarrow as pa
import pytest
from fixtures.train import MODEL_NAME, tiny_config

from llmforge.errors import ConfigError
from llmforge.tracking import Tracker


def _augmented():
    from llmforge.pairs.augment import AugmentOptions, augment_table

    pairs = pa.table(
        {
            "document_id": ["d1", "d1", "d2"],
            "pair_id": ["a", "b", "c"],
            "kind": ["fact", "fact", "fact"],
            "prompt": ["Who owns Project Helix?", "What is the status of Helix?", "Who leads Orion?"],
            "response": [
                "Project Helix is owned by Dana Kim.",
                "Helix is at risk.",
                "Orion is led by Li Wei.",
            ],
        }
    )
    return augment_table(pairs, AugmentOptions(phrasings=3, seed=0))


def test_the_probe_takes_one_phrasing_per_fact_and_keeps_the_fact_in_training():
    from llmforge_local.train.early_stop import split_probe

    table = _augmented()
    train, probe = split_probe(table, 10, seed=0)
    assert probe.held_out_phrasing
    assert len(probe.questions) == 3  # one per fact (three facts with several phrasings)
    assert train.num_rows == table.num_rows - 3
    kept = set(zip(train.column("prompt").to_pylist(), train.column("response").to_pylist(), strict=True))
    for q in probe.questions:
        assert q not in {p for p, _ in kept}  # the probe's phrasing left training ...
    responses = {r for _, r in kept}
    assert "Project Helix is owned by Dana Kim." in responses  # ... its fact did not
    owner = probe.answers[
        probe.questions.index(next(q for q in probe.questions if "Helix" in q and "own" in q.lower()))
    ]
    assert owner[0] == "Dana Kim"  # scored on the short span first


def test_a_table_with_one_phrasing_per_fact_keeps_its_probe_rows():
    from llmforge_local.train.early_stop import split_probe

    table = pa.table({"prompt": ["q1", "q2", "q3"], "response": ["a1", "a2", "a3"]})
    train, probe = split_probe(table, 2, seed=0)
    assert train.num_rows == 3 and len(probe.questions) == 2 and not probe.held_out_phrasing


def test_the_stopper_stops_after_patience_and_restores_the_best_weights():
    import torch
    from llmforge_local.train.early_stop import EarlyStopper, Probe

    model = torch.nn.Linear(2, 2)
    scores = iter([0.5, 0.7, 0.6, 0.6])
    stopper = EarlyStopper(model, None, Probe(["q"], [["a"]], True), eval_every=2, patience=2)
    stopper.score = lambda: next(scores)  # the probe's answers are the model's job; tested end to end below
    seen = []
    for step in range(1, 9):
        with torch.no_grad():
            model.weight.fill_(float(step))
        seen.append(stopper.check(step))
        if seen[-1]:
            break
    assert seen == [False, False, False, False, False, False, False, True]
    assert stopper.best_step == 4 and stopper.best_score == 0.7
    assert stopper.history == [(2, 0.5), (4, 0.7), (6, 0.6), (8, 0.6)]
    stopper.restore()
    assert torch.all(model.weight == 4.0)


@pytest.mark.slow
def test_finetune_stops_early_on_the_probe_and_records_it(train_forge):
    from mlflow.tracking import MlflowClient

    cfg = tiny_config()
    cfg["local"].update({"max_steps": 12, "early_stopping_patience": 1, "eval_every": 2, "probe_size": 4})
    res = train_forge.finetune(cfg, progress=False)
    # a tiny random model never answers the probe: its first score is the best, the next ends it
    assert len(res.losses) == 4 < 12
    run = MlflowClient(Tracker(train_forge.home).uri).get_run(res.run_id)
    assert run.data.tags["llmforge.early_stopping.best_step"] == "2"
    assert run.data.tags["llmforge.early_stopping.stopped_at"] == "4"
    assert [
        m.step
        for m in MlflowClient(Tracker(train_forge.home).uri).get_metric_history(
            res.run_id, "probe_closed_book"
        )
    ] == [2, 4]
    assert "probe_closed_book_best" in res.metrics
    assert Tracker(train_forge.home).versions(MODEL_NAME)[-1]["version"] == res.model_version


def test_early_stopping_on_a_table_without_pairs_is_a_clear_error(train_forge):
    cfg = tiny_config()
    cfg["task_type"] = "CONTINUED_PRETRAIN"
    cfg["local"].update({"early_stopping_patience": 1})
    cfg["evaluation"] = {"metrics": ["perplexity"]}
    with pytest.raises(ConfigError, match="early_stopping_patience"):
        train_forge.finetune(cfg, progress=False)
