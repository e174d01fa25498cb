"""Loading principals from a YAML or CSV directory file, and through the Forge's config."""

from __future__ import annotations

import pytest

from llmforge.errors import ConfigError


def test_yaml_directory(catalog, tmp_path):
    path = tmp_path / "people.yaml"
    path.write_text("""
users:
  - {name: alice, groups: [admins], departments: [engineering]}
  - {name: bob, groups: hr, departments: "hr;finance"}
service_principals:
  - {name: etl-bot, groups: [pipelines]}
""")
    loaded = catalog.load_directory(path)
    assert [p.name for p in loaded] == ["alice", "bob", "etl-bot"]
    assert catalog.principal("bob").departments == {"hr", "finance"}
    assert catalog.principal("etl-bot").kind == "service_principal"
    assert "pipelines" in catalog.principal("etl-bot").groups


def test_csv_directory(catalog, tmp_path):
    path = tmp_path / "people.csv"
    path.write_text("name,kind,groups,departments\nalice,user,admins;engineers,engineering\ncarol,,,sales\n")
    catalog.load_directory(path)
    assert catalog.principal("alice").groups == {"admins", "engineers", "account users"}
    assert catalog.principal("carol").departments == {"sales"}


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("p.yaml", "users:\n  - {groups: [x]}\n", "needs a 'name'"),
        ("p.yaml", "people: []\n", "unknown top-level key"),
        ("p.yaml", "users:\n  - {name: a, role: x}\n", "unknown key"),
        ("p.yaml", "users:\n  - {name: a, kind: robot}\n", "kind 'robot'"),
        ("p.yaml", "users: [\n", "not valid YAML"),
        ("p.csv", "user,groups\na,b\n", "header"),
        ("p.txt", "a", "must be .yaml"),
    ],
)
def test_bad_directories_name_the_problem(catalog, tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        catalog.load_directory(path)
    assert catalog.principals() == []  # nothing half-loaded


def test_missing_directory(catalog, tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        catalog.load_directory(tmp_path / "nope.yaml")


def test_forge_loads_the_configured_directory(tmp_path):
    import llmforge

    (tmp_path / "people.yaml").write_text("users:\n  - {name: dana, departments: [sales]}\n")
    (tmp_path / "llmforge.yaml").write_text("home: home\nidentity: {directory: people.yaml}\n")
    forge = llmforge.connect(backend="local", config=str(tmp_path / "llmforge.yaml"))
    assert forge.catalog.principal("dana").departments == {"sales"}
