"""Backend selection from Python: argument, env var, config file, per-slot overrides."""

from __future__ import annotations

import pytest

import llmforge
from llmforge.errors import ConfigError


def slots(forge):
    return {s: forge.config.slot(s).name for s in ("data_source", "trainer", "index", "generator")}


def test_default_is_local_everywhere(home):
    forge = llmforge.connect(home=str(home))
    assert set(slots(forge).values()) == {"local"}
    assert forge.home == home.resolve() and home.is_dir()


def test_backend_argument_and_per_slot_override(home):
    forge = llmforge.connect(backend="databricks", home=str(home), index="local")
    assert slots(forge) == {
        "data_source": "databricks",
        "trainer": "databricks",
        "index": "local",
        "generator": "databricks",
    }
    assert type(forge.vector_search).__module__.startswith("llmforge_local")
    assert type(forge.trainer).__module__.startswith("llmforge_databricks")


def test_env_var_selects_backend(home, monkeypatch):
    monkeypatch.setenv("LLMFORGE_BACKEND", "databricks")
    assert slots(llmforge.connect(home=str(home)))["trainer"] == "databricks"
    # an explicit argument beats the environment
    assert slots(llmforge.connect("local", home=str(home)))["trainer"] == "local"


def test_config_file_selects_backend_and_overrides(tmp_path, monkeypatch):
    cfg = tmp_path / "llmforge.yaml"
    cfg.write_text("backend: databricks\nhome: h\ncomponents:\n  generator: local\n")
    monkeypatch.chdir(tmp_path)
    forge = llmforge.connect()
    assert slots(forge)["generator"] == "local" and slots(forge)["index"] == "databricks"
    assert forge.home == (tmp_path / "h").resolve()
    # keyword override beats the file
    assert slots(llmforge.connect(generator="databricks"))["generator"] == "databricks"


def test_unknown_slot_in_connect(home):
    with pytest.raises(ConfigError, match=r"unknown slot\(s\) \['indx'\].*allowed"):
        llmforge.connect(home=str(home), indx="local")


def test_components_are_built_once_per_forge(home):
    forge = llmforge.connect(home=str(home))
    assert forge.vector_search is forge.vector_search
