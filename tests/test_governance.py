"""Entitlement from lineage and footprints, derived row filters, alias audiences (no training)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from llmforge.catalog import Catalog
from llmforge.errors import ConfigError, DataError
from llmforge.governance import (
    TrainingLineage,
    alias_audience,
    audience_principal,
    entitled,
    everyone,
    footprint,
    inherit_row_filter,
    policy_columns,
)

DOCS = "main.knowledge.documents"
PAIRS = "ml.train.pairs"
FILTER = {"type": "department_membership", "column": "department", "always_visible": ["all"]}


@pytest.fixture
def cat(tmp_path) -> Catalog:
    c = Catalog(tmp_path / "catalog.db")
    for name in ("main", "ml"):
        c.create_catalog(name, owner="admin")
    c.create_schema("main.knowledge", owner="admin")
    c.create_schema("ml.train", owner="admin")
    c.register_table(DOCS, owner="admin")
    c.register_table(PAIRS, owner="admin")
    c.record_lineage([f"table:{DOCS}@3"], f"table:{PAIRS}@0", job="prepare")
    for name in ("main", "ml"):
        c.grant("USE", name, "account users")
        c.grant("SELECT", name, "account users")
    c.add_principal("eve", departments=["engineering"])
    c.add_principal("both", departments=["engineering", "hr"])
    c.add_principal("admin", groups=["admins"])
    return c


def lineage(columns: dict | None, table: str = PAIRS) -> TrainingLineage:
    rows = {} if columns is None else {table: {"version": 0, "rows": 4, "columns": columns}}
    return TrainingLineage("m", "1", ((table, 0),), rows)


def test_entitled_compares_the_footprint_with_the_principals_row_filter(cat):
    cat.set_row_filter(PAIRS, {**FILTER, "exempt_groups": ["admins"]})
    eng = lineage({"department": ["engineering"]})
    mixed = lineage({"department": ["all", "engineering", "hr"]})
    assert entitled(cat, "eve", eng) and not entitled(cat, "eve", mixed)
    assert entitled(cat, "both", mixed)
    assert entitled(cat, "admin", mixed)  # exempt from the filter
    assert entitled(cat, everyone(), lineage({"department": ["all"]}))
    assert not entitled(cat, everyone(), eng)
    assert not entitled(cat, "eve", lineage(None))  # restricted table, no footprint: fail closed
    assert entitled(cat, "eve", TrainingLineage("m", "1", ()))  # registered by hand: no catalog rows


def test_an_upstream_filter_restricts_a_derived_table_that_has_none(cat):
    cat.set_row_filter(DOCS, FILTER)
    assert policy_columns(cat, PAIRS, 0) == ["department"]
    assert not entitled(cat, "eve", lineage({"department": ["engineering", "hr"]}))
    assert entitled(cat, "eve", lineage({"department": ["engineering"]}))
    assert not entitled(cat, "eve", lineage({}))  # the derived rows dropped the column: unknown


def test_select_is_needed_on_the_table_or_its_sources(cat):
    cat.revoke("SELECT", "ml", "account users")
    assert entitled(cat, "eve", lineage({}))  # SELECT on the documents it came from suffices
    cat.revoke("SELECT", "main", "account users")
    assert not entitled(cat, "eve", lineage({}))


def test_footprint_records_policy_column_values_of_the_rows_read(cat):
    cat.set_row_filter(DOCS, FILTER)
    rows = pa.table({"prompt": ["a", "b", "c"], "department": ["hr", "hr", None]})
    assert footprint(cat, PAIRS, 0, rows) == {
        PAIRS: {"version": 0, "rows": 3, "columns": {"department": ["hr"]}}
    }


def test_inherit_row_filter_follows_lineage_and_needs_the_column(cat):
    assert inherit_row_filter(cat, PAIRS, ["prompt", "department"]) is None  # no source filter
    cat.set_row_filter(DOCS, FILTER)
    with pytest.raises(DataError, match="lacks column 'department'"):
        inherit_row_filter(cat, PAIRS, ["prompt"])
    assert cat.row_filter(PAIRS) is None  # nothing half-set
    assert inherit_row_filter(cat, PAIRS, ["prompt", "department"])["column"] == "department"
    assert cat.row_filter(PAIRS)["always_visible"] == ["all"]
    cat.register_table("ml.train.other", owner="admin")
    cat.register_table("main.knowledge.people", owner="admin")
    cat.set_row_filter("main.knowledge.people", {"type": "current_user", "column": "owner"})
    cat.record_lineage(
        [f"table:{DOCS}@3", "table:main.knowledge.people@1"], "table:ml.train.other@0", job="x"
    )
    with pytest.raises(ConfigError, match="different row filters"):
        inherit_row_filter(cat, "ml.train.other", ["department", "owner"])


def test_alias_audiences_and_department_principals(cat):
    assert alias_audience("champion-engineering") == "engineering"
    assert alias_audience("champion") is None and alias_audience("challenger-hr") is None
    assert alias_audience("challenger-hr", "challenger") == "hr"
    p = audience_principal(cat, "department:hr")
    assert p.departments == frozenset({"hr"}) and "admins" not in p.groups
    assert audience_principal(cat, "eve").departments == frozenset({"engineering"})
