"""A Slack export ZIP as a dlt source: the same `slack` source, tables, keys and state as the API.

The source is named `slack`, like the API source, so dlt gives both one schema (the same tables
and column types) and one source state: what an import writes into
`state["channels"]`/`state["threads"]` (see `handover`) is what the daily run reads next.

Rows are shaped by the API path's own code: `to_rows` adds `channel_id`, `rows_to_table` builds
the Arrow pages (`ts` kept as Slack's string, `posted_at` derived from it, nested fields as JSON
text), the PII maps of `pii` apply, and `messages` is merged on (`channel_id`, `ts`) with the
API's write disposition, so a message imported and later re-read by the API is one row. Columns
only exports have (`replies: [{user, ts}]`, `user_profile`) are declared JSON here: whatever
shape a later API page gives them can never conflict with a type inferred from the export.

Channel entries of an export (`members`, `pins`, no `is_private`) are reshaped to the
conversations.list fields the `channels` table has; users.json rows are users.list rows.
"""

import logging
import zipfile
from typing import Any, Dict, Iterator, List, Optional, Sequence

import dlt
from dlt.sources import DltResource

from . import MESSAGE_COLUMNS, MESSAGES_WRITE_DISPOSITION
from .arrow_pages import quiet_arrow_hint_notices, rows_to_table
from .export_archive import open_export, read_day, users
from .handover import ChannelPosition
from .message_rows import to_rows
from .pii import check_pii_mode, pseudonymize_messages, pseudonymize_users
from .run_stats import RunStats
from .settings import DEFAULT_LOOKBACK_DAYS, MESSAGE_JSON_COLUMNS

logger = logging.getLogger("dlt.slack")

EXPORT_ONLY_JSON_COLUMNS = ("replies",)
EXPORT_MESSAGE_COLUMNS: Dict[str, Any] = {
    **MESSAGE_COLUMNS,
    **{name: {"data_type": "json"} for name in EXPORT_ONLY_JSON_COLUMNS},
}
# Rows per item handed to dlt: bigger than the API path's pages (nothing waits on the network
# here), few enough that one item's dicts stay a few tens of MB.
EXPORT_ITEM_ROWS = 20_000
EXPORT_ONLY_CHANNEL_FIELDS = ("members", "pins")


def channel_row(entry: Dict[str, Any], is_private: bool) -> Dict[str, Any]:
    """An export's channel entry in the shape of a conversations.list channel."""
    row = {k: v for k, v in entry.items() if k not in EXPORT_ONLY_CHANNEL_FIELDS}
    row.setdefault("is_channel", True)
    row.setdefault("is_group", False)
    row.setdefault("is_im", False)
    row.setdefault("is_mpim", False)
    row["is_private"] = is_private
    row.setdefault("name_normalized", entry.get("name"))
    if isinstance(entry.get("members"), list):
        row.setdefault("num_members", len(entry["members"]))
    return row


@dlt.source(name="slack", section="slack", max_table_nesting=1)
def slack_export_source(
    path: str,
    layout: Optional[Any] = None,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    pii_mode: str = "off",
    pii_salt: Optional[str] = None,
    stats: Optional[Any] = None,
) -> Sequence[DltResource]:
    """Users, channels and messages of a Slack export ZIP at `path`.

    Args:
        layout: the result of `open_export(path)` when the caller validated it already.
        lookback_days: the daily run's lookback (`sources.slack.lookback_days`): which top-level
            `ts` and threads the hand-over remembers for it.
        pii_mode / pii_salt: as for the API source (`sources.slack.pii_mode`, `pii_salt`).
        stats: a `RunStats` collecting messages per channel and skipped folders.
    """
    if (pii_mode or "off").strip().lower() == "hash" and not pii_salt:
        pii_salt = dlt.secrets.get("sources.slack.pii_salt")
    pii_mode = check_pii_mode(pii_mode, pii_salt)
    layout = layout or open_export(path)
    run_stats: RunStats = stats if isinstance(stats, RunStats) else RunStats()
    for folder, why in layout.skipped.items():
        run_stats.skip_channel(folder, why)
    lookback_seconds = float(lookback_days) * 86400
    quiet_arrow_hint_notices()
    scrub = pseudonymize_messages(pii_mode, pii_salt)
    json_columns = frozenset(MESSAGE_JSON_COLUMNS + EXPORT_ONLY_JSON_COLUMNS)

    def page_table(rows: List[Dict[str, Any]]) -> Any:
        if pii_mode != "off":
            rows = [scrub(row) for row in rows]
        return rows_to_table(rows, json_columns)

    @dlt.resource(name="users", primary_key="id", write_disposition="merge")
    def users_resource() -> Iterator[List[Dict[str, Any]]]:
        with zipfile.ZipFile(layout.path) as archive:
            yield users(archive, layout)

    @dlt.resource(name="channels", primary_key="id", write_disposition="merge")
    def channels_resource() -> Iterator[List[Dict[str, Any]]]:
        yield [channel_row(c.entry, c.is_private) for c in layout.conversations]

    @dlt.resource(
        name="messages",
        primary_key=("channel_id", "ts"),
        write_disposition=MESSAGES_WRITE_DISPOSITION,
        columns=EXPORT_MESSAGE_COLUMNS,
    )
    def messages() -> Iterator[Any]:
        """Day files one at a time, in pages of `EXPORT_ITEM_ROWS`; each channel's position is
        handed over to the daily run's state once all its files were read."""
        state = dlt.current.source_state()
        rows: List[Dict[str, Any]] = []
        with zipfile.ZipFile(layout.path) as archive:
            for conversation in layout.conversations:
                position = ChannelPosition(lookback_seconds)
                previous: set = set()
                count = 0
                for member in conversation.days:
                    day = _unique(read_day(archive, member), previous)
                    previous = {m["ts"] for m in day}
                    to_rows(day, conversation.id)
                    position.observe(day)
                    count += len(day)
                    rows.extend(day)
                    if len(rows) >= EXPORT_ITEM_ROWS:
                        yield page_table(rows)
                        rows = []
                position.write(state, conversation.id)
                run_stats.count_rows("messages_per_channel", conversation.id, count)
                logger.info("Slack export #%s: %d messages", conversation.name, count)
        if rows:
            yield page_table(rows)

    if pii_mode != "off":
        users_resource.add_map(pseudonymize_users(pii_mode, pii_salt))
    return users_resource, channels_resource, messages


def _unique(day: List[Dict[str, Any]], previous: set) -> List[Dict[str, Any]]:
    """A day's messages without a `ts` seen twice (in the file or the day before): staging rows
    are declared unique (`MESSAGES_WRITE_DISPOSITION`), so a repeat would become two rows."""
    seen = set(previous)
    out = []
    for message in day:
        ts = message["ts"]
        if ts not in seen:
            seen.add(ts)
            out.append(message)
    return out
