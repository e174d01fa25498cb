"""Bad input on the databricks backend: each a clear error in llmforge's family that says what
to do next, never a raw HTTP traceback (the real clients underneath)."""

from __future__ import annotations

import pytest

from llmforge.errors import ConfigError


def _calls(forge):
    """One call per component, each through a different real client."""
    return {
        "data (databricks-sdk)": lambda: forge.table("main.rag.docs").describe(),
        "sql (statement execution)": lambda: forge.table("main.rag.docs").read(),
        "index (databricks-vectorsearch)": lambda: forge.vector_search.list_endpoints(),
        "serving (mlflow.deployments)": lambda: forge.generator.chat([{"role": "user", "content": "hi"}]),
    }


@pytest.fixture
def any_forge(home, monkeypatch):
    import llmforge

    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/.databrickscfg")
    return llmforge.connect(
        backend="databricks",
        home=str(home),
        user="admin",
        data_source={"name": "databricks", "options": {"warehouse_id": "emulated"}},
    )


def test_a_wrong_host_is_a_clear_error(any_forge, monkeypatch):
    monkeypatch.setenv("DATABRICKS_HOST", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-x")
    for what, call in _calls(any_forge).items():
        with pytest.raises(
            ConfigError, match="cannot reach the Databricks workspace at DATABRICKS_HOST=http://127.0.0.1:9"
        ):
            call()
            pytest.fail(f"{what} reached a host where nothing listens")


def test_an_expired_or_unknown_token_says_to_check_it(any_forge, databricks_env, monkeypatch):
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-expired")
    for what, call in _calls(any_forge).items():
        with pytest.raises(ConfigError, match="DATABRICKS_TOKEN \\(expired or revoked\\?\\)"):
            call()
            pytest.fail(f"{what} accepted an unknown token")


def test_missing_credentials_and_warehouse(home, monkeypatch, databricks_env):
    import llmforge

    monkeypatch.delenv("DATABRICKS_TOKEN")
    f = llmforge.connect(backend="databricks", home=str(home), user="admin")
    with pytest.raises(ConfigError, match="DATABRICKS_TOKEN.*llmforge emulator"):
        assert f.table("main.rag.docs").exists
    monkeypatch.setenv("DATABRICKS_TOKEN", "tok-admin")
    with pytest.raises(ConfigError, match="warehouse_id"):
        f.table("main.rag.docs").read()
    with pytest.raises(ConfigError, match="warehouse_id"):
        f.data.set_row_filter("main.rag.docs", None)
