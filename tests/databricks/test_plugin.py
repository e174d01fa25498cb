"""The databricks distribution fills every slot it can, and stays light to import."""

from __future__ import annotations

import subprocess
import sys


def test_databricks_fills_data_trainer_index_and_generator():
    import llmforge

    available = llmforge.available()
    for slot in ("data_source", "trainer", "index", "generator"):
        assert "databricks" in available[slot], slot


def test_plugin_import_loads_no_databricks_or_mlflow_module():
    code = (
        "import sys, llmforge_databricks.plugin; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'databricks', 'mlflow', 'pyarrow'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_missing_credentials_is_a_clear_config_error(monkeypatch):
    import pytest
    from llmforge_databricks.workspace import credentials

    from llmforge.errors import ConfigError

    monkeypatch.delenv("DATABRICKS_HOST", raising=False)
    monkeypatch.setenv("DATABRICKS_TOKEN", "x")
    with pytest.raises(ConfigError, match="DATABRICKS_HOST"):
        credentials()
    monkeypatch.setenv("DATABRICKS_HOST", "adb-1.azuredatabricks.net/")
    assert credentials() == ("https://adb-1.azuredatabricks.net", "x")
