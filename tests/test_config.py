"""llmforge.yaml validation: errors name the bad key and the allowed values."""

from __future__ import annotations

import pytest

from llmforge import config
from llmforge.errors import ConfigError


def test_defaults_are_valid():
    conf = config.validate({})
    assert conf.backend == "local" and conf.slot("index").name == "local"


def test_misspelled_top_level_key_names_allowed_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'bakend'; allowed keys: \[.*'backend'.*\]"):
        config.validate({"bakend": "local"})


def test_misspelled_nested_key_names_allowed_keys():
    with pytest.raises(ConfigError, match=r"unknown key 'rag.num_result'; allowed keys: \[.*'num_results'"):
        config.validate({"rag": {"num_result": 3}})


def test_bad_value_names_the_key_and_allowed_values():
    with pytest.raises(ConfigError, match=r"'rag.query_type'.*'ANN' or 'HYBRID'"):
        config.validate({"rag": {"query_type": "FUZZY"}})
    with pytest.raises(ConfigError, match=r"'rag.num_results'.*greater than or equal to 1"):
        config.validate({"rag": {"num_results": 0}})


def test_unknown_slot_is_rejected():
    with pytest.raises(ConfigError, match=r"unknown slot\(s\) \['vector'\]"):
        config.validate({"components": {"vector": "local"}})


@pytest.mark.parametrize("key", ["token", "databricks_token", "password", "api_key"])
def test_secrets_are_refused(key):
    with pytest.raises(ConfigError, match="environment variables"):
        config.validate({"components": {"index": {"name": "databricks", "options": {key: "dapi123"}}}})


def test_max_tokens_is_not_mistaken_for_a_secret():
    assert config.validate({"rag": {"max_tokens": 64}}).rag.max_tokens == 64


def test_load_reports_yaml_errors_and_missing_files(tmp_path):
    bad = tmp_path / "llmforge.yaml"
    bad.write_text("backend: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "missing.yaml")


def test_guardrails_accept_names_and_option_blocks():
    conf = config.validate({"guardrails": ["pii", {"name": "blocklist", "options": {"terms": ["x"]}}]})
    assert [g.name for g in conf.guardrail_configs()] == ["pii", "blocklist"]
