"""Pre-flight: one `auth.test` call decides whether a run can succeed before anything is written.

Slack names the token's granted scopes in the `x-oauth-scopes` header of every authenticated
answer. Comparing them with what the run's settings need turns a `missing_scope` half way
through a load (users already written, channels not) into one line before the first task.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

from .client import SlackClient
from .conversations import DEFAULT_TYPES, readable_kinds, type_scopes
from .errors import SlackScopeError

# What each scope is for; the optional ones only thin the data out when missing. The scopes
# of each kind of conversation are in `conversations.CONVERSATION_SCOPES`.
BASE_SCOPES: Dict[str, str] = {"users:read": "users.list"}
JOIN_SCOPES: Dict[str, str] = {"channels:join": "conversations.join, join_public_channels"}
USER_GROUP_SCOPES: Dict[str, str] = {"usergroups:read": "usergroups.list, user_groups"}
OPTIONAL_SCOPES: Dict[str, str] = {
    "users:read.email": "users' email addresses, loaded empty without it",
}


def needed_scopes(
    types: Sequence[str] = DEFAULT_TYPES,
    join_public_channels: bool = False,
    user_groups: bool = False,
) -> Dict[str, str]:
    """The scopes this run's settings need, each with the call that needs it (`types`: the
    kinds of conversation it reads, `conversations.resolve_conversation_types`)."""
    needed = dict(BASE_SCOPES)
    needed.update(type_scopes(types))
    if user_groups:
        needed.update(USER_GROUP_SCOPES)
    if join_public_channels:
        needed.update(JOIN_SCOPES)
    return needed


@dataclass(frozen=True)
class SlackAccess:
    """Who the token is and what it may do; safe to log (no token, no message data)."""

    team: str
    team_id: str
    url: str
    user: str
    user_id: str
    bot_id: Optional[str]
    scopes: Optional[frozenset]  # None: the header was not sent (unknown, not "none")
    missing: Tuple[str, ...]
    missing_optional: Tuple[str, ...]
    is_enterprise_install: bool = False

    @property
    def readable_kinds(self) -> Optional[Tuple[str, ...]]:
        """The kinds of conversation the token's scopes can list and read (None: unknown)."""
        return readable_kinds(self.scopes)

    def describe(self) -> str:
        """One log line: workspace, identity and the scope verdict."""
        who = f"Slack workspace {self.team} ({self.team_id}), as {self.user} ({self.user_id})"
        if self.scopes is None:
            return who + "; token scopes unknown (no x-oauth-scopes header)"
        verdict = "all scopes the run needs are granted"
        if self.missing_optional:
            verdict += "; without " + ", ".join(
                f"{scope} ({OPTIONAL_SCOPES[scope]})" for scope in self.missing_optional
            )
        return f"{who}; {verdict}"


def check_access(
    client: SlackClient,
    types: Sequence[str] = DEFAULT_TYPES,
    join_public_channels: bool = False,
    user_groups: bool = False,
) -> SlackAccess:
    """Call `auth.test` (bad, revoked or expired tokens raise `SlackAuthError` here) and compare
    the granted scopes with the needed ones; nothing is raised for missing scopes."""
    payload: Dict[str, Any] = client.call("auth.test")
    granted = client.granted_scopes
    needed = needed_scopes(types, join_public_channels, user_groups)
    missing: Tuple[str, ...] = ()
    missing_optional: Tuple[str, ...] = ()
    if granted is not None:
        missing = tuple(sorted(scope for scope in needed if scope not in granted))
        missing_optional = tuple(sorted(s for s in OPTIONAL_SCOPES if s not in granted))
    return SlackAccess(
        team=str(payload.get("team") or ""),
        team_id=str(payload.get("team_id") or ""),
        url=str(payload.get("url") or ""),
        user=str(payload.get("user") or ""),
        user_id=str(payload.get("user_id") or ""),
        bot_id=payload.get("bot_id"),
        scopes=granted,
        missing=missing,
        missing_optional=missing_optional,
        is_enterprise_install=bool(payload.get("is_enterprise_install")),
    )


def require_access(access: SlackAccess) -> SlackAccess:
    """Raise one `SlackScopeError` naming every missing scope, or return `access`."""
    if access.missing:
        raise SlackScopeError(
            "auth.test",
            "missing_scope",
            {"needed": ",".join(access.missing), "provided": ",".join(sorted(access.scopes or ()))},
        )
    return access
