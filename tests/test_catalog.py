"""The embedded catalog: principals, names, grants and their inheritance, SHOW GRANTS, policies."""

from __future__ import annotations

import pyarrow as pa
import pytest
from fixtures.data import DEPT_FILTER, SALARY_MASK

from llmforge.catalog import SYSTEM, Catalog
from llmforge.errors import AlreadyExistsError, ConfigError, NotFoundError, PermissionDeniedError


@pytest.fixture
def tree(catalog):
    catalog.add_principal("alice", groups=["engineers"], departments=["engineering"])
    catalog.add_principal("bob", groups=["hr"], departments=["hr"])
    catalog.create_catalog("main", owner="owner")
    catalog.create_schema("main.knowledge", owner="owner")
    catalog.register_table("main.knowledge.documents", owner="owner", primary_key="document_id")
    catalog.register_table("main.knowledge.other", owner="owner")
    return catalog


def test_principals_have_groups_departments_and_the_implicit_group(catalog):
    p = catalog.add_principal("alice", groups=["engineers"], departments=["engineering"])
    assert p.groups == {"engineers", "account users"}
    assert p.departments == {"engineering"}
    catalog.add_principal("alice", groups=["admins"])  # replaces, not merges
    assert catalog.principal("alice").groups == {"admins", "account users"}
    assert catalog.principal("nobody").groups == {"account users"}
    assert catalog.principal("nobody").departments == frozenset()


def test_reserved_and_bad_principal_names_are_rejected(catalog):
    for bad in ("", SYSTEM, "account users"):
        with pytest.raises(ConfigError):
            catalog.add_principal(bad)
    with pytest.raises(ConfigError, match="lists of names"):
        catalog.add_principal("x", groups="hr")


@pytest.mark.parametrize("name", ["main", "main.k", "a.b.c.d", "main.bad-name.t", "main..t", "1x.s.t"])
def test_table_names_are_validated(catalog, name):
    with pytest.raises(ConfigError):
        catalog.register_table(name, owner="o")


def test_creating_needs_the_parent_and_a_free_name(catalog):
    with pytest.raises(NotFoundError, match="create_catalog"):
        catalog.create_schema("main.knowledge", owner="o")
    catalog.create_catalog("main", owner="o")
    with pytest.raises(AlreadyExistsError):
        catalog.create_catalog("main", owner="o")
    assert catalog.create_catalog("main", owner="o", if_not_exists=True)["owner"] == "o"


def test_select_needs_use_on_catalog_and_schema(tree):
    with pytest.raises(PermissionDeniedError, match=r"lacks USE on catalog 'main'.*GRANT USE CATALOG"):
        tree.check("alice", "SELECT", "main.knowledge.documents")
    tree.grant("USE", "main", "alice")
    with pytest.raises(
        PermissionDeniedError, match=r"lacks SELECT on table 'main.knowledge.documents'.*owner 'owner'"
    ):
        tree.check("alice", "SELECT", "main.knowledge.documents")
    tree.grant("SELECT", "main.knowledge.documents", "alice")
    tree.check("alice", "SELECT", "main.knowledge.documents")
    with pytest.raises(PermissionDeniedError, match="lacks SELECT on table 'main.knowledge.other'"):
        tree.check("alice", "SELECT", "main.knowledge.other")
    with pytest.raises(PermissionDeniedError, match="lacks MODIFY"):
        tree.check("alice", "MODIFY", "main.knowledge.documents")


def test_grants_inherit_downward_and_reach_group_members(tree):
    tree.grant("USE CATALOG", "main", "engineers")
    tree.grant("SELECT", "main.knowledge", "engineers")
    tree.check("alice", "SELECT", "main.knowledge.documents")
    tree.check("alice", "SELECT", "main.knowledge.other")
    with pytest.raises(PermissionDeniedError):
        tree.check("bob", "SELECT", "main.knowledge.documents")
    tree.revoke("SELECT", "main.knowledge", "engineers")
    with pytest.raises(PermissionDeniedError):
        tree.check("alice", "SELECT", "main.knowledge.documents")


def test_owners_of_an_ancestor_hold_everything_and_system_bypasses(tree):
    tree.check("owner", "MODIFY", "main.knowledge.documents")
    tree.check(SYSTEM, "SELECT", "main.knowledge.documents")
    tree.grant("OWNER", "main.knowledge", "hr")
    with pytest.raises(PermissionDeniedError, match="USE on catalog 'main'"):
        tree.check("bob", "MODIFY", "main.knowledge.other")  # as in Unity Catalog: USE CATALOG still needed
    tree.grant("USE", "main", "hr")
    tree.check("bob", "MODIFY", "main.knowledge.other")
    assert tree.has_privilege("bob", "OWNER", "main.knowledge.documents")
    assert not tree.has_privilege("alice", "USE", "main")


def test_all_privileges_expands_and_unknown_privileges_fail(tree):
    tree.grant("ALL PRIVILEGES", "main", "alice")
    tree.check("alice", "MODIFY", "main.knowledge.documents")
    assert not tree.has_privilege("alice", "OWNER", "main.knowledge.documents")
    with pytest.raises(ConfigError, match="unknown privilege 'WRITE'"):
        tree.grant("WRITE", "main", "alice")
    with pytest.raises(NotFoundError, match="does not exist"):
        tree.grant("SELECT", "main.knowledge.nope", "alice")


def test_show_grants_lists_direct_inherited_and_owner_rows(tree):
    tree.grant("USE", "main", "engineers")
    tree.grant("SELECT", "main.knowledge", "alice")
    tree.grant("MODIFY", "main.knowledge.documents", "bob")
    rows = tree.show_grants("main.knowledge.documents")
    got = {(r["principal"], r["privilege"], r["object_name"], r["inherited"]) for r in rows}
    assert got == {
        ("owner", "OWNER", "main", True),
        ("owner", "OWNER", "main.knowledge", True),
        ("owner", "OWNER", "main.knowledge.documents", False),
        ("engineers", "USE", "main", True),
        ("alice", "SELECT", "main.knowledge", True),
        ("bob", "MODIFY", "main.knowledge.documents", False),
    }
    assert [r["object_name"] for r in rows][0] == "main"  # top of the tree first
    assert {r["privilege"] for r in tree.show_grants("main.knowledge.documents", principal="alice")} == {
        "SELECT"
    }
    assert {r["object_name"] for r in tree.show_grants("main")} == {"main"}


def test_row_filter_resolves_per_principal(tree):
    tree.set_row_filter("main.knowledge.documents", DEPT_FILTER)
    tree.add_principal("root", groups=["admins"])
    assert tree.row_filter_for("main.knowledge.documents", "alice") == {"department": ["all", "engineering"]}
    assert tree.row_filter_for("main.knowledge.documents", "stranger") == {"department": ["all"]}
    assert tree.row_filter_for("main.knowledge.documents", "root") is None
    assert tree.row_filter_for("main.knowledge.documents", SYSTEM) is None
    assert tree.row_filter_for("main.knowledge.other", "alice") is None
    tree.set_row_filter("main.knowledge.documents", None)
    assert tree.row_filter_for("main.knowledge.documents", "alice") is None


def test_other_filter_kinds(tree):
    tree.set_row_filter("main.knowledge.other", {"type": "current_user", "column": "owner"})
    assert tree.row_filter_for("main.knowledge.other", "alice") == {"owner": ["alice"]}
    tree.set_row_filter(
        "main.knowledge.other",
        {"type": "group_membership", "column": "audience", "always_visible": ["everyone"]},
    )
    assert tree.row_filter_for("main.knowledge.other", "alice") == {"audience": ["engineers", "everyone"]}


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"type": "sql", "column": "x"}, "not one of"),
        ({"type": "department_membership"}, "needs 'column'"),
        ({"type": "department_membership", "column": "d", "exempt_groups": "admins"}, "list of strings"),
        ({"type": "department_membership", "column": "d", "lambda": "x"}, "unknown row filter key"),
    ],
)
def test_bad_row_filters_are_rejected(tree, spec, message):
    with pytest.raises(ConfigError, match=message):
        tree.set_row_filter("main.knowledge.documents", spec)


def test_bad_masks_are_rejected(tree):
    with pytest.raises(ConfigError, match="not one of"):
        tree.set_column_mask("main.knowledge.documents", "salary", {"type": "encrypt"})
    with pytest.raises(ConfigError, match="'redact' masks only"):
        tree.set_column_mask("main.knowledge.documents", "salary", {"type": "null", "replacement": "x"})


def test_apply_policies_filters_rows_and_masks_columns(tree):
    tree.set_row_filter("main.knowledge.documents", DEPT_FILTER)
    tree.set_column_mask("main.knowledge.documents", "salary", SALARY_MASK)
    tree.set_column_mask("main.knowledge.documents", "email", {"type": "hash"})
    tree.set_column_mask("main.knowledge.documents", "age", {"type": "null", "except_groups": ["hr"]})
    data = pa.table(
        {
            "department": ["engineering", "hr", "all"],
            "salary": ["1", "2", None],
            "email": ["a@x", "b@x", "c@x"],
            "age": [30, 40, 50],
        }
    )
    alice = tree.apply_policies("main.knowledge.documents", "alice", data).to_pydict()
    assert alice["department"] == ["engineering", "all"]
    assert alice["salary"] == ["[REDACTED]", None]
    assert alice["age"] == [None, None]
    assert len(alice["email"][0]) == 64 and "a@x" not in alice["email"]
    bob = tree.apply_policies("main.knowledge.documents", "bob", data).to_pydict()
    assert bob["department"] == ["hr", "all"] and bob["salary"] == ["2", None] and bob["age"] == [40, 50]
    assert bob["email"][0] != "b@x"  # hash has no exemption here
    everything = tree.apply_policies("main.knowledge.documents", SYSTEM, data)
    assert everything.equals(data)


def test_masks_for_drops_exempted_masks(tree):
    tree.set_column_mask("main.knowledge.documents", "salary", SALARY_MASK)
    assert set(tree.masks_for("main.knowledge.documents", "alice")) == {"salary"}
    assert tree.masks_for("main.knowledge.documents", "bob") == {}
    tree.set_column_mask("main.knowledge.documents", "salary", None)
    assert tree.masks_for("main.knowledge.documents", "alice") == {}


def test_policies_persist_across_catalog_instances(tree):
    tree.set_row_filter("main.knowledge.documents", DEPT_FILTER)
    again = Catalog(tree.path)
    assert again.row_filter("main.knowledge.documents")["exempt_groups"] == ["admins"]
    assert again.principal("alice").departments == {"engineering"}


def test_drop_removes_children_grants_and_policies(tree):
    tree.grant("SELECT", "main.knowledge.documents", "alice")
    tree.set_row_filter("main.knowledge.documents", DEPT_FILTER)
    tree.drop("main.knowledge")
    assert tree.list("table") == [] and tree.list("schema") == []
    assert tree.exists("main")
    tree.create_schema("main.knowledge", owner="o")
    tree.register_table("main.knowledge.documents", owner="o")
    assert tree.row_filter("main.knowledge.documents") is None
    assert tree.show_grants("main.knowledge.documents", principal="alice") == []
