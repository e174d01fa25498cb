"""Row filters and masks rendered as Unity Catalog SQL for the Databricks backend."""

from __future__ import annotations

import pytest
from fixtures.data import DEPT_FILTER, SALARY_MASK

from llmforge.catalog.unity import column_mask_sql, row_filter_sql
from llmforge.errors import ConfigError

T = "main.knowledge.documents"


def test_department_filter_maps_to_group_membership():
    create, alter = row_filter_sql(T, DEPT_FILTER)
    assert create == (
        "CREATE OR REPLACE FUNCTION `main`.`knowledge`.`documents_row_filter`(`department` STRING) "
        "RETURNS BOOLEAN RETURN is_account_group_member('admins') OR `department` IN ('all') "
        "OR is_account_group_member(concat('dept_', `department`))"
    )
    assert alter == (
        "ALTER TABLE `main`.`knowledge`.`documents` SET ROW FILTER "
        "`main`.`knowledge`.`documents_row_filter` ON (`department`)"
    )


def test_other_filter_kinds_and_quoting():
    create, _ = row_filter_sql(T, {"type": "current_user", "column": "owner", "always_visible": ["o'brien"]})
    assert create.endswith("RETURN `owner` IN ('o\\'brien') OR `owner` = current_user()")
    create, _ = row_filter_sql(T, {"type": "group_membership", "column": "audience"})
    assert create.endswith("RETURN is_account_group_member(`audience`)")


def test_masks():
    create, alter = column_mask_sql(T, "salary", SALARY_MASK)
    assert create.endswith(
        "RETURNS STRING RETURN CASE WHEN is_account_group_member('hr') THEN `salary` "
        "ELSE CASE WHEN `salary` IS NULL THEN NULL ELSE '[REDACTED]' END END"
    )
    assert alter.endswith("ALTER COLUMN `salary` SET MASK `main`.`knowledge`.`documents_salary_mask`")
    assert column_mask_sql(T, "age", {"type": "null"}, "INT")[0].endswith(
        "RETURNS INT RETURN CAST(NULL AS INT)"
    )
    assert "sha2(CAST(`email` AS STRING), 256)" in column_mask_sql(T, "email", {"type": "hash"}, "STRING")[0]


def test_catalog_renders_a_tables_policies(catalog):
    catalog.create_catalog("main", owner="o")
    catalog.create_schema("main.knowledge", owner="o")
    catalog.register_table(T, owner="o")
    assert catalog.unity_catalog_sql(T) == []
    catalog.set_row_filter(T, DEPT_FILTER)
    catalog.set_column_mask(T, "salary", SALARY_MASK)
    sql = catalog.unity_catalog_sql(T, department_prefix="grp-")
    assert len(sql) == 4 and "concat('grp-', `department`)" in sql[0] and "SET MASK" in sql[3]


def test_bad_specs_are_rejected_here_too():
    with pytest.raises(ConfigError):
        row_filter_sql(T, {"type": "sql", "column": "x"})
    with pytest.raises(ConfigError):
        column_mask_sql("main.documents", "c", {"type": "null"})
