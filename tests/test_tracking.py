"""MLflow runs, the registry (new version per run, gated aliases) and lineage."""

from __future__ import annotations

import json

import pytest

from llmforge.errors import ModelError, NotFoundError
from llmforge.tracking import PromotionRefused, Tracker, check_gate, loss_curve_png

NAME = "main.production.enterprise-llm-v1"


def fake_run(tracker, tmp_path, metrics, gate=None, status_ok=True):
    """A finished run whose ``model`` artifact is an adapter folder."""
    folder = tmp_path / f"model-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    (folder / "llmforge_model.json").write_text(json.dumps({"base_model": "tiny-random-llama"}))
    run = tracker.start_run("/ml/exp", tags={"llmforge.gate": json.dumps(gate or {})})
    try:
        with run:
            run.log_metrics(metrics)
            run.log_artifacts(folder, "model")
            if not status_ok:
                raise RuntimeError("training crashed")
    except RuntimeError:
        pass
    return run


@pytest.fixture
def tracker(forge):
    return Tracker(forge.home, forge.catalog)


def test_every_run_is_a_new_version_and_old_ones_stay(tracker, tmp_path):
    r1 = fake_run(tracker, tmp_path, {"rougeL": 0.1})
    r2 = fake_run(tracker, tmp_path, {"rougeL": 0.3})
    assert tracker.register(NAME, r1, sources=["table:ml.t.x@0"]) == "1"
    assert tracker.register(NAME, r2, sources=["table:ml.t.x@1"]) == "2"
    versions = tracker.versions(NAME)
    assert [v["version"] for v in versions] == ["1", "2"]
    assert [v["run_id"] for v in versions] == [r1.run_id, r2.run_id]
    assert versions[1]["metrics"]["rougeL"] == pytest.approx(0.3)
    assert (tracker.home / "mlflow.db").exists()


def test_lineage_reaches_the_training_table_from_the_model(tracker, tmp_path):
    run = fake_run(tracker, tmp_path, {})
    version = tracker.register(NAME, run, sources=["table:ml.llm_training.pairs@3"])
    up = tracker.catalog.upstream(f"model:{NAME}/{version}")
    assert {e["source"] for e in up} == {f"mlflow_run:{run.run_id}", "table:ml.llm_training.pairs@3"}


def test_promote_sets_alias_only_when_the_gate_passes(tracker, tmp_path):
    good = tracker.register(NAME, fake_run(tracker, tmp_path, {"rougeL": 0.4, "perplexity": 12.0}))
    bad = tracker.register(NAME, fake_run(tracker, tmp_path, {"rougeL": 0.05, "perplexity": 90.0}))
    gate = {"min_rougeL": 0.2, "max_perplexity": 50}
    assert tracker.promote(NAME, good, gate=gate)["version"] == good
    with pytest.raises(PromotionRefused, match=r"perplexity=90 > 50; rougeL=0\.05 < 0\.2"):
        tracker.promote(NAME, bad, gate=gate)
    assert tracker.resolve(f"models:/{NAME}@champion").version == good  # alias did not move
    assert tracker.promote(NAME, bad, alias="challenger")["version"] == bad  # no gate: allowed


def test_promote_uses_the_gate_the_run_recorded(tracker, tmp_path):
    v = tracker.register(NAME, fake_run(tracker, tmp_path, {"rougeL": 0.1}, gate={"min_rougeL": 0.5}))
    with pytest.raises(PromotionRefused, match="rougeL"):
        tracker.promote(NAME, v)
    with pytest.raises(PromotionRefused, match="faithfulness was not measured"):
        tracker.promote(NAME, v, gate={"min_faithfulness": 0.5})


def test_failed_runs_and_unknown_versions_are_refused(tracker, tmp_path):
    v = tracker.register(NAME, fake_run(tracker, tmp_path, {}, status_ok=False))
    with pytest.raises(PromotionRefused, match="FAILED"):
        tracker.promote(NAME, v)
    with pytest.raises(NotFoundError, match="no version 9"):
        tracker.promote(NAME, 9)
    with pytest.raises(NotFoundError, match="no registered model"):
        tracker.promote("nope", 1)


def test_resolve_champion_to_a_loadable_adapter(tracker, tmp_path):
    run = fake_run(tracker, tmp_path, {"rougeL": 0.5})
    v = tracker.register(NAME, run)
    with pytest.raises(NotFoundError, match="no alias @champion"):
        tracker.resolve(f"models:/{NAME}@champion")
    tracker.promote(NAME, v)
    resolved = tracker.resolve(f"models:/{NAME}@champion")
    assert resolved.version == v and resolved.run_id == run.run_id
    assert resolved.base_model == "tiny-random-llama"
    assert (resolved.adapter / "adapter_config.json").exists()
    assert tracker.resolve(f"models:/{NAME}/{v}").path == resolved.path
    with pytest.raises(ModelError, match="not a registered model URI"):
        tracker.resolve("runs:/abc/model")


def test_check_gate_directions():
    assert check_gate({"a": 1.0, "b": 5.0}, {"min_a": 0.5, "max_b": 6}) == []
    assert check_gate({"a": 0.1}, {"min_a": 0.5}) == ["a=0.1 < 0.5"]


def test_loss_curve_is_a_png(tmp_path):
    path = loss_curve_png([(1, 3.0), (2, 2.5), (3, 2.0)], tmp_path / "loss.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
