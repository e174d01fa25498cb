"""Unity Catalog through the emulator with the real databricks-sdk WorkspaceClient."""

from __future__ import annotations

import pytest


def test_catalogs_schemas_tables_list_and_get(emulator, rag_table):
    ws = emulator.workspace("alice")
    assert [c.name for c in ws.catalogs.list()] == ["main"]
    assert [s.full_name for s in ws.schemas.list(catalog_name="main")] == ["main.rag"]
    assert [t.full_name for t in ws.tables.list(catalog_name="main", schema_name="rag")] == [rag_table]
    info = ws.tables.get(rag_table)
    assert info.owner == "admin" and info.catalog_name == "main" and info.schema_name == "rag"
    assert [(c.name, c.type_name.value) for c in info.columns] == [
        ("id", "LONG"),
        ("text", "STRING"),
        ("dept", "STRING"),
    ]
    assert info.data_source_format.value == "DELTA" and info.created_at > 1_600_000_000_000


def test_a_caller_sees_only_what_it_holds_privileges_on(emulator, forge, rag_table):
    from databricks.sdk.errors import NotFound, PermissionDenied

    forge.catalog.revoke("SELECT", rag_table, "account users")
    ws = emulator.workspace("bob")
    assert [t.full_name for t in ws.tables.list(catalog_name="main", schema_name="rag")] == []
    with pytest.raises(PermissionDenied):
        ws.tables.get(rag_table)
    with pytest.raises(NotFound):
        ws.tables.get("main.rag.missing")


def test_permissions_get_and_patch_map_onto_catalog_grants(emulator, forge, rag_table):
    from databricks.sdk.service.catalog import PermissionsChange, Privilege

    admin = emulator.workspace("admin")
    before = admin.grants.get(securable_type="table", full_name=rag_table)
    assert [(a.principal, a.privileges) for a in before.privilege_assignments] == [
        ("account users", [Privilege.SELECT])
    ]
    admin.grants.update(
        securable_type="table",
        full_name=rag_table,
        changes=[
            PermissionsChange(principal="bob", add=[Privilege.MODIFY]),
            PermissionsChange(principal="account users", remove=[Privilege.SELECT]),
        ],
    )
    assert forge.catalog.has_privilege("bob", "MODIFY", rag_table)
    assert not forge.catalog.has_privilege("alice", "SELECT", rag_table)
    after = admin.grants.get(securable_type="table", full_name=rag_table)
    assert [(a.principal, a.privileges) for a in after.privilege_assignments] == [("bob", [Privilege.MODIFY])]
    catalog = admin.grants.get(securable_type="catalog", full_name="main")
    assert [(a.principal, a.privileges) for a in catalog.privilege_assignments] == [
        ("account users", [Privilege.USE_CATALOG])
    ]


def test_only_an_owner_changes_grants(emulator, forge, rag_table):
    from databricks.sdk.errors import PermissionDenied
    from databricks.sdk.service.catalog import PermissionsChange, Privilege

    with pytest.raises(PermissionDenied, match="not an owner"):
        emulator.workspace("alice").grants.update(
            securable_type="table",
            full_name=rag_table,
            changes=[PermissionsChange(principal="alice", add=[Privilege.MODIFY])],
        )
    assert not forge.catalog.has_privilege("alice", "MODIFY", rag_table)


def test_unknown_privilege_changes_nothing(emulator, forge, rag_table):
    r = emulator.request(
        "PATCH",
        f"/api/2.1/unity-catalog/permissions/table/{rag_table}",
        json={"changes": [{"principal": "bob", "add": ["MODIFY", "FLY"]}]},
    )
    assert r.status_code == 400 and "FLY" in r.json()["message"]
    assert not forge.catalog.has_privilege("bob", "MODIFY", rag_table)


def test_current_user_is_the_tokens_principal(emulator, rag_table):
    me = emulator.workspace("admin").current_user.me()
    assert me.user_name == "admin"
    assert {g.display for g in me.groups} == {"admins", "account users"}
    assert emulator.workspace("bob").current_user.me().user_name == "bob"
