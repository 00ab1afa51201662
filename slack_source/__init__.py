"""The `slack` dlt source: users, channels, channel history and thread replies.

Tables (dataset `slack_data` by default):
- `users`, `channels`: one row per `id`, merged.
- `messages`: one row per (`channel_id`, `ts`) for top-level messages, thread replies and
  broadcasts alike; `ts` is Slack's string, unchanged; `posted_at` is the timestamp derived from it.
  Nested fields (`blocks`, `reactions`, `files`, `edited`, ...) are JSON columns.
- `reactions`, `files` (`child_tables`, on by default): one row per (`channel_id`, `ts`, `name`,
  `user`) and per (`channel_id`, `ts`, `file_id`), from the same payloads (see `child_rows`).

Read top-down: the source builds one paced client, then its resources; the rooms beside it
hold Slack access (`client`, `settings`), channel access (`channels`), the history window
(`history`), thread tracking (`threads`), row shaping (`message_rows`, `arrow_pages`), PII
(`pii`) and what a token may do (`access`). The export reader is `import_export/`.
"""

import logging
from datetime import datetime, timedelta, timezone
from itertools import chain
from typing import Any, Dict, Iterator, List, Optional, Sequence

import dlt
from dlt.common.typing import TSecretStrValue
from dlt.sources import DltResource

from .access import SlackAccess, check_access, needed_scopes, require_access
from .arrow_pages import (
    concat_pages,
    num_rows,
    quiet_notices_by_design,
    rows_to_table,
    rows_with_replies,
)
from .channels import (
    fail_channel,
    list_channels,
    name_of,
    open_history,
    select_channels,
    with_group_members,
)
from .child_rows import child_resources, history_resources
from .client import RETRYABLE, SlackClient, check_token, make_client
from .conversations import CONVERSATION_TYPES, resolve_conversation_types
from .errors import (
    SlackApiError,
    SlackAuthError,
    SlackChannelError,
    SlackConfigError,
    SlackError,
    SlackScopeError,
    SlackTransientError,
)
from .history import ChannelHistoryReader, batched_pages, plan_window
from .members import channel_members_resource, directory_resources, user_group_resources
from .message_rows import datetime_to_ts
from .pii import check_pii_mode, pseudonymize_messages, pseudonymize_users
from .run_stats import RunStats
from .settings import (
    CHANNEL_COLUMNS,
    DEFAULT_API_BASE_URL,
    DEFAULT_INITIAL_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_MAX_LOOKBACK_DAYS,
    ITEM_MAX_WAIT_S,
    ITEM_ROWS,
    MESSAGE_COLUMNS,
    MESSAGE_JSON_COLUMNS,
    MESSAGES_WRITE_DISPOSITION,
    REPLY_TABLE_ROWS,
    SLACK_CALL_ATTEMPTS,
    USER_COLUMNS,
    check_lookback,
    message_columns,
)
from .threads import THREAD_PARENT_COLUMNS, prune_threads, refresh_threads
from .token_rotation import (
    FileTokenStore,
    MemoryTokenStore,
    RotationCredentials,
    TokenRotation,
    TokenStore,
)

__all__ = [
    "RETRYABLE",
    "MESSAGE_COLUMNS",
    "MESSAGES_WRITE_DISPOSITION",
    "slack_source",
    "batched_pages",
    "history_resources",
    "directory_resources",
    "check_token",
    "make_client",
    "list_channels",
    "CONVERSATION_TYPES",
    "resolve_conversation_types",
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
    "TokenRotation",
    "TokenStore",
    "MemoryTokenStore",
    "FileTokenStore",
    "RotationCredentials",
]

logger = logging.getLogger("dlt.slack")


@dlt.source(name="slack", max_table_nesting=1)
def slack_source(
    access_token: TSecretStrValue = dlt.secrets.value,
    api_base_url: str = DEFAULT_API_BASE_URL,
    channels: Optional[List[str]] = None,
    include_private: bool = False,
    conversation_types: Optional[List[str]] = None,
    start_date: Optional[datetime] = None,
    end_date: Optional[datetime] = None,
    initial_start_date: Optional[datetime] = None,
    lookback_days: float = DEFAULT_LOOKBACK_DAYS,
    max_lookback_days: float = DEFAULT_MAX_LOOKBACK_DAYS,
    join_public_channels: bool = False,
    rate_limit_profile: str = "tiers",
    rate_limit_minute_seconds: float = 60.0,
    max_attempts: int = SLACK_CALL_ATTEMPTS,
    channel_list: Optional[List[Dict[str, Any]]] = None,
    stats: Optional[Any] = None,
    pii_mode: str = "off",
    pii_salt: Optional[TSecretStrValue] = None,
    team_id: Optional[str] = None,
    append_into_empty: bool = False,
    child_tables: bool = True,
    channel_members: bool = False,
    user_groups: bool = False,
    token_rotation: Optional[Any] = None,
    messages_per_load: Optional[int] = None,
) -> Sequence[DltResource]:
    """Slack workspace data. Every argument can come from `sources.slack.*` config.

    Args:
        channels: names (`general`, `#general`) or ids to read; None reads every visible channel.
        include_private: also list private channels (needs groups:read / groups:history).
        conversation_types: the kinds of conversation to read, from `public_channel`,
            `private_channel`, `mpim` (group DMs) and `im` (DMs); default public channels
            (`slack_source.conversations`). DMs need im:read/im:history, group DMs
            mpim:read/mpim:history.
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
        team_id: the workspace an Enterprise Grid org-level token reads (sent on users.list and
            conversations.list); unset for a workspace token.
        append_into_empty: the destination has no `messages` row yet (the caller checked, after
            finishing pending packages): rows are appended instead of merged and deletion rows
            are not written (nothing to delete). Same result, since one load emits each
            (`channel_id`, `ts`) once, without the merge writing every message twice (staging
            table, then delete + insert).
        child_tables: also load `reactions` and `files` from the messages' payloads (no extra
            call; `slack_source.child_rows`).
        channel_members: also load `channel_members` (conversations.members, one call per
            channel and 1,000 members); off by default: it costs calls (`slack_source.members`).
        user_groups: also load `user_groups` and `user_group_members` (one usergroups.list call;
            needs usergroups:read); off by default.
        token_rotation: a `TokenRotation` for an app with token rotation on
            (`slack_source.token_rotation`); `access_token` is then its current token, and an
            expired one is refreshed and the call retried.
        messages_per_load: once this run's channels have read this many history messages, the
            channels not started yet are left for another load (`stats.deferred_channels`): a
            load holds a volume, not a count of channels (the flow loads them next). None: all.
    """
    pii_mode = check_pii_mode(pii_mode, pii_salt)  # before any request is sent
    types = resolve_conversation_types(conversation_types, include_private)
    run_stats: RunStats = stats if isinstance(stats, RunStats) else RunStats()
    client = make_client(
        access_token,
        api_base_url,
        rate_limit_profile=rate_limit_profile,
        rate_limit_minute_seconds=rate_limit_minute_seconds,
        max_attempts=max_attempts,
        stats=run_stats,
        team_id=team_id,
        token_rotation=token_rotation,
    )
    check_lookback(lookback_days, max_lookback_days)
    lookback_seconds = float(lookback_days) * 86400
    max_lookback_seconds = float(max_lookback_days) * 86400
    start_ts = datetime_to_ts(start_date) if start_date else None
    end_ts = datetime_to_ts(end_date) if end_date else None
    quiet_notices_by_design()
    scrub = pseudonymize_messages(pii_mode, pii_salt)
    json_columns = frozenset(MESSAGE_JSON_COLUMNS)
    listed: Dict[str, List[Dict[str, Any]]] = {}

    def page_table(rows: List[Dict[str, Any]]) -> Any:
        """Rows as one Arrow table, PII applied first (see `arrow_pages` for why Arrow)."""
        if pii_mode != "off":
            rows = [scrub(row) for row in rows]
        return rows_to_table(rows, json_columns)

    def all_channels() -> List[Dict[str, Any]]:
        if "all" not in listed:
            listed["all"] = (
                list(channel_list) if channel_list is not None else list_channels(client, types)
            )
            for channel in listed["all"]:
                run_stats.name_channel(channel["id"], name_of(channel))
        return listed["all"]

    @dlt.resource(name="users", primary_key="id", write_disposition="merge", columns=USER_COLUMNS)
    def users() -> Iterator[List[Dict[str, Any]]]:
        yield from client.pages("users.list")

    @dlt.resource(
        name="channels",
        primary_key="id",
        write_disposition="merge",
        columns=CHANNEL_COLUMNS,
    )
    def channels_resource() -> Iterator[List[Dict[str, Any]]]:
        yield with_group_members(client, all_channels())

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
        read = 0  # history messages of this load so far (`messages_per_load`)
        for channel in select_channels(all_channels(), channels):
            if messages_per_load is not None and read >= max(1, messages_per_load):
                run_stats.defer_channel(channel["id"])  # its state untouched: not started
                continue
            channel_state = channel_states.setdefault(channel["id"], {})
            window = plan_window(
                channel_state, start_ts, end_ts, initial_ts, lookback_seconds, max_lookback_seconds
            )
            reader = ChannelHistoryReader(channel["id"], window, channel_state, lookback_seconds)
            prune_threads(thread_state, channel["id"], window.oldest)
            history = open_history(client, channel, window, join_public_channels, run_stats)
            if history is None:
                continue
            try:
                tables = (page_table(rows) for rows in reader.pages(history))
                for group in batched_pages(tables, ITEM_ROWS, ITEM_MAX_WAIT_S, num_rows):
                    yield concat_pages(group)
            except RETRYABLE as error:
                # Its state stays as it was: the next run re-reads the same window.
                fail_channel(run_stats, name_of(channel), error)
                continue
            read += reader.rows
            deletions = reader.finish()  # commits the channel's state either way
            if append_into_empty:
                deletions = []  # nothing to delete in an empty table: not written, not counted
            if deletions:
                yield page_table(deletions)
            run_stats.count_rows("messages_per_channel", channel["id"], reader.rows)
            run_stats.count_rows("deleted_per_channel", channel["id"], len(deletions))
            logger.info(
                "Slack #%s: %d messages read, %d deletions",
                name_of(channel),
                reader.rows,
                len(deletions),
            )

    def thread_failed(channel_id: str, error: BaseException) -> None:
        fail_channel(run_stats, run_stats.channel_names.get(channel_id, channel_id), error)

    @dlt.transformer(
        name="messages",
        data_from=channel_history,
        primary_key=("channel_id", "ts"),
        write_disposition="append" if append_into_empty else MESSAGES_WRITE_DISPOSITION,
        columns=message_columns(append_into_empty=append_into_empty),
        parallelized=True,
    )
    def messages(page: Any) -> Any:
        """A history page and the replies of its changed threads, written as one item: dlt
        has a fixed cost per item, so one item per page instead of two."""
        thread_state = dlt.current.source_state().setdefault("threads", {})
        rows = rows_with_replies(page, THREAD_PARENT_COLUMNS)
        threads = refresh_threads(client, rows, thread_state, end_ts, run_stats, thread_failed)
        if append_into_empty:
            threads = ([row for row in rows if not row.get("is_deleted")] for rows in threads)
        replies = [
            page_table(list(chain.from_iterable(group)))
            for group in batched_pages(threads, REPLY_TABLE_ROWS)
        ]
        replies = [table for table in replies if table is not None]
        return concat_pages([page, *replies]) if replies else page

    if pii_mode != "off":  # messages: in `page_table`
        users.add_map(pseudonymize_users(pii_mode, pii_salt))

    def member_skipped(channel: Dict[str, Any], error: BaseException) -> None:
        logger.warning("Slack #%s: members not loaded (%s)", name_of(channel), error)

    extra: List[Any] = child_resources(messages, append_into_empty) if child_tables else []
    if channel_members:
        selected = lambda: select_channels(all_channels(), channels)  # noqa: E731
        extra.append(channel_members_resource(client, selected, member_skipped))
    if user_groups:
        extra.extend(user_group_resources(client))
    return users, channels_resource, channel_history, messages, *extra
