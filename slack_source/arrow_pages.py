"""Pages of message rows as Arrow tables: dlt writes them to parquet as they are.

Handing dlt Python dicts costs two JSON round trips per row (extract writes JSON lines,
normalize reads, flattens and coerces each row again); an Arrow table skips both (figures:
tooling/bench/RESULTS.md). Each page becomes one table, column by column:
- `ts`-like ids stay strings, exactly as Slack sent them;
- `posted_at` is derived from `ts` without float rounding;
- nested values (`blocks`, `reactions`, `edited`, ...) become JSON text, declared `json`;
- a field whose values mix types on one page is kept as JSON text too, so nothing is lost.
"""

import importlib.abc
import logging
import sys
from itertools import chain
from typing import Any, Dict, List, Optional, Sequence

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from .message_rows import ts_micros


class _PandasNotForPyarrow(importlib.abc.MetaPathFinder):
    """Refuses `pandas` while pyarrow asks whether it is there (see `settle_pandas_probe`)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not needed to build Arrow pages", name=name)
        return None


def settle_pandas_probe() -> None:
    """Make pyarrow's "is pandas installed?" probe answer no, without pandas, once, now.

    The first `pa.array` of a list imports pandas (31-41 MB resident, ~0.5 s), only to ask whether
    the list is a pandas object; on whichever thread builds the first page, too, while dlt
    tests other resources' items against the half-imported `sys.modules["pandas"]` on its own
    thread ("partially initialized module 'pandas'", a failed extract). Probed here, on the
    importing thread, with the import refused, pyarrow settles on "no pandas" for its implicit
    checks; an explicit use (`Table.to_pandas()`) still imports pandas when it is called.
    Nothing is changed when pandas is imported already.
    """
    if "pandas" in sys.modules:
        return
    refuse = _PandasNotForPyarrow()
    sys.meta_path.insert(0, refuse)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(refuse)


settle_pandas_probe()

Row = Dict[str, Any]

TIMESTAMP_UTC = pa.timestamp("us", tz="UTC")
# dlt notes, by design of this source, noise: every page whose Arrow type differs from the
# column hint (JSON text declared `json` always does; one per page at INFO), and the
# `hard_delete` hint an append ignores (a load of channels with no rows yet appends after
# earlier loads merged: it writes no deletion row, so the hint has nothing to apply to).
NOTICES_BY_DESIGN = (
    "when merging arrow schema",
    'The "hard_delete" column hint is only applied when using the "merge" write disposition',
)
KEY_COLUMNS = ("channel_id", "ts")  # never null: the merge key


def _json_text(values: Sequence[Any]) -> pa.Array:
    return pa.array(
        [None if v is None else orjson.dumps(v).decode() for v in values], type=pa.string()
    )


def _column(values: List[Any], json_columns: frozenset, name: str) -> pa.Array:
    if name in json_columns:
        return _json_text(values)
    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, (dict, list)):
        return _json_text(values)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return _json_text(values)  # mixed types on one page: keep every value, as JSON


def rows_to_table(rows: List[Row], json_columns: frozenset) -> Optional[pa.Table]:
    """One Arrow table for a page of message rows (None for an empty page)."""
    if not rows:
        return None
    names = dict.fromkeys(chain.from_iterable(rows))  # every field, in order of first sight
    names.pop("posted_at", None)
    arrays = []
    fields = []
    for name in names:
        array = _column([row.get(name) for row in rows], json_columns, name)
        arrays.append(array)
        fields.append(pa.field(name, array.type, nullable=name not in KEY_COLUMNS))
    if "ts" in names:
        posted = pa.array([ts_micros(row["ts"]) for row in rows], pa.int64()).cast(TIMESTAMP_UTC)
        arrays.append(posted)
        fields.append(pa.field("posted_at", TIMESTAMP_UTC))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def rows_with_replies(table: Any, columns: Sequence[str]) -> List[Row]:
    """Rows of `columns` (those present) with a `reply_count` above 0, from an Arrow table or
    a list of them (what `concat_pages` returns when it cannot join); the rows of a list as is.

    Filtered in Arrow: the thread parents are a few in a hundred, and every dict made for the
    others only churns Python's allocator while the thread marks it keeps are being made."""
    if isinstance(table, pa.Table):
        count = table.column("reply_count") if "reply_count" in table.column_names else None
        if count is not None and pa.types.is_integer(count.type):
            table = table.filter(pc.greater(count, 0))
        present = [c for c in columns if c in table.column_names]
        return table.select(present).to_pylist()
    if table and isinstance(table[0], pa.Table):
        return [row for part in table for row in rows_with_replies(part, columns)]
    return list(table)


def num_rows(table: pa.Table) -> int:
    return table.num_rows


def concat_pages(pages: List[Any]) -> Any:
    """One table from several pages, each a table or a list of them (columns missing on one
    page become nulls); the tables as a list when their column types cannot be reconciled."""
    tables = [t for page in pages for t in (page if isinstance(page, list) else [page])]
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return tables


class _DropNoticesByDesign(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not any(notice in message for notice in NOTICES_BY_DESIGN)


def quiet_notices_by_design() -> None:
    """Install the filter on dlt's logger once."""
    dlt_logger = logging.getLogger("dlt")
    if not any(isinstance(f, _DropNoticesByDesign) for f in dlt_logger.filters):
        dlt_logger.addFilter(_DropNoticesByDesign())
