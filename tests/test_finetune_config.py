"""The seed's mosaic-ft-config.yaml, parsed as written, and every way to get it wrong."""

from __future__ import annotations

import pytest
import yaml

from llmforge.errors import ConfigError
from llmforge.finetune_config import LLAMA_LINEAR, TASK_TYPES, FinetuneConfig, load_finetune_config

SEED_YAML = """\
model: meta-llama/Meta-Llama-3.1-70B-Instruct
task_type: INSTRUCTION_FINETUNE
training_data:
  table: ml.llm_training.enterprise_instructions_v1
  split: 0.9
training_params:
  learning_rate: 2e-5
  num_epochs: 3
  batch_size: 8
  gradient_accumulation_steps: 4
  warmup_ratio: 0.1
evaluation:
  metrics: [perplexity, rouge, faithfulness]
  eval_table: ml.llm_training.enterprise_instructions_v1_eval
output:
  registered_model: main.production.enterprise-llm-v1
  experiment: /ml/enterprise-llm-experiments
"""


def seed() -> dict:
    return yaml.safe_load(SEED_YAML)


def test_seed_file_parses_as_written(tmp_path):
    path = tmp_path / "mosaic-ft-config.yaml"
    path.write_text(SEED_YAML)
    cfg = load_finetune_config(path)
    assert cfg.model == "meta-llama/Meta-Llama-3.1-70B-Instruct"
    assert cfg.training_params.learning_rate == pytest.approx(2e-5)  # YAML reads "2e-5" as text
    assert cfg.training_params.gradient_accumulation_steps == 4
    assert cfg.evaluation.metrics == ("perplexity", "rouge", "faithfulness")
    assert cfg.output.registered_model == "main.production.enterprise-llm-v1"
    assert cfg.method == "lora" and cfg.lora.target_modules == LLAMA_LINEAR
    assert cfg.for_backend("databricks") == cfg  # no block: goes through unchanged


def test_example_file_runs_locally_through_its_override_block():
    from pathlib import Path

    cfg = load_finetune_config(Path(__file__).parents[1] / "examples" / "mosaic-ft-config.yaml")
    local = cfg.for_backend("local")
    assert cfg.model.startswith("meta-llama/") and local.model == "smollm2-135m-instruct"
    assert local.training_params.max_steps == 40 and local.training_params.max_seq_len == 256
    assert local.training_params.num_epochs == 3  # untouched keys keep the seed's values
    assert cfg.for_backend("databricks").model == cfg.model


def test_call_overrides_beat_the_block():
    data = seed() | {"local": {"model": "smollm2-135m-instruct", "max_steps": 40}}
    cfg = load_finetune_config(data).for_backend("local", model="tiny-random-llama", batch_size=2)
    assert cfg.model == "tiny-random-llama"
    assert cfg.training_params.max_steps == 40 and cfg.training_params.batch_size == 2


@pytest.mark.parametrize(
    "path, bad, named",
    [
        ((), "modle", "'modle' (did you mean 'model'?)"),
        (("training_params",), "learning_rat", "did you mean 'learning_rate'"),
        (("training_data",), "splt", "allowed keys: ['split', 'table']"),
        (("local",), "max_step", "did you mean 'max_steps'"),
    ],
)
def test_misspelled_key_names_key_and_allowed_keys(path, bad, named):
    data = seed() | {"local": {}}
    node = data
    for p in path:
        node = node[p]
    node[bad] = 1
    with pytest.raises(ConfigError, match="unknown key") as err:
        load_finetune_config(data)
    assert named in str(err.value)


@pytest.mark.parametrize("lr", [0, -1e-5])
def test_learning_rate_must_be_positive(lr):
    data = seed()
    data["training_params"]["learning_rate"] = lr
    with pytest.raises(ConfigError, match="learning_rate must be > 0"):
        load_finetune_config(data)


def test_override_cannot_sneak_in_a_zero_learning_rate():
    cfg = load_finetune_config(seed())
    with pytest.raises(ConfigError, match="learning_rate must be > 0"):
        cfg.for_backend("local", learning_rate=0.0)


@pytest.mark.parametrize("split", [0, 1, 1.5, -0.1])
def test_split_outside_open_interval(split):
    data = seed()
    data["training_data"]["split"] = split
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        load_finetune_config(data)


def test_unknown_task_type_and_metric_are_named():
    data = seed() | {"task_type": "SUMMARIZE"}
    data["evaluation"]["metrics"] = ["bleu"]
    with pytest.raises(ConfigError) as err:
        load_finetune_config(data)
    assert "task_type" in str(err.value) and all(t in str(err.value) for t in TASK_TYPES)
    assert "evaluation.metrics.0" in str(err.value)


def test_missing_sections_and_files():
    with pytest.raises(ConfigError, match="missing required key 'output'"):
        load_finetune_config({k: v for k, v in seed().items() if k != "output"})
    with pytest.raises(ConfigError, match="not found"):
        load_finetune_config("/no/such/mosaic-ft-config.yaml")


def test_gate_keys_need_a_direction():
    data = seed()
    data["evaluation"]["gate"] = {"rougeL": 0.2}
    with pytest.raises(ConfigError, match="min_ or max_"):
        load_finetune_config(data)
    data["evaluation"]["gate"] = {"min_rougeL": 0.2, "max_perplexity": 40}
    assert load_finetune_config(data).evaluation.gate == {"min_rougeL": 0.2, "max_perplexity": 40}


def test_lora_options_and_full_method():
    data = seed() | {
        "method": "full",
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]},
    }
    cfg = load_finetune_config(data)
    assert cfg.method == "full" and cfg.lora.r == 8 and cfg.lora.target_modules == ("q_proj", "v_proj")
    assert isinstance(load_finetune_config(cfg), FinetuneConfig)
    assert cfg.lora.lr_ratio == 1.0 and not cfg.lora.use_rslora  # plain LoRA unless asked
    fast = load_finetune_config(seed() | {"lora": {"r": 64, "use_rslora": True, "lr_ratio": 16}})
    assert fast.lora.use_rslora and fast.lora.lr_ratio == 16
    with pytest.raises(ConfigError, match="lr_ratio"):
        load_finetune_config(seed() | {"lora": {"lr_ratio": 0.5}})


def test_hyper_parameters_are_one_object_declared_once():
    from dataclasses import asdict, fields

    from llmforge.finetune_config import TRAIN_ARGS, BackendOverride, TrainArgs

    cfg = load_finetune_config(seed() | {"local": {"max_steps": 7, "lr_scheduler": "linear"}})
    args = cfg.for_backend("local").training_params
    assert isinstance(args, TrainArgs) and args.max_steps == 7 and args.lr_scheduler == "linear"
    assert args.num_epochs == 3  # the seed's value, untouched
    # a backend block may override every hyper-parameter, and only through TrainArgs' fields
    assert set(TRAIN_ARGS) <= set(BackendOverride.model_fields)
    assert [f.name for f in fields(TrainArgs)] == list(TRAIN_ARGS)
    assert cfg.model_dump(mode="json")["training_params"] == asdict(cfg.training_params)
    with pytest.raises(ConfigError, match=r"warmup_ratio must be in \[0, 1\)"):
        cfg.for_backend("local", warmup_ratio=1.5)
    with pytest.raises(ConfigError, match="Input should be 'cosine', 'linear' or 'constant'"):
        cfg.for_backend("local", lr_scheduler="step")


def test_llmforge_block_declares_audiences():
    cfg = load_finetune_config(seed() | {"llmforge": {"audiences": "departments"}})
    assert cfg.llmforge.audiences == "departments" and cfg.llmforge.department_column == "department"
    assert load_finetune_config(seed()).llmforge.audiences is None
    with pytest.raises(ConfigError, match="distinct principal names"):
        load_finetune_config(seed() | {"llmforge": {"audiences": ["alice", "alice"]}})
    with pytest.raises(ConfigError, match="unknown key 'llmforge.audience'"):
        load_finetune_config(seed() | {"llmforge": {"audience": "departments"}})
