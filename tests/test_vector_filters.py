import json

import pyarrow as pa
import pytest

from llmforge.vector_filters import (
    FilterError,
    and_filters,
    canonical,
    mask,
    matches,
    parse_filter_string,
    parse_filters,
)

ROWS = pa.Table.from_pylist(
    [
        {"id": 1, "department": "engineering", "year": 2022, "title": "build system guide", "owner": "ann"},
        {"id": 2, "department": "hr", "year": 2024, "title": "vacation policy", "owner": "bob"},
        {"id": 3, "department": "all", "year": 2025, "title": "holiday calendar", "owner": "cy"},
        {"id": 4, "department": None, "year": 2023, "title": "untagged note", "owner": "dee"},
    ]
)


def ids(spec):
    return [i for i, keep in zip(ROWS.column("id").to_pylist(), mask(spec, ROWS), strict=True) if keep]


@pytest.mark.parametrize(
    "spec, expected",
    [
        (None, [1, 2, 3, 4]),
        ({"department": "hr"}, [2]),
        ({"department": ["engineering", "all"]}, [1, 3]),
        ({"department NOT": "hr"}, [1, 3]),  # NULL department fails closed
        ({"department NOT": ["hr", "all"]}, [1]),
        ({"year >=": 2024}, [2, 3]),
        ({"year <": 2024, "year >": 2022}, [4]),
        ({"year <=": 2022}, [1]),
        ({"title LIKE": "policy"}, [2]),  # token match
        ({"title LIKE": "pol"}, []),  # not a token
        ({"title LIKE": "%cal%"}, [3]),  # SQL pattern
        ({"department OR owner": ["hr", "ann"]}, [1, 2]),
        ({"department OR year >=": ["all", 2024]}, [2, 3]),
        ([{"department": ["hr", "all"]}, {"year <": 2025}], [2]),
        (json.dumps({"department": "all"}), [3]),
    ],
)
def test_dict_filters(spec, expected):
    assert ids(spec) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("department IN ('engineering', 'all')", [1, 3]),
        ("department = 'hr'", [2]),
        ("department NOT IN ('hr') AND year >= 2023", [3]),
        ("(department = 'hr' OR owner = 'ann') AND year > 2022", [2]),
        ("department != 'hr'", [1, 3]),
        ("title LIKE '%policy%'", [2]),
        ("owner = 'o''brien'", []),
    ],
)
def test_filter_string(text, expected):
    assert ids(text) == expected


def test_and_filters_narrows_and_never_widens():
    row_filter = {"department": ["engineering", "all"]}
    widen = {"department": ["hr", "engineering"]}
    combined = and_filters(widen, row_filter)
    assert combined == [widen, row_filter]  # still JSON for a remote endpoint
    assert ids(combined) == [1]
    assert ids(and_filters("department NOT IN ('x')", row_filter)) == [1, 3]
    assert ids(and_filters({"department OR owner": ["hr", "bob"]}, row_filter)) == []
    assert and_filters(None, row_filter) == row_filter
    assert and_filters(widen, None) == widen


def test_matches_one_row():
    assert matches({"department": ["hr"]}, {"department": "hr", "year": 1})
    assert not matches({"department": ["hr"]}, {"department": None})


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"department FOO": "x"}, "malformed filter key"),
        ({"department = ": "x"}, "malformed filter key"),
        ({"": "x"}, "empty column name"),
        ({"department": []}, "empty list"),
        ({"department": {"a": 1}}, "values must be"),
        ({"year <": [1, 2]}, "give one number"),
        ({"a OR b": [1, 2, 3]}, "one value per column"),
        ({}, "empty filter dict"),
        (42, "must be a dict"),
        ("department ==== 'x'", "filter string"),
        ("department IN ('a'", "expected"),
        ("department = 'a' extra", "unexpected"),
        ("{not json", "do not parse"),
    ],
)
def test_malformed_filters(spec, message):
    with pytest.raises(FilterError, match=message):
        parse_filters(spec)


def test_unknown_column_is_named():
    with pytest.raises(FilterError, match=r"\['salary'\].*not synced.*columns_to_sync"):
        parse_filters({"salary >": 10}, columns=["id", "department"], index_name="idx")


def test_value_of_wrong_type_is_named():
    with pytest.raises(FilterError, match="does not fit column 'year'"):
        mask({"year >": "soon"}, ROWS)


def test_canonical_distinguishes_filters():
    assert canonical({"department": ["hr"]}) != canonical({"department": ["all"]})
    assert canonical({"department": ["hr"]}) == canonical('{"department": ["hr"]}')
    assert parse_filter_string("a = 1").op == "="
