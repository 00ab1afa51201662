"""`reactions` and `files`: tables an analyst queries without JSON functions, taken from the
message payloads already fetched (no extra Slack call).

One row per (`channel_id`, `ts`, reaction `name`, `user`) and one per (`channel_id`, `ts`,
`file_id`). Rows follow their message: both tables are merged with `merge_key=(channel_id, ts)`
and delete-insert, so every message a load carries replaces all its child rows. A message read
without reactions (they were removed) or deleted (its deletion row) becomes one marker row
flagged `is_deleted` (the `hard_delete` column): the marker's key deletes the message's old rows
and the marker itself is never inserted. An append into the empty tables (a first backfill,
`append_into_empty`) writes no markers: nothing to delete.

`messages` keeps its `reactions`/`files` JSON columns; these tables sit beside it.
"""

from typing import Any, Callable, Dict, List, Optional

import orjson
import pyarrow as pa

from .arrow_pages import TIMESTAMP_UTC
from .message_rows import ts_micros

Row = Dict[str, Any]

CHILD_TABLES = ("reactions", "files")
# File fields copied to `files` (Slack's names; `id` becomes `file_id`). Links, not contents.
FILE_FIELDS: Dict[str, pa.DataType] = {
    "name": pa.string(),
    "title": pa.string(),
    "mimetype": pa.string(),
    "filetype": pa.string(),
    "size": pa.int64(),
    "user": pa.string(),
    "created": pa.int64(),
    "mode": pa.string(),
    "is_external": pa.bool_(),
    "url_private": pa.string(),
    "permalink": pa.string(),
}
_KEY_FIELDS = [
    pa.field("channel_id", pa.string(), nullable=False),
    pa.field("ts", pa.string(), nullable=False),
    pa.field("thread_ts", pa.string()),
    pa.field("posted_at", TIMESTAMP_UTC),
]
SCHEMAS: Dict[str, pa.Schema] = {
    "reactions": pa.schema(
        [*_KEY_FIELDS, pa.field("name", pa.string()), pa.field("user", pa.string())]
        + [pa.field("is_deleted", pa.bool_())]
    ),
    "files": pa.schema(
        [*_KEY_FIELDS, pa.field("file_id", pa.string())]
        + [pa.field(name, kind) for name, kind in FILE_FIELDS.items()]
        + [pa.field("is_deleted", pa.bool_())]
    ),
}
_DLT_TYPES = {
    pa.string(): "text",
    pa.int64(): "bigint",
    pa.bool_(): "bool",
    TIMESTAMP_UTC: "timestamp",
}


def child_columns(table: str, append_into_empty: bool) -> Dict[str, Any]:
    """dlt column hints of a child table; `hard_delete` only where a merge applies it."""
    columns: Dict[str, Any] = {}
    for field in SCHEMAS[table]:
        columns[field.name] = {"data_type": _DLT_TYPES[field.type], "nullable": field.nullable}
    if not append_into_empty:
        columns["is_deleted"]["hard_delete"] = True
    return columns


def child_write_disposition(append_into_empty: bool) -> Any:
    """Delete-insert on the message's key: all rows of a message a load carries are replaced."""
    if append_into_empty:
        return "append"
    return {"disposition": "merge", "strategy": "delete-insert"}


def _parsed(value: Any) -> List[Any]:
    """A JSON column's value: text on Arrow pages, already a list on BigQuery's row pages."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = orjson.loads(value)
    return value if isinstance(value, list) else []


def reaction_rows(message: Row) -> List[Row]:
    rows = []
    for reaction in _parsed(message.get("reactions")):
        for user in reaction.get("users") or ():
            rows.append({"name": reaction.get("name"), "user": user})
    return rows


def file_rows(message: Row) -> List[Row]:
    rows = []
    for item in _parsed(message.get("files")):
        if not isinstance(item, dict) or not item.get("id"):
            continue
        row = {"file_id": item["id"]}
        for name, kind in FILE_FIELDS.items():
            value = item.get(name)
            # a field of another type than Slack documents is left out, never a failed load
            row[name] = value if _fits(value, kind) else None
        rows.append(row)
    return rows


def _fits(value: Any, kind: pa.DataType) -> bool:
    if value is None:
        return True
    if kind == pa.bool_():
        return isinstance(value, bool)
    if kind == pa.int64():
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, str)


EXTRACTORS: Dict[str, Callable[[Row], List[Row]]] = {
    "reactions": reaction_rows,
    "files": file_rows,
}


def child_table(table: str, page: Any, markers: bool) -> Optional[pa.Table]:
    """The `table` rows of a page of messages as one Arrow table (None when there are none).

    `markers`: a message with no row in `table` (or a deletion row) gives one `is_deleted`
    marker, so a merge removes the rows it had before.

    Only the `table` values are read in Python; the keys are taken from the page's own
    columns (one `take`), without a dict per message."""
    if isinstance(page, list) and page and isinstance(page[0], pa.Table):
        parts = [child_table(table, part, markers) for part in page]
        tables = [part for part in parts if part is not None]
        return pa.concat_tables(tables) if tables else None
    if isinstance(page, pa.Table):
        names = page.column_names
        payloads = page.column(table).to_pylist() if table in names else [None] * page.num_rows
        deleted = page.column("is_deleted").to_pylist() if "is_deleted" in names else None
        return _child_rows_of(table, page, payloads, deleted, markers)
    # a page of dict rows (BigQuery's: `bigquery_layout.arrow_page_as_rows`)
    keys = pa.table(
        {name: pa.array([row.get(name) for row in page], pa.string()) for name in KEY_FIELDS}
    )
    payloads = [row.get(table) for row in page]
    deleted = [row.get("is_deleted") for row in page]
    return _child_rows_of(table, keys, payloads, deleted, markers)


KEY_FIELDS = ("channel_id", "ts", "thread_ts")  # taken from the page as they are


def _child_rows_of(
    table: str,
    keys: pa.Table,
    payloads: List[Any],
    deleted: Optional[List[Any]],
    markers: bool,
) -> Optional[pa.Table]:
    """The `table` rows of the messages whose values are `payloads`, keyed by the same rows
    of `keys` (`KEY_FIELDS`, and `posted_at` when the page has it)."""
    extract = EXTRACTORS[table]
    source: List[int] = []  # the page row of each output row
    rows: List[Row] = []
    for i, payload in enumerate(payloads):
        found = [] if payload is None or (deleted and deleted[i]) else extract({table: payload})
        if found:
            source.extend([i] * len(found))
            rows.extend(found)
        elif markers:
            source.append(i)
            rows.append(_MARKER)
    if not rows:
        return None
    indices = pa.array(source, pa.int64())
    schema = SCHEMAS[table]
    arrays: List[pa.Array] = []
    for field in schema:
        if field.name in KEY_FIELDS:
            arrays.append(_key_column(keys, field, indices))
        elif field.name == "posted_at":
            arrays.append(_posted_at(keys, indices))
        elif field.name == "is_deleted":
            arrays.append(pa.array([row is _MARKER for row in rows], pa.bool_()))
        else:
            arrays.append(pa.array([row.get(field.name) for row in rows], field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


_MARKER: Row = {}  # a marker row: its message's key and `is_deleted`, nothing else


def _key_column(page: pa.Table, field: pa.Field, indices: pa.Array) -> pa.Array:
    if field.name not in page.column_names:  # no thread on the page
        return pa.nulls(len(indices), field.type)
    return page.column(field.name).take(indices).combine_chunks().cast(field.type)


def _posted_at(page: pa.Table, indices: pa.Array) -> pa.Array:
    if "posted_at" in page.column_names and page.schema.field("posted_at").type == TIMESTAMP_UTC:
        return page.column("posted_at").take(indices).combine_chunks()
    ts = page.column("ts").take(indices).to_pylist()
    return pa.array([ts_micros(value) for value in ts], pa.int64()).cast(TIMESTAMP_UTC)


def child_resources(messages: Any, append_into_empty: bool) -> List[Any]:
    """The `reactions` and `files` transformers of a `messages` resource (API or export): dlt
    evaluates `messages` once and hands each page to both."""
    import dlt

    def make(table: str) -> Any:
        @dlt.transformer(
            name=table,
            data_from=messages,
            merge_key=("channel_id", "ts"),
            write_disposition=child_write_disposition(append_into_empty),
            columns=child_columns(table, append_into_empty),
        )
        def rows(page: Any) -> Any:
            return child_table(table, page, markers=not append_into_empty)

        return rows

    return [make(table) for table in CHILD_TABLES]


def history_resources(source: Any) -> List[str]:
    """`messages` and the child tables the source has (`child_tables` on or off)."""
    return [name for name in ("messages", *CHILD_TABLES) if name in source.resources]
