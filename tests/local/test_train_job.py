"""forge.finetune end to end on the tiny model: tracking, registry, lineage, bad input, resume."""

from __future__ import annotations

import errno

import pyarrow as pa
import pytest
from fixtures.train import EVAL_TABLE, MODEL_NAME, TRAIN_TABLE, pairs_table, tiny_config

from llmforge.errors import DataError, ModelError, NotFoundError
from llmforge.tracking import Tracker


def no_versions(forge) -> bool:
    try:
        Tracker(forge.home).versions(MODEL_NAME)
    except NotFoundError:
        return True
    return False


@pytest.mark.slow
def test_job_tracks_registers_and_traces_lineage(train_forge):
    from llmforge_local.models import load_causal_lm
    from mlflow.tracking import MlflowClient

    forge = train_forge
    res = forge.finetune(tiny_config(), progress=False)
    assert res.model_version == "1" and res.training_table_version == 0
    assert len(res.losses) == 6 and set(res.metrics) >= {
        "perplexity",
        "rouge1",
        "rouge2",
        "rougeL",
        "faithfulness",
    }
    client = MlflowClient(Tracker(forge.home).uri)
    run = client.get_run(res.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["training_table"] == TRAIN_TABLE
    assert run.data.params["training_table_version"] == "0"
    assert run.data.params["model"] == "tiny-random-llama"
    assert [m.step for m in client.get_metric_history(res.run_id, "train_loss")] == [1, 2, 3, 4, 5, 6]
    arts = {a.path for a in client.list_artifacts(res.run_id)}
    assert {
        "model",
        "loss_curve.png",
        "evaluation.html",
        "config",
        "system_info.json",
        "training_rows.json",
    } <= arts
    assert "config/train_args.json" in {a.path for a in client.list_artifacts(res.run_id, "config")}
    model_files = {a.path for a in client.list_artifacts(res.run_id, "model")}
    assert {"model/adapter_config.json", "model/tokenizer.json", "model/llmforge_model.json"} <= model_files
    up = forge.catalog.upstream(f"model:{MODEL_NAME}/1")
    assert {e["source"] for e in up} == {f"mlflow_run:{res.run_id}", f"table:{TRAIN_TABLE}@0"}

    model, tok = load_causal_lm(f"models:/{MODEL_NAME}/1", forge.home)
    assert hasattr(model, "peft_config") and tok.pad_token is not None

    forge.table(TRAIN_TABLE).append(
        pairs_table(repeat=1).set_column(0, "pair_id", pa.array([f"q{i}" for i in range(6)]))
    )
    res2 = forge.finetune(tiny_config(), progress=False)
    assert res2.model_version == "2" and res2.training_table_version == 1
    assert [v["version"] for v in Tracker(forge.home).versions(MODEL_NAME)] == ["1", "2"]


def test_a_model_that_cannot_run_here_says_how_to_pick_one(train_forge):
    cfg = tiny_config()
    del cfg["local"]
    with pytest.raises(ModelError, match=r"(?s)local:\n    model: smollm2-135m-instruct.*--model"):
        train_forge.finetune(cfg, progress=False)
    with pytest.raises(ModelError, match="does not exist"):
        train_forge.finetune(tiny_config(), model="./no/such/model", progress=False)
    assert no_versions(train_forge)


def test_missing_table_is_reported_before_training(forge):
    with pytest.raises(NotFoundError, match=f"training table '{TRAIN_TABLE}' does not exist"):
        forge.finetune(tiny_config(), progress=False)
    assert no_versions(forge)


def test_missing_eval_table_is_reported_before_training(forge):
    forge.table(TRAIN_TABLE).create(pairs_table())
    with pytest.raises(NotFoundError, match=f"evaluation table '{EVAL_TABLE}' does not exist"):
        forge.finetune(tiny_config(), progress=False)
    assert no_versions(forge)


def test_empty_table_and_wrong_columns(forge):
    forge.table(TRAIN_TABLE).create(pa.schema([("prompt", pa.string()), ("response", pa.string())]))
    with pytest.raises(DataError, match="has no rows"):
        forge.finetune(tiny_config(), progress=False)
    other = "ml.llm_training.wrong"
    forge.table(other).create(pa.table({"question": ["q"] * 4, "answer": ["a"] * 4}))
    cfg = tiny_config()
    cfg["training_data"]["table"] = other
    with pytest.raises(DataError, match=r"columns \['question', 'answer'\]"):
        forge.finetune(cfg, progress=False)
    assert no_versions(forge)


@pytest.mark.slow
def test_full_disk_then_rerun_resumes_to_the_same_result(train_forge, tmp_path, monkeypatch):
    from llmforge_local.train import loop

    import llmforge

    forge = train_forge
    real, calls = loop.write_checkpoint_file, []

    def full_on_second(state, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(state, path)

    monkeypatch.setattr(loop, "write_checkpoint_file", full_on_second)
    with pytest.raises(loop.CheckpointError, match="disk is full"):
        forge.finetune(tiny_config(), progress=False)
    assert no_versions(forge)  # nothing half-registered
    monkeypatch.setattr(loop, "write_checkpoint_file", real)
    resumed = forge.finetune(tiny_config(), progress=False)
    assert resumed.resumed_from == 2 and resumed.model_version == "1"

    other = llmforge.connect(backend="local", home=str(tmp_path / "other"), user="admin")
    other.table(TRAIN_TABLE).create(pairs_table(), primary_key="pair_id")
    other.table(EVAL_TABLE).create(pairs_table(repeat=1)[:2], primary_key="pair_id")
    straight = other.finetune(tiny_config(), progress=False)
    assert straight.resumed_from == 0
    assert resumed.losses == straight.losses


def test_a_one_row_table_trains_without_a_held_out_split(forge):
    forge.table(TRAIN_TABLE).create(pairs_table(repeat=1)[:1], primary_key="pair_id")
    cfg = tiny_config(max_steps=2)
    cfg["evaluation"] = {"metrics": ["perplexity"]}
    res = forge.finetune(cfg, progress=False)
    assert res.model_version == "1" and len(res.losses) == 2
    assert "perplexity" not in res.metrics  # nothing was held out to measure it on
