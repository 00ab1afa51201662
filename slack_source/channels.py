"""Which channels to read: list them once, resolve names or ids, fail on the unknown."""

from typing import Any, Dict, List, Optional, Sequence

from .client import SlackClient
from .errors import SlackConfigError


def channel_types(include_private: bool) -> str:
    return "public_channel,private_channel" if include_private else "public_channel"


def list_channels(client: SlackClient, include_private: bool = False) -> List[Dict[str, Any]]:
    """All channels the token can see (archived included: their history still matters)."""
    channels: List[Dict[str, Any]] = []
    params = {"types": channel_types(include_private), "exclude_archived": "false"}
    for page in client.pages("conversations.list", "channels", params):
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
