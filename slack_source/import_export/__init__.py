"""A Slack export ZIP as a dlt source: the same `slack` source, tables, keys and state as the API.

The source is named `slack`, like the API source, so dlt gives both one schema (the same tables
and column types) and one source state: what an import writes into
`state["channels"]`/`state["threads"]` (see `handover`) is what the daily run reads next.

Rows have the API path's shape: day files become Arrow pages with the columns and types
`arrow_pages.rows_to_table` gives the same messages (`ts` kept as Slack's string, `posted_at`
derived from it, nested fields as JSON text; parsed by DuckDB for speed, see `pages`),
the PII maps of `pii` apply, and `messages` is merged on (`channel_id`, `ts`) with the API's
write disposition, so a message imported and later re-read by the API is one row. Columns only
exports have (`replies: [{user, ts}]`; `user_profile` is declared by the API source already) are
declared JSON here: whatever shape a later API page gives them can never conflict with a type
inferred from the export.

Channel entries of an export (`members`, `pins`, no `is_private`) are reshaped to the
conversations.list fields the `channels` table has; users.json rows are users.list rows.
"""

import logging
import zipfile
from contextlib import closing
from itertools import islice
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import dlt
import pyarrow as pa
from dlt.common.typing import TSecretStrValue
from dlt.sources import DltResource

from .. import MESSAGES_WRITE_DISPOSITION
from ..arrow_pages import quiet_notices_by_design
from ..child_rows import child_resources
from ..conversations import DIRECT_TYPES, resolve_conversation_types
from ..pii import check_pii_mode, pseudonymize_messages, pseudonymize_users
from ..run_stats import RunStats
from ..settings import (
    CHANNEL_COLUMNS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_MAX_LOOKBACK_DAYS,
    MESSAGE_JSON_COLUMNS,
    USER_COLUMNS,
    check_lookback,
    message_columns,
)
from .archive import ExportLayout, SlackExportError, open_export, users
from .handover import ChannelPosition
from .pages import DayFileReader, batches, scrub_json_column

logger = logging.getLogger("dlt.slack")

EXPORT_ONLY_JSON_COLUMNS = ("replies",)
EXPORT_ONLY_COLUMNS: Dict[str, Any] = {
    name: {"data_type": "json"} for name in EXPORT_ONLY_JSON_COLUMNS
}
# Rows per item handed to dlt: each item becomes one parquet row group, and DuckDB loads a row
# group within its memory limit (64 MB in .dlt/config.toml) only when it is this small.
ITEM_ROWS = 10_000
# What the hand-over reads back from each page besides its `ts` (which `_unique` gives).
POSITION_COLUMNS = ("thread_ts", "reply_count", "subtype")
EXPORT_ONLY_CHANNEL_FIELDS = ("members", "pins")


def channel_row(entry: Dict[str, Any], kind: str) -> Dict[str, Any]:
    """An export's channel entry in the shape of a conversations.list channel. DMs and group
    DMs keep their `members` (the API's group DMs carry them too); a DM's entry does not say
    whose export it is, so its `user` (the counterpart) stays empty."""
    direct = kind in DIRECT_TYPES
    row = {
        k: v
        for k, v in entry.items()
        if k not in EXPORT_ONLY_CHANNEL_FIELDS or (direct and k == "members")
    }
    row.setdefault("is_channel", not direct)
    row.setdefault("is_group", False)
    row.setdefault("is_im", kind == "im")
    row.setdefault("is_mpim", kind == "mpim")
    row["is_private"] = kind != "public_channel"
    row.setdefault("name_normalized", entry.get("name"))
    if isinstance(entry.get("members"), list):
        row.setdefault("num_members", len(entry["members"]))
    return row


def direct_kinds(conversation_types: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """Which DM kinds of an export to load: those `conversation_types` names (checked)."""
    if not conversation_types:
        return ()
    return tuple(k for k in resolve_conversation_types(conversation_types) if k in DIRECT_TYPES)


@dlt.source(name="slack", section="slack", max_table_nesting=1)
def import_export_source(
    path: str,
    layout: Optional[Any] = None,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    max_lookback_days: float = DEFAULT_MAX_LOOKBACK_DAYS,
    pii_mode: str = "off",
    pii_salt: Optional[TSecretStrValue] = None,
    stats: Optional[Any] = None,
    append_into_empty: bool = False,
    child_tables: bool = True,
    conversation_types: Optional[List[str]] = None,
) -> Sequence[DltResource]:
    """Users, channels and messages of a Slack export ZIP at `path` (and, with `child_tables`,
    the `reactions` and `files` the messages carry, as the API source loads them).

    Args:
        layout: the result of `open_export(path)` when the caller validated it already.
        lookback_days: the daily run's lookback (`sources.slack.lookback_days`): which top-level
            `ts` the hand-over remembers for it.
        max_lookback_days: how far back the daily run may re-read (`sources.slack.
            max_lookback_days`): which threads the hand-over keeps marks for.
        pii_mode / pii_salt: as for the API source (`sources.slack.pii_mode`, `pii_salt`).
        stats: a `RunStats` collecting messages per channel and skipped folders.
        append_into_empty: the destination has no `messages` row yet (the caller checked): the
            rows are appended instead of merged. Same result, since an import's rows are unique
            (`_unique`), without writing every message twice (staging table, then merge).
        child_tables: `sources.slack.child_tables`, as for the API source.
        conversation_types: `sources.slack.conversation_types`: with `im` / `mpim` the export's
            DMs (dms.json) / group DMs (mpims.json) are loaded too; public and private channels
            always are (what the export holds is the admin's choice).
    """
    pii_mode = check_pii_mode(pii_mode, pii_salt)
    check_lookback(lookback_days, max_lookback_days)
    layout = layout or open_export(path, direct_kinds(conversation_types))
    run_stats: RunStats = stats if isinstance(stats, RunStats) else RunStats()
    for folder, why in layout.skipped.items():
        run_stats.skip_channel(folder, why)
    lookback_seconds = float(lookback_days) * 86400
    mark_seconds = max(lookback_seconds, float(max_lookback_days) * 86400)
    quiet_notices_by_design()
    json_columns = frozenset(MESSAGE_JSON_COLUMNS + EXPORT_ONLY_JSON_COLUMNS)

    @dlt.resource(name="users", primary_key="id", write_disposition="merge", columns=USER_COLUMNS)
    def users_resource() -> Iterator[List[Dict[str, Any]]]:
        with zipfile.ZipFile(layout.path) as archive:
            yield users(archive, layout)

    @dlt.resource(
        name="channels", primary_key="id", write_disposition="merge", columns=CHANNEL_COLUMNS
    )
    def channels_resource() -> Iterator[List[Dict[str, Any]]]:
        yield [channel_row(c.entry, c.kind) for c in layout.conversations]

    @dlt.resource(
        name="messages",
        primary_key=("channel_id", "ts"),
        write_disposition="append" if append_into_empty else MESSAGES_WRITE_DISPOSITION,
        columns=message_columns(append_into_empty=append_into_empty, extra=EXPORT_ONLY_COLUMNS),
    )
    def messages() -> Iterator[Any]:
        """Each channel's day files in batches, one Arrow page each (see `pages`); each
        channel's position is handed over to the daily run's state once all its files were
        read."""
        state = dlt.current.source_state()
        profile_map = pseudonymize_users(pii_mode, pii_salt)
        message_map = pseudonymize_messages(pii_mode, pii_salt)
        with zipfile.ZipFile(layout.path) as archive, DayFileReader(json_columns) as reader:
            work = [(c, list(batches(archive, c.days))) for c in layout.conversations]
            jobs = [(c.id, batch) for c, day_batches in work for batch in day_batches]
            # one stream of pages for all channels: parsing runs ahead across channels too
            with closing(reader.pages(archive, jobs)) as pages:
                for conversation, day_batches in work:
                    position = ChannelPosition(lookback_seconds, mark_seconds)
                    previous: set = set()
                    count = 0
                    for table in islice(pages, len(day_batches)):
                        if table is None:
                            continue  # a batch of empty days
                        table, stamps, previous = _unique(table, previous)
                        position.observe(stamps, *(_column(table, n) for n in POSITION_COLUMNS))
                        if pii_mode != "off":
                            table = scrub_json_column(table, "user_profile", profile_map)
                            table = scrub_json_column(table, "root", message_map)
                        count += table.num_rows
                        for offset in range(0, table.num_rows, ITEM_ROWS):
                            yield table.slice(offset, ITEM_ROWS)  # zero-copy
                    position.write(state, conversation.id)
                    run_stats.count_rows("messages_per_channel", conversation.id, count)
                    logger.info("Slack export #%s: %d messages", conversation.name, count)

    if pii_mode != "off":
        users_resource.add_map(pseudonymize_users(pii_mode, pii_salt))
    children = child_resources(messages, append_into_empty) if child_tables else []
    return users_resource, channels_resource, messages, *children


def _column(table: pa.Table, name: str) -> List[Any]:
    """A column's values as a list; all None when no message on the page has the field."""
    if name in table.column_names:
        return table.column(name).to_pylist()
    return [None] * table.num_rows


def _unique(table: pa.Table, previous: set) -> Tuple[pa.Table, List[str], set]:
    """The page without a `ts` seen twice (in it or in the channel's previous page), its `ts`
    values, and the page's set of them: staging rows are declared unique
    (`MESSAGES_WRITE_DISPOSITION`), so a repeat would be two rows."""
    stamps = table.column("ts").to_pylist()
    seen = set(stamps)
    if len(seen) == len(stamps) and previous.isdisjoint(seen):
        return table, stamps, seen
    keep, kept_stamps = [], []
    kept: set = set(previous)
    for ts in stamps:
        first = ts not in kept
        keep.append(first)
        if first:
            kept_stamps.append(ts)
        kept.add(ts)
    return table.filter(pa.array(keep)), kept_stamps, seen


__all__ = [
    "ExportLayout",
    "SlackExportError",
    "direct_kinds",
    "import_export_source",
    "open_export",
]
