"""DatabricksTrainer: the fm.create() front end, the seed config passed through, and a clear
error where the workspace no longer offers fine-tuning runs (the emulator does not)."""

from __future__ import annotations

import pytest

from llmforge.errors import ConfigError, ModelError

SEED = {
    "model": "meta-llama/Meta-Llama-3.1-70B-Instruct",
    "task_type": "INSTRUCTION_FINETUNE",
    "training_data": {"table": "ml.llm_training.enterprise_instructions_v1", "split": 0.9},
    "training_params": {"learning_rate": 2e-5, "num_epochs": 3, "batch_size": 8,
                        "gradient_accumulation_steps": 4, "warmup_ratio": 0.1},
    "evaluation": {"metrics": ["perplexity", "rouge", "faithfulness"],
                   "eval_table": "ml.llm_training.enterprise_instructions_v1_eval"},
    "output": {"registered_model": "main.production.enterprise-llm-v1",
               "experiment": "/ml/enterprise-llm-experiments"},
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


@pytest.mark.parametrize("kw, match", [
    ({"register_to": "nocatalog"}, "register_to"),
    ({"task_type": "RLHF"}, "task_type"),
    ({"learning_rate": 0.0}, "learning_rate"),
])
def test_create_validates_inputs_before_any_request(kw, match):
    from llmforge_databricks.trainer import create_request

    args = {"model": "m", "train_data_path": "a.b.c", "register_to": "main.models", **kw}
    with pytest.raises(ConfigError, match=match):
        create_request(**args)


def test_workspace_without_the_service_gives_a_clear_error(dbx_forge):
    with pytest.raises(ModelError, match="deprecated.*trainer='local'"):
        dbx_forge.finetune(SEED)
    with pytest.raises(ModelError, match="does not offer fine-tuning runs"):
        dbx_forge.trainer.create("meta-llama/Meta-Llama-3.1-8B-Instruct", "main.data.train", "main.models")


def test_bad_config_fails_before_submitting(dbx_forge):
    with pytest.raises(ConfigError, match="split"):
        dbx_forge.finetune({**SEED, "training_data": {"table": "a.b.c", "split": 1.5}})
