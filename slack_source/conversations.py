"""The four kinds of Slack conversation a run can read, and the scopes each needs.

`conversations.list` takes `types` from `public_channel`, `private_channel`, `mpim` (group DMs)
and `im` (1:1 DMs). A run reads public channels unless `sources.slack.conversation_types` says
otherwise; `include_private` stays as the shorthand that adds private channels. DMs are off
unless asked for: they are the most private data a workspace holds (docs/configuration.md).
"""

from typing import Any, Dict, Iterable, Optional, Tuple

from .errors import SlackConfigError

CONVERSATION_TYPES: Tuple[str, ...] = ("public_channel", "private_channel", "mpim", "im")
DEFAULT_TYPES: Tuple[str, ...] = ("public_channel",)
# kind -> (read scope, history scope), as Slack's docs name them
CONVERSATION_SCOPES: Dict[str, Tuple[str, str]] = {
    "public_channel": ("channels:read", "channels:history"),
    "private_channel": ("groups:read", "groups:history"),
    "mpim": ("mpim:read", "mpim:history"),
    "im": ("im:read", "im:history"),
}
KIND_NAMES: Dict[str, str] = {
    "public_channel": "public channels",
    "private_channel": "private channels",
    "mpim": "group DMs",
    "im": "DMs",
}
DIRECT_TYPES = frozenset({"mpim", "im"})


def resolve_conversation_types(
    configured: Optional[Iterable[str]] = None, include_private: bool = False
) -> Tuple[str, ...]:
    """The kinds a run reads, in Slack's order: `configured` (default: public channels) plus
    private channels with `include_private`. An unknown kind is one line, before any call."""
    if isinstance(configured, str):
        configured = [part for part in configured.split(",")]
    wanted = {str(kind).strip() for kind in (configured or DEFAULT_TYPES) if str(kind).strip()}
    unknown = sorted(wanted - set(CONVERSATION_TYPES))
    if unknown:
        raise SlackConfigError(
            f"Unknown conversation type(s): {', '.join(unknown)}; sources.slack.conversation_types"
            f" takes {', '.join(CONVERSATION_TYPES)}"
        )
    if not wanted:
        raise SlackConfigError(
            "sources.slack.conversation_types is empty: name at least one of "
            + ", ".join(CONVERSATION_TYPES)
        )
    if include_private:
        wanted.add("private_channel")
    return tuple(kind for kind in CONVERSATION_TYPES if kind in wanted)


def kind_of(channel: Dict[str, Any]) -> str:
    """A conversations.list object's kind."""
    if channel.get("is_im"):
        return "im"
    if channel.get("is_mpim"):
        return "mpim"
    return "private_channel" if channel.get("is_private") else "public_channel"


def type_scopes(types: Iterable[str]) -> Dict[str, str]:
    """The read and history scopes of `types`, each with what needs it."""
    needed: Dict[str, str] = {}
    for kind in types:
        read, history = CONVERSATION_SCOPES[kind]
        needed[read] = f"listing {KIND_NAMES[kind]}"
        needed[history] = f"history and replies of {KIND_NAMES[kind]}"
    return needed


def readable_kinds(granted: Optional[frozenset]) -> Optional[Tuple[str, ...]]:
    """The kinds a token's scopes can list and read (None: scopes unknown)."""
    if granted is None:
        return None
    return tuple(k for k in CONVERSATION_TYPES if set(CONVERSATION_SCOPES[k]) <= granted)
