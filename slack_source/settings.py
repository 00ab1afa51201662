"""Slack Web API settings the source relies on: defaults, page sizes and rate-limit tiers.

Values come from Slack's method reference (see README, "Slack API facts"); each is a constant so
that a reader finds the number, and the reason for it, in one place.
"""

from typing import Dict

DEFAULT_API_BASE_URL = "https://slack.com/api/"

# Largest page each method accepts: fewer pages means fewer calls against per-method limits.
PAGE_SIZES: Dict[str, int] = {
    "users.list": 1000,
    "conversations.list": 999,  # "under 1000"
    "conversations.history": 999,
    "conversations.replies": 999,  # documented default 1000, "specify under 1000"
    "conversations.members": 1000,
}

# Requests per minute Slack allows for each method of an internal or Marketplace app
# (Tier 2 = 20, Tier 3 = 50, Tier 4 = 100, auth.test "hundreds").
TIER_ALLOWANCES: Dict[str, int] = {
    "auth.test": 600,
    "users.list": 20,
    "conversations.list": 20,
    "conversations.history": 50,
    "conversations.replies": 50,
    "conversations.join": 50,
    "conversations.members": 100,
}

# Slack's 2025 limits for commercially distributed non-Marketplace apps: history and replies
# fall to 1 request a minute and 15 messages a page.
NON_MARKETPLACE_ALLOWANCES: Dict[str, int] = {
    **TIER_ALLOWANCES,
    "conversations.history": 1,
    "conversations.replies": 1,
}
NON_MARKETPLACE_PAGE_SIZE = 15

# Messages per item handed to dlt (history pages are joined up to this; see `batched_rows`).
ITEM_ROWS = 5000
ITEM_MAX_WAIT_S = 0.5

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

# List fields of a channel kept as JSON columns, so `channels` stays one table (a list would
# become a child table such as `channels__shared_team_ids`). `topic`/`purpose` stay flattened.
CHANNEL_JSON_COLUMNS = (
    "shared_team_ids",
    "pending_shared",
    "pending_connected_team_ids",
    "internal_team_ids",
    "connected_team_ids",
    "connected_limited_team_ids",
    "previous_names",
    "properties",
)

# Tokens Slack issues: bot (xoxb), user (xoxp), app-level (xapp), legacy/enterprise (xoxa, xoxe).
TOKEN_PREFIXES = ("xoxb-", "xoxp-", "xoxa-", "xoxe-", "xapp-")
