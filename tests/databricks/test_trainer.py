"""DatabricksTrainer: the fm.create() front end, the seed config passed through, and the
training job run through the Jobs API against the emulator (real databricks-sdk client)."""

from __future__ import annotations

import pytest

from llmforge.errors import ConfigError, ModelError

SEED = {
    "model": "meta-llama/Meta-Llama-3.1-70B-Instruct",
    "task_type": "INSTRUCTION_FINETUNE",
    "training_data": {"table": "ml.llm_training.enterprise_instructions_v1", "split": 0.9},
    "training_params": {
        "learning_rate": 2e-5,
        "num_epochs": 3,
        "batch_size": 8,
        "gradient_accumulation_steps": 4,
        "warmup_ratio": 0.1,
    },
    "evaluation": {
        "metrics": ["perplexity", "rouge", "faithfulness"],
        "eval_table": "ml.llm_training.enterprise_instructions_v1_eval",
    },
    "output": {
        "registered_model": "main.production.enterprise-llm-v1",
        "experiment": "/ml/enterprise-llm-experiments",
    },
}


def test_seed_config_maps_onto_fm_create_arguments_unchanged():
    from llmforge_databricks.trainer import request_from_config

    assert request_from_config(SEED) == {
        "model": "meta-llama/Meta-Llama-3.1-70B-Instruct",
        "train_data_path": "ml.llm_training.enterprise_instructions_v1",
        "register_to": "main.production.enterprise-llm-v1",
        "experiment_path": "/ml/enterprise-llm-experiments",
        "task_type": "INSTRUCTION_FINETUNE",
        "eval_data_path": "ml.llm_training.enterprise_instructions_v1_eval",
        "training_duration": "3ep",
        "learning_rate": 2e-5,
    }
    with_block = {**SEED, "databricks": {"max_seq_len": 4096, "num_epochs": 1}}
    req = request_from_config(with_block)
    assert req["context_length"] == 4096 and req["training_duration"] == "1ep"


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"register_to": "nocatalog"}, "register_to"),
        ({"task_type": "RLHF"}, "task_type"),
        ({"learning_rate": 0.0}, "learning_rate"),
    ],
)
def test_create_validates_inputs_before_any_request(kw, match):
    from llmforge_databricks.trainer import create_request

    args = {"model": "m", "train_data_path": "a.b.c", "register_to": "main.models", **kw}
    with pytest.raises(ConfigError, match=match):
        create_request(**args)


VOLUME = "/Volumes/ml/llm_training/jobs"


@pytest.fixture
def job_forge(train_forge, home, databricks_env):
    """A databricks-backend forge whose trainer submits jobs to the emulator (over ``train_forge``)."""
    import llmforge

    return llmforge.connect(
        backend="databricks",
        home=str(home),
        user="admin",
        generator="local",
        trainer={
            "name": "databricks",
            "options": {"volume": VOLUME, "node_type_id": "g5.12xlarge", "poll_seconds": 0.2},
        },
        data_source={"name": "databricks", "options": {"warehouse_id": "emulated"}},
    )


def dbx_config() -> dict:
    """The tiny config with its ``local:`` settings as the ``databricks:`` block: what the job trains."""
    from fixtures.train import tiny_config

    cfg = tiny_config()
    cfg["databricks"] = cfg.pop("local")
    return cfg


@pytest.mark.slow
def test_finetune_runs_as_a_jobs_run_and_registers_a_version(job_forge, train_forge, capsys):
    from fixtures.train import MODEL_NAME

    from llmforge.components import TrainResult

    res = job_forge.finetune(dbx_config())
    assert isinstance(res, TrainResult) and res.status == "SUCCESS"
    assert res.registered_model == MODEL_NAME and res.model_version == "1"
    assert res.model_uri == f"models:/{MODEL_NAME}/1" and res.training_table_version == 0
    assert {"perplexity", "rouge1"} <= set(res.metrics)
    assert "#job/runs/" in res.details["run_page_url"] and len(res.details["losses"]) == 6
    # the workspace registry (the emulator's) holds the version, from a finished run
    versions = train_forge.models.versions(MODEL_NAME)
    assert [v["version"] for v in versions] == ["1"] and versions[0]["run_id"] == res.run_id
    # the wheels, the driver and the job config went to the volume; progress was reported
    w = job_forge.trainer
    from llmforge_databricks.workspace import workspace_client

    names = {e.name for e in workspace_client().files.list_directory_contents(f"{VOLUME}/wheels")}
    assert any(n.startswith("llmforge-") for n in names) and any(
        n.startswith("llmforge_local-") for n in names
    )
    assert "SUCCESS" in capsys.readouterr().err and w.options.volume == VOLUME


def test_fm_create_front_end_builds_the_same_config():
    from llmforge_databricks.trainer import config_from_request, create_request

    from llmforge.finetune_config import load_finetune_config

    req = create_request(
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "main.data.train",
        "main.models",
        training_duration="2ep",
        learning_rate=1e-4,
        context_length=2048,
    )
    cfg = load_finetune_config(config_from_request(req))
    assert cfg.output.registered_model == "main.models.meta_llama_3_1_8b_instruct"
    assert cfg.training_params.num_epochs == 2 and cfg.databricks.max_seq_len == 2048
    with pytest.raises(ConfigError, match="training_duration"):
        config_from_request({**req, "training_duration": "1000tok"})


def test_a_job_that_fails_on_the_cluster_surfaces_its_error_and_log_url(job_forge, forge):

    cfg = dbx_config()
    cfg["training_data"]["table"] = "ml.llm_training.no_such_table"
    with pytest.raises(ModelError, match=r"(?s)ended FAILED: .*no_such_table.*Driver logs: http.*#job/runs/"):
        job_forge.finetune(cfg, progress=False)


def test_trainer_options_say_what_a_workspace_needs(dbx_forge):
    from fixtures.train import tiny_config

    import llmforge

    with pytest.raises(ConfigError, match="volume"):
        dbx_forge.finetune(tiny_config())
    f = llmforge.connect(
        backend="databricks",
        home=str(dbx_forge.home),
        user="admin",
        trainer={"name": "databricks", "options": {"volume": VOLUME}},
    )
    with pytest.raises(ConfigError, match="node_type_id.*policy_id.*serverless"):
        f.finetune(tiny_config())


def test_bad_config_fails_before_submitting(dbx_forge):
    with pytest.raises(ConfigError, match="split"):
        dbx_forge.finetune({**SEED, "training_data": {"table": "a.b.c", "split": 1.5}})


@pytest.mark.slow
def test_a_submitted_run_can_be_cancelled(job_forge):
    """jobs.cancel_run on a run in progress: it ends CANCELED and registers nothing."""
    import io
    import json
    import time

    from databricks.sdk.service import compute, jobs
    from fixtures.train import MODEL_NAME
    from llmforge_databricks.workspace import workspace_client

    w = workspace_client()
    from llmforge.finetune_config import load_finetune_config

    # the effective config, as the trainer sends it: a run that trains for a few seconds
    config = load_finetune_config(dbx_config()).for_backend("databricks")
    config = config.model_dump(mode="json", exclude_none=True, exclude={"local", "databricks"})
    job = {"config": config, "result_path": f"{VOLUME}/cancel/result.json", "overrides": {}}
    w.files.upload(f"{VOLUME}/cancel/job.json", io.BytesIO(json.dumps(job).encode()), overwrite=True)
    w.files.upload(f"{VOLUME}/cancel/driver.py", io.BytesIO(b"raise SystemExit(0)\n"), overwrite=True)
    run = w.jobs.submit(
        run_name="cancel me",
        tasks=[
            jobs.SubmitTask(
                task_key="train",
                new_cluster=compute.ClusterSpec(
                    spark_version="15.4.x-gpu-ml-scala2.12", node_type_id="g5.xlarge"
                ),
                spark_python_task=jobs.SparkPythonTask(
                    python_file=f"{VOLUME}/cancel/driver.py", parameters=[f"{VOLUME}/cancel/job.json"]
                ),
            )
        ],
    )
    w.jobs.cancel_run(run.run_id)
    deadline = time.monotonic() + 120
    while (state := w.jobs.get_run(run.run_id).state).life_cycle_state.value != "TERMINATED":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state.result_state.value == "CANCELED"
    assert not [v for v in job_forge.models.client.search_model_versions(f"name='{MODEL_NAME}'")]


def test_fm_create_submits_the_same_training_job(job_forge):
    """``create()`` keeps fm.create's signature and runs llmforge's job: here the emulated cluster
    cannot hold an 8B model, and that error comes back with the run page URL."""
    from fixtures.train import TRAIN_TABLE

    with pytest.raises(ModelError, match=r"(?s)ended FAILED: ModelError: .*Meta-Llama-3.1-8B.*#job/runs/"):
        job_forge.trainer.create(
            "meta-llama/Meta-Llama-3.1-8B-Instruct",
            TRAIN_TABLE,
            "main.production",
            training_duration="1ep",
            progress=False,
        )
