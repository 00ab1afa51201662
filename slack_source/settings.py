"""Slack Web API settings the source relies on: the methods table, defaults, column choices.

Values come from Slack's method reference (see README, "Slack API facts"); each is a constant so
that a reader finds the number, and the reason for it, in one place.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional

from .errors import SlackConfigError

DEFAULT_API_BASE_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class SlackMethod:
    """One Web API method as this source calls it. Adding a method is one row below."""

    data_key: Optional[str]  # the list a page holds ("members"); None: not paginated
    page_size: Optional[int]  # largest `limit` it accepts: fewer pages, fewer calls
    per_minute: int  # the tier's allowance for an internal or Marketplace app
    # Slack's 2025 limits for commercially distributed non-Marketplace apps, where they differ
    non_marketplace_per_minute: Optional[int] = None
    non_marketplace_page_size: Optional[int] = None
    # Enterprise Grid: an org-level token names the workspace with `team_id` on this method
    team_scoped: bool = False


# Tier 2 = 20/min, Tier 3 = 50/min, Tier 4 = 100/min, auth.test "hundreds" (Slack's reference;
# the Java SDK assumes 600). History and replies: 1 call/min, 15 a page for non-Marketplace apps.
# Team-scoped: with an Enterprise Grid org-level token these list one workspace only when given
# its `team_id`; history and replies name a channel, whose id is unique across the org.
SLACK_METHODS: Dict[str, SlackMethod] = {
    "auth.test": SlackMethod(data_key=None, page_size=None, per_minute=600),
    # Tier 2, cursor-paged ("no larger than 1000"): an org-wide install's workspaces
    "auth.teams.list": SlackMethod(data_key="teams", page_size=1000, per_minute=20),
    "users.list": SlackMethod(data_key="members", page_size=1000, per_minute=20, team_scoped=True),
    "conversations.list": SlackMethod("channels", 999, 20, team_scoped=True),  # "under 1000"
    "conversations.history": SlackMethod("messages", 999, 50, 1, 15),
    "conversations.replies": SlackMethod("messages", 999, 50, 1, 15),  # "specify under 1000"
    "conversations.join": SlackMethod(data_key=None, page_size=None, per_minute=50),
    "conversations.members": SlackMethod("members", 1000, 100),  # Tier 4
    # Tier 2, not paginated; `team_id` names the workspace for an org-level token
    "usergroups.list": SlackMethod("usergroups", None, 20, team_scoped=True),
    # Token rotation's refresh (slack_source/token_rotation.py): no scope, no token. Slack's
    # reference says "Special" rate limits (not a tier); a run makes one call per 12 h token,
    # so Tier 4's allowance is a generous bound for pacing it.
    "oauth.v2.access": SlackMethod(data_key=None, page_size=None, per_minute=100),
}

# `tiers`: an internal or Marketplace app; `non_marketplace`: Slack's 2025 limits; `off`: no
# pacing (the emulator without limits, benchmarks).
RATE_LIMIT_PROFILES = ("tiers", "non_marketplace", "off")


def allowances(profile: str) -> Dict[str, int]:
    """Calls per minute per method under a rate-limit profile (none for `off`)."""
    if profile == "off":
        return {}
    return {
        name: (m.non_marketplace_per_minute or m.per_minute)
        if profile == "non_marketplace"
        else m.per_minute
        for name, m in SLACK_METHODS.items()
    }


def page_sizes(profile: str) -> Dict[str, int]:
    """The `limit` sent with each paginated method under a rate-limit profile."""
    return {
        name: (m.non_marketplace_page_size or m.page_size)
        if profile == "non_marketplace"
        else m.page_size
        for name, m in SLACK_METHODS.items()
        if m.page_size is not None
    }


# Messages per item handed to dlt (history pages, as Arrow tables, are joined up to this; see
# `batched_pages`), and replies per Arrow table: a page's threads are turned into tables this
# many rows at a time rather than all at once (a long-tailed page can bring tens of thousands).
ITEM_ROWS = 5000
ITEM_MAX_WAIT_S = 0.5
REPLY_TABLE_ROWS = 1000

# Retries of one Slack call (client.SlackClient): 429s, 5xx, dropped connections and malformed
# bodies, waiting Retry-After when Slack sends it, else exponential backoff with jitter of
# RETRY_BACKOFF_SECONDS * 2**n, capped at RETRY_MAX_BACKOFF_SECONDS. The whole policy, with
# the layers above this one, is written out in orchestration/failures.py.
SLACK_CALL_ATTEMPTS = 8
RETRY_BACKOFF_SECONDS = 1.0
RETRY_MAX_BACKOFF_SECONDS = 60.0
# The pre-flight's `auth.test`: few attempts, so that Slack being down shows within seconds.
PREFLIGHT_ATTEMPTS = 3

# Pace a little under each allowance so clock jitter never tips a request over the limit.
PACING_SAFETY_FACTOR = 1.02

# How far back the daily run re-reads history at least, to catch late replies, edits and
# deletions; it also finishes the page that reaches that point (paid for anyway), up to
# DEFAULT_MAX_LOOKBACK_DAYS, which also bounds how long thread marks are kept.
DEFAULT_LOOKBACK_DAYS = 7
DEFAULT_MAX_LOOKBACK_DAYS = 90
# Where a channel's very first incremental load starts when no start date is configured.
DEFAULT_INITIAL_DAYS = 1

# Nested message fields kept as JSON columns: exploding them creates dozens of child tables
# nobody queries and costs most of normalize time. Any other nested field is JSON text too.
MESSAGE_JSON_COLUMNS = (
    "blocks",
    "attachments",
    "files",
    "reactions",
    "edited",
    "root",
    "reply_users",
    "pinned_to",
    "user_profile",
    "bot_profile",
    "icons",
    "metadata",
)

# The `messages` table: merge key and `ts`-like ids as text, exactly as Slack sends them;
# `is_deleted` rows remove their key (deleted messages and replies).
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


def message_columns(
    append_into_empty: bool, extra: Optional[Dict[str, Any]] = None
) -> Dict[str, Any]:
    """`MESSAGE_COLUMNS` (and `extra`) for the table's write disposition. An append into the
    empty table (a first backfill) writes no deletion rows and leaves out `hard_delete`, which
    only a merge applies: dlt warned about the hint on every first backfill (and the demo). The
    next run, a merge, declares it again."""
    columns = {**MESSAGE_COLUMNS, **(extra or {})}
    if append_into_empty:
        columns["is_deleted"] = {"data_type": "bool"}
    return columns


# Merged on (channel_id, ts), with the staging rows declared unique: the source emits every
# message once per load (history pages do not overlap, replies skip their parent and the
# broadcasts history already returned; tests assert it). dlt's own dedup is a window function
# over the whole staging table: slow and, in DuckDB, memory that grows with the rows of one load
# (tooling/bench/RESULTS.md, "Why the dedup had to go").
MESSAGES_WRITE_DISPOSITION: Dict[str, Any] = {
    "disposition": "merge",
    "strategy": "delete-insert",
    "deduplicated": True,
}

# List fields of a channel kept as JSON columns, so `channels` stays one table (a list would
# become a child table such as `channels__shared_team_ids`). `topic`/`purpose` stay flattened.
CHANNEL_JSON_COLUMNS = (
    "shared_team_ids",
    "pending_shared",
    "pending_connected_team_ids",
    "internal_team_ids",
    "connected_team_ids",
    "members",  # a group DM's user ids (`channels.with_group_members`, export entries)
    "connected_limited_team_ids",
    "previous_names",
    "properties",
)
# Column hints of `users` and `channels`, for the API and the export alike. Besides the JSON
# lists above: fields Slack sends as null for nearly every user or channel. Untyped, dlt could not
# infer their type from the first loads and printed a warning of ten lines for each, on every
# run (the demo's console included).
USER_COLUMNS: Dict[str, Any] = {"profile__fields": {"data_type": "json"}}
CHANNEL_COLUMNS: Dict[str, Any] = {
    **{name: {"data_type": "json"} for name in CHANNEL_JSON_COLUMNS},
    "parent_conversation": {"data_type": "text"},
}

# Tokens Slack issues: bot (xoxb), user (xoxp), app-level (xapp), legacy/enterprise (xoxa, xoxe).
# Rotating tokens (token rotation on): access tokens `xoxe.xoxb-`/`xoxe.xoxp-`, refresh `xoxe-1-`.
TOKEN_PREFIXES = ("xoxb-", "xoxp-", "xoxa-", "xoxe-", "xapp-", "xoxe.xoxb-", "xoxe.xoxp-")
# Token rotation: refresh an access token that expires within this margin (at most a quarter
# of its lifetime) before using it; Slack's tokens live 12 h, so a task starting in the last
# half hour refreshes first instead of failing on `token_expired` a few calls in.
TOKEN_REFRESH_MARGIN_S = 1800.0


def check_lookback(lookback_days: Any, max_lookback_days: Any = None) -> None:
    """A clear error for a lookback that would skip messages: below 0 (the next run would start
    after the newest message loaded, and what was posted in between would never be read), or
    not a number."""
    for name, value in (("lookback_days", lookback_days), ("max_lookback_days", max_lookback_days)):
        if value is None:
            continue
        try:
            days = float(value)
        except (TypeError, ValueError):
            days = float("nan")
        if not days >= 0:  # NaN too
            raise SlackConfigError(
                f"Bad {name} {value!r}: a number of days, 0 or more (sources.slack.{name}"
                + (", or --lookback-days)" if name == "lookback_days" else ")")
            )
