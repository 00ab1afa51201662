"""Which channels to read and how to get in: list them once, resolve names or ids, join or
skip the ones the bot is not in, and report a channel that still fails after the retries."""

import logging
from typing import Any, Dict, Iterator, List, Optional, Sequence

from .client import RETRYABLE, SlackClient
from .conversations import DEFAULT_TYPES, kind_of
from .errors import SlackChannelError, SlackConfigError
from .history import Window, chain
from .run_stats import RunStats

logger = logging.getLogger("dlt.slack")

Page = List[Dict[str, Any]]


def list_channels(
    client: SlackClient, types: Sequence[str] = DEFAULT_TYPES
) -> List[Dict[str, Any]]:
    """All conversations of `types` the token can see (archived included: their history
    still matters)."""
    channels: List[Dict[str, Any]] = []
    params = {"types": ",".join(types), "exclude_archived": "false"}
    for page in client.pages("conversations.list", params):
        channels.extend(page)
    return channels


def select_channels(
    channels: Sequence[Dict[str, Any]], wanted: Optional[Sequence[str]]
) -> List[Dict[str, Any]]:
    """Channels named in `wanted` (names, `#names` or ids); all when `wanted` is empty.

    Raises one error naming every entry it could not find, so a typo costs one run, not many.
    """
    if not wanted:
        return list(channels)
    by_key: Dict[str, Dict[str, Any]] = {}
    for channel in channels:
        by_key[channel["id"]] = channel
        by_key.setdefault(channel.get("name", ""), channel)
    selected: List[Dict[str, Any]] = []
    missing: List[str] = []
    for entry in wanted:
        key = entry.strip().lstrip("#")
        channel = by_key.get(key)
        if channel is None:
            missing.append(entry)
        elif channel not in selected:
            selected.append(channel)
    if missing:
        known = ", ".join(sorted(c.get("name", c["id"]) for c in channels)[:20])
        raise SlackConfigError(
            f"Unknown Slack channel(s): {', '.join(missing)}. Channels visible to the token: "
            f"{known or 'none'}"
        )
    return selected


def name_of(channel: Dict[str, Any]) -> str:
    """What logs and summaries call it: a 1:1 DM has no name, only its id."""
    return str(channel.get("name") or channel["id"])


def with_group_members(client: SlackClient, channels: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Group DMs with their `members` (conversations.list does not send them; one
    conversations.members call per group DM). A 1:1 DM carries its counterpart in `user`."""
    out: List[Dict[str, Any]] = []
    for channel in channels:
        if channel.get("is_mpim") and "members" not in channel:
            params = {"channel": channel["id"]}
            members = [
                uid for page in client.pages("conversations.members", params) for uid in page
            ]
            channel = {**channel, "members": members}
        out.append(channel)
    return out


def channel_action(channel: Dict[str, Any], join_public_channels: bool) -> str:
    """What a run does with a listed channel: `read` it, `join` it first, or `skip` it (the bot
    is not in it and may not join). Unknown membership (a caller-given list) reads: the history
    call decides."""
    if channel.get("is_member") is not False:
        return "read"
    if join_public_channels and kind_of(channel) == "public_channel":
        return "join"
    return "skip"


def fail_channel(stats: RunStats, name: str, error: BaseException) -> None:
    """Retries exhausted for one channel's history or thread replies: report it and go on with
    the others; its state stays where it was, so the next run reads it again."""
    reason = getattr(error, "reason", None) or type(error).__name__
    stats.fail_channel(name, reason)
    logger.error("Slack #%s failed: %s", name, reason)


def open_history(
    client: SlackClient,
    channel: Dict[str, Any],
    window: Window,
    join_public_channels: bool,
    stats: RunStats,
) -> Optional[Iterator[Page]]:
    """History pages of a channel, joining it first if allowed; None when it must be skipped.

    A channel that `conversations.list` reports the bot is not in is joined or skipped without
    a history call that could only answer `not_in_channel`. The first page is fetched here so
    that a refusal is decided before any row is yielded; the remaining pages stream lazily.
    """
    name = name_of(channel)
    access = channel_action(channel, join_public_channels)
    if access == "skip":
        _skip(stats, name, "not_in_channel")
        return None
    joined = access == "join" and _join(client, channel, join_public_channels, stats)
    while True:
        pages = client.pages("conversations.history", window.params(channel["id"]))
        try:
            first = next(pages, [])
        except RETRYABLE as error:
            fail_channel(stats, name, error)
            return None
        except SlackChannelError as error:
            if error.error == "not_in_channel" and not joined:
                joined = _join(client, channel, join_public_channels, stats)
                if joined:
                    continue
            _skip(stats, name, error.error)
            return None
        return chain(first, pages)


def _join(client: SlackClient, channel: Dict[str, Any], allowed: bool, stats: RunStats) -> bool:
    """Join a public channel when the configuration allows it; False when it does not."""
    if not allowed or kind_of(channel) != "public_channel":
        return False
    name = name_of(channel)
    client.call("conversations.join", {"channel": channel["id"]})
    stats.joined_channels.append(name)
    logger.info("Slack #%s: joined the channel to read its history", name)
    return True


def _skip(stats: RunStats, name: str, reason: str) -> None:
    stats.skip_channel(name, reason)
    hint = " (invite the bot or set join_public_channels)" if reason == "not_in_channel" else ""
    logger.warning("Slack #%s skipped: %s%s", name, reason, hint)
