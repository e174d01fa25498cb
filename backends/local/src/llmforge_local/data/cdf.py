"""Change Data Feed reads: the rows an incremental consumer (vector index sync) applies."""

from __future__ import annotations

from typing import Any

from llmforge.catalog import policies
from llmforge.errors import DataError

CHANGE_TYPES = ("insert", "update_postimage", "delete")


def change_feed(dt: Any, full_name: str, start_version: int, end_version: int | None, expr: Any, masks: dict):
    """Changes of ``dt`` in ``[start_version, end_version]`` with the caller's filter and masks."""
    import pyarrow as pa
    import pyarrow.compute as pc

    schema = dt.to_pyarrow_dataset().schema
    if dt.metadata().configuration.get("delta.enableChangeDataFeed") != "true":
        raise DataError(
            f"{full_name} was not created with Change Data Feed; recreate it through "
            "llmforge or set delta.enableChangeDataFeed=true"
        )
    if start_version < 0:
        raise DataError(f"start_version must be >= 0, got {start_version}")
    end = dt.version() if end_version is None else min(end_version, dt.version())
    cdf = pa.RecordBatchReader.from_stream(dt.load_cdf(min(start_version, end), end)).read_all()
    if start_version > end:  # nothing new: an empty feed with the right columns
        cdf = cdf.slice(0, 0)
    # the feed comes back with view types (string_view); give it the table's own types
    cdf = cdf.cast(
        pa.schema(
            [
                schema.field(f.name)
                if f.name in schema.names
                else f.with_type(pa.string())
                if pa.types.is_string_view(f.type)
                else f
                for f in cdf.schema
            ]
        )
    )
    keep = pc.field("_change_type").isin(pa.array(CHANGE_TYPES))
    cdf = cdf.filter(keep if expr is None else keep & expr)
    cdf = policies.apply_masks(cdf, masks)
    # within one commit deletes go first: an overwrite deletes a key and inserts it again,
    # and a consumer applying rows in order must end with the insert
    rank = pc.if_else(pc.equal(cdf.column("_change_type"), "delete"), 0, 1)
    order = pc.sort_indices(
        cdf.append_column("_rank", rank), sort_keys=[("_commit_version", "ascending"), ("_rank", "ascending")]
    )
    return cdf.take(order)
