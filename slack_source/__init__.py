"""The `slack` dlt source: users, channels, channel history and thread replies.

Tables (dataset `slack_data` by default):
- `users`, `channels`: one row per `id`, merged.
- `messages`: one row per (`channel_id`, `ts`) for top-level messages, thread replies and
  broadcasts alike; `ts` is Slack's string, unchanged; `posted_at` is the timestamp derived from it.
  Nested fields (`blocks`, `reactions`, `files`, `edited`, ...) are JSON columns.
"""

import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, Iterator, List, Optional, Sequence

import dlt
from dlt.common.configuration.inject import with_config
from dlt.sources import DltResource

from .arrow_pages import concat_pages, quiet_arrow_hint_notices, rows_to_table, table_rows
from .channels import list_channels, select_channels
from .client import RETRYABLE, SlackClient
from .errors import (
    SlackApiError,
    SlackAuthError,
    SlackChannelError,
    SlackConfigError,
    SlackError,
    SlackScopeError,
    SlackTransientError,
)
from .history import ChannelHistoryReader, plan_window
from .message_rows import datetime_to_ts
from .pii import check_pii_mode, pseudonymize_messages, pseudonymize_users
from .preflight import SlackAccess, check_access, needed_scopes, require_access
from .run_stats import RunStats
from .settings import (
    CHANNEL_JSON_COLUMNS,
    DEFAULT_API_BASE_URL,
    DEFAULT_INITIAL_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_MAX_LOOKBACK_DAYS,
    ITEM_MAX_WAIT_S,
    ITEM_ROWS,
    MESSAGE_JSON_COLUMNS,
    NON_MARKETPLACE_ALLOWANCES,
    NON_MARKETPLACE_PAGE_SIZE,
    TIER_ALLOWANCES,
)
from .threads import prune_threads, refresh_threads

__all__ = [
    "RETRYABLE",
    "slack_source",
    "batched_rows",
    "make_client",
    "list_channels",
    "select_channels",
    "RunStats",
    "SlackAccess",
    "check_access",
    "needed_scopes",
    "require_access",
    "SlackClient",
    "SlackError",
    "SlackApiError",
    "SlackAuthError",
    "SlackScopeError",
    "SlackChannelError",
    "SlackConfigError",
    "SlackTransientError",
]

logger = logging.getLogger("dlt.slack")

MESSAGE_COLUMNS: Dict[str, Any] = {
    "channel_id": {"data_type": "text", "nullable": False},
    "ts": {"data_type": "text", "nullable": False},
    "thread_ts": {"data_type": "text"},
    "latest_reply": {"data_type": "text"},
    "posted_at": {"data_type": "timestamp"},
    "user": {"data_type": "text"},
    "text": {"data_type": "text"},
    "subtype": {"data_type": "text"},
    "reply_count": {"data_type": "bigint"},
    "is_deleted": {"data_type": "bool", "hard_delete": True},
    **{name: {"data_type": "json"} for name in MESSAGE_JSON_COLUMNS},
}

# Merged on (channel_id, ts), with the staging rows declared unique: the source emits every
# message once per load (history pages do not overlap, replies skip their parent and the
# broadcasts history already returned; tests assert it). dlt's own dedup is a window function
# over the whole staging table: 3-4x the load time and, in DuckDB, memory that grows with the
# rows of one load (out of memory at 2.5 M rows with a 128 MB limit). See bench/RESULTS.md.
MESSAGES_WRITE_DISPOSITION: Dict[str, Any] = {
    "disposition": "merge",
    "strategy": "delete-insert",
    "deduplicated": True,
}

# What thread tracking reads back from a history page (see `threads.threads_to_refresh`).
THREAD_PARENT_COLUMNS = (
    "channel_id",
    "ts",
    "thread_ts",
    "latest_reply",
    "reply_count",
    "is_deleted",
)


@dlt.source(name="slack", max_table_nesting=1)
def slack_source(
    access_token: str = dlt.secrets.value,
    api_base_url: str = DEFAULT_API_BASE_URL,
    channels: Optional[List[str]] = None,
    include_private: bool = False,
    start_date: Optional[datetime] = None,
    end_date: Optional[datetime] = None,
    initial_start_date: Optional[datetime] = None,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    max_lookback_days: float = DEFAULT_MAX_LOOKBACK_DAYS,
    join_public_channels: bool = False,
    rate_limit_profile: str = "tiers",
    rate_limit_minute_seconds: float = 60.0,
    max_attempts: int = 8,
    channel_list: Optional[List[Dict[str, Any]]] = None,
    stats: Optional[Any] = None,
    pii_mode: str = "off",
    pii_salt: Optional[str] = None,
) -> Sequence[DltResource]:
    """Slack workspace data.

    Args:
        channels: names (`general`, `#general`) or ids to read; None reads every visible channel.
        include_private: also list private channels (needs groups:read / groups:history).
        start_date / end_date: an explicit window `[start, end)` for a backfill; without them each
            channel continues from its state, re-reading at least the last `lookback_days` and
            the rest of the page that reaches them, up to `max_lookback_days`.
        initial_start_date: where a channel with no state starts (default one day back).
        join_public_channels: join public channels the bot is not in instead of skipping them.
        rate_limit_profile: `tiers` (internal/Marketplace app), `non_marketplace` (Slack's 2025
            limits: 1 history/replies call a minute, 15 a page) or `off`.
        rate_limit_minute_seconds: length of Slack's rate window; shorter only for the emulator.
        channel_list: channels already listed by the caller (saves a conversations.list call).
        stats: a `RunStats` that collects calls, 429s and skipped channels for the run summary.
        pii_mode: `off`, `hash` (HMAC-SHA256 with the secret `sources.slack.pii_salt`) or `drop`
            for users' names/emails and messages' `user_profile` (see `slack_source.pii`).
    """
    # PII (issue "BigQuery for real"): checked before any request is sent.
    if (pii_mode or "off").strip().lower() == "hash" and not pii_salt:
        pii_salt = dlt.secrets.get("sources.slack.pii_salt")
    pii_mode = check_pii_mode(pii_mode, pii_salt)
    run_stats: RunStats = stats if isinstance(stats, RunStats) else RunStats()
    client = make_client(
        access_token,
        api_base_url,
        rate_limit_profile=rate_limit_profile,
        rate_limit_minute_seconds=rate_limit_minute_seconds,
        max_attempts=max_attempts,
        stats=run_stats,
    )
    lookback_seconds = float(lookback_days) * 86400
    max_lookback_seconds = float(max_lookback_days) * 86400
    quiet_arrow_hint_notices()
    scrub = pseudonymize_messages(pii_mode, pii_salt)
    json_columns = frozenset(MESSAGE_JSON_COLUMNS)

    def page_table(rows: List[Dict[str, Any]]) -> Any:
        """Rows as one Arrow table, PII applied first (see `arrow_pages` for why Arrow)."""
        if pii_mode != "off":
            rows = [scrub(row) for row in rows]
        return rows_to_table(rows, json_columns)

    start_ts = datetime_to_ts(start_date) if start_date else None
    end_ts = datetime_to_ts(end_date) if end_date else None
    listed: Dict[str, List[Dict[str, Any]]] = {}

    def all_channels() -> List[Dict[str, Any]]:
        if "all" not in listed:
            listed["all"] = (
                list(channel_list)
                if channel_list is not None
                else list_channels(client, include_private)
            )
        return listed["all"]

    @dlt.resource(name="users", primary_key="id", write_disposition="merge")
    def users() -> Iterator[List[Dict[str, Any]]]:
        yield from client.pages("users.list", "members")

    @dlt.resource(
        name="channels",
        primary_key="id",
        write_disposition="merge",
        columns={name: {"data_type": "json"} for name in CHANNEL_JSON_COLUMNS},
    )
    def channels_resource() -> Iterator[List[Dict[str, Any]]]:
        yield all_channels()

    @dlt.resource(name="channel_history", selected=False, parallelized=True)
    def channel_history() -> Iterator[Any]:
        """History pages of each channel (plus deletion rows); `messages` adds the replies."""
        state = dlt.current.source_state()
        channel_states = state.setdefault("channels", {})
        thread_state = state.setdefault("threads", {})
        initial = initial_start_date or datetime.now(timezone.utc) - timedelta(
            days=DEFAULT_INITIAL_DAYS
        )
        initial_ts = datetime_to_ts(initial)
        for channel in select_channels(all_channels(), channels):
            channel_state = channel_states.setdefault(channel["id"], {})
            window = plan_window(
                channel_state, start_ts, end_ts, initial_ts, lookback_seconds, max_lookback_seconds
            )
            reader = ChannelHistoryReader(channel["id"], window, channel_state, lookback_seconds)
            prune_threads(thread_state, channel["id"], window.oldest)
            history = _history_pages(client, channel, window, join_public_channels, run_stats)
            if history is None:
                continue
            try:
                for rows in batched_rows(reader.pages(history), ITEM_ROWS, ITEM_MAX_WAIT_S):
                    yield page_table(rows)
            except RETRYABLE as error:
                # Retries exhausted for this channel: keep the others, leave its state as it
                # was so the next run re-reads the same window (merge keeps rows unique).
                reason = getattr(error, "reason", None) or type(error).__name__
                run_stats.fail_channel(channel.get("name", channel["id"]), reason)
                logger.error("Slack #%s failed: %s", channel.get("name", channel["id"]), reason)
                continue
            deletions = reader.finish()
            if deletions:
                yield page_table(deletions)
            run_stats.count_rows("messages_per_channel", channel["id"], reader.rows)
            run_stats.count_rows("deleted_per_channel", channel["id"], len(deletions))
            logger.info(
                "Slack #%s: %d messages read, %d deletions",
                channel.get("name", channel["id"]),
                reader.rows,
                len(deletions),
            )

    @dlt.transformer(
        name="messages",
        data_from=channel_history,
        primary_key=("channel_id", "ts"),
        write_disposition=MESSAGES_WRITE_DISPOSITION,
        columns=MESSAGE_COLUMNS,
        parallelized=True,
    )
    def messages(page: Any) -> Any:
        """A history page and the replies of its changed threads, written as one item (dlt's
        cost per item is a few ms: one item per page instead of two)."""
        thread_state = dlt.current.source_state().setdefault("threads", {})
        rows = table_rows(page, THREAD_PARENT_COLUMNS)
        replies = refresh_threads(client, rows, thread_state, end_ts, run_stats)
        return concat_pages([page, page_table(replies)]) if replies else page

    if pii_mode != "off":  # PII (issue "BigQuery for real"); messages: in `page_table`
        users.add_map(pseudonymize_users(pii_mode, pii_salt))
    return users, channels_resource, channel_history, messages


@with_config(sections=("sources", "slack"))
def make_client(
    access_token: str = dlt.secrets.value,
    api_base_url: str = DEFAULT_API_BASE_URL,
    *,
    rate_limit_profile: str = "tiers",
    rate_limit_minute_seconds: float = 60.0,
    max_attempts: int = 8,
    stats: Optional[RunStats] = None,
) -> SlackClient:
    """A client paced for the app's rate-limit profile; unset arguments come from
    `sources.slack.*` config (env `SOURCES__SLACK__*`)."""
    profiles = {"tiers": TIER_ALLOWANCES, "non_marketplace": NON_MARKETPLACE_ALLOWANCES, "off": {}}
    if rate_limit_profile not in profiles:
        raise SlackConfigError(
            f"Unknown rate_limit_profile '{rate_limit_profile}': use one of {', '.join(profiles)}"
        )
    page_sizes = None
    if rate_limit_profile == "non_marketplace":
        page_sizes = {
            "conversations.history": NON_MARKETPLACE_PAGE_SIZE,
            "conversations.replies": NON_MARKETPLACE_PAGE_SIZE,
        }
    return SlackClient(
        access_token,
        api_base_url,
        allowances=profiles[rate_limit_profile],
        minute_seconds=rate_limit_minute_seconds,
        page_sizes=page_sizes,
        max_attempts=max_attempts,
        stats=stats,
    )


def _history_pages(
    client: SlackClient,
    channel: Dict[str, Any],
    window: Any,
    join_public_channels: bool,
    stats: RunStats,
) -> Optional[Iterator[List[Dict[str, Any]]]]:
    """History pages of a channel, joining it first if allowed; None when it must be skipped.

    A channel that `conversations.list` reports the bot is not in is joined or skipped without
    a history call that could only answer `not_in_channel`. The first page is fetched here so
    that a refusal is decided before any row is yielded; the remaining pages stream lazily.
    """
    name = channel.get("name", channel["id"])
    joined = False
    if channel.get("is_member") is False:
        joined = _join(client, channel, join_public_channels, stats)
        if not joined:
            _skip(stats, name, "not_in_channel")
            return None
    while True:
        pages = client.pages("conversations.history", "messages", window.params(channel["id"]))
        try:
            first = next(pages, [])
        except RETRYABLE as error:
            reason = getattr(error, "reason", None) or type(error).__name__
            stats.fail_channel(name, reason)
            logger.error("Slack #%s failed: %s", name, reason)
            return None
        except SlackChannelError as error:
            if error.error == "not_in_channel" and not joined:
                joined = _join(client, channel, join_public_channels, stats)
                if joined:
                    continue
            _skip(stats, name, error.error)
            return None
        return _chain(first, pages)


def _join(client: SlackClient, channel: Dict[str, Any], allowed: bool, stats: RunStats) -> bool:
    """Join a public channel when the configuration allows it; False when it does not."""
    if not allowed or channel.get("is_private"):
        return False
    name = channel.get("name", channel["id"])
    client.call("conversations.join", {"channel": channel["id"]})
    stats.joined_channels.append(name)
    logger.info("Slack #%s: joined the channel to read its history", name)
    return True


def _skip(stats: RunStats, name: str, reason: str) -> None:
    stats.skip_channel(name, reason)
    hint = " (invite the bot or set join_public_channels)" if reason == "not_in_channel" else ""
    logger.warning("Slack #%s skipped: %s%s", name, reason, hint)


def batched_rows(
    pages: Iterator[List[Dict[str, Any]]], min_rows: int, max_wait_s: float
) -> Iterator[List[Dict[str, Any]]]:
    """Consecutive pages joined until they hold `min_rows` or `max_wait_s` passed since the
    batch began. dlt spends a few ms on every item (schema hints, writer), so unthrottled
    999-message pages are handed over five at a time; when Slack's limits space the pages out,
    each one goes on at once, so the replies of its threads are fetched meanwhile."""
    batch: List[Dict[str, Any]] = []
    started = time.monotonic()
    for rows in pages:
        batch.extend(rows)
        if len(batch) >= min_rows or time.monotonic() - started >= max_wait_s:
            yield batch
            batch = []
            started = time.monotonic()
    if batch:
        yield batch


def _chain(
    first: List[Dict[str, Any]], rest: Iterator[List[Dict[str, Any]]]
) -> Iterator[List[Dict[str, Any]]]:
    yield first
    yield from rest
