"""Turning what callers pass into Arrow tables, and Arrow into what they ask for."""

from __future__ import annotations

from typing import Any

from llmforge.errors import ConfigError, DataError

OUTPUTS = ("arrow", "pandas", "polars")


def to_arrow(data: Any):
    """A ``pa.Table`` from a pa.Table/RecordBatch/reader, pandas or polars frame, list of dicts
    or dict of columns."""
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    if isinstance(data, list):
        if not data:
            raise DataError("got an empty list of rows; pass a pa.Table or pa.Schema to describe the columns")
        return pa.Table.from_pylist(data)
    if isinstance(data, dict):
        return pa.table(data)
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        return data.to_arrow()
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise DataError(
        f"cannot write a {type(data).__name__}; pass a pyarrow Table, a pandas or polars "
        "DataFrame, a list of row dicts or a dict of columns"
    )


def conform(data, schema, table: str):
    """``data`` with ``schema``'s columns in its order and types; names what does not fit."""
    missing = [n for n in schema.names if n not in data.column_names]
    extra = [n for n in data.column_names if n not in schema.names]
    if missing or extra:
        raise DataError(
            f"data does not match table {table}: missing column(s) {missing}, unexpected "
            f"column(s) {extra}; table columns are {schema.names}. Use overwrite() to change "
            "the schema"
        )
    try:
        return data.select(schema.names).cast(schema)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise DataError(
            f"data for {table} does not cast to the table's types ({exc}); table schema: {schema}"
        ) from None


def check_key(data, key: list[str], table: str) -> None:
    """Primary-key columns exist, are never null and unique within ``data``."""
    import pyarrow.compute as pc

    for k in key:
        if k not in data.column_names:
            raise DataError(
                f"primary key column '{k}' is not in the data for {table}; columns: {data.column_names}"
            )
        if data.column(k).null_count:
            raise DataError(
                f"primary key column '{k}' has {data.column(k).null_count} null value(s) in "
                f"the data for {table}; every row needs a key"
            )
    if data.num_rows and data.select(key).group_by(key).aggregate([]).num_rows != data.num_rows:
        counts = data.group_by(key).aggregate([([], "count_all")])
        dup = counts.filter(pc.greater(counts.column("count_all"), 1)).slice(0, 3).to_pylist()
        raise DataError(
            f"duplicate primary key {key} value(s) in the data for {table}, e.g. {dup}; "
            "deduplicate first or use merge() to upsert"
        )


def check_output(as_: str) -> None:
    if as_ not in OUTPUTS:
        raise ConfigError(f"as_={as_!r} is not one of {list(OUTPUTS)}")


def convert(table, as_: str):
    check_output(as_)
    if as_ == "arrow":
        return table
    if as_ == "pandas":
        return table.to_pandas()
    if as_ == "polars":
        import polars as pl

        return pl.from_arrow(table)
