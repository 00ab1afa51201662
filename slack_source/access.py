"""Pre-flight: one `auth.test` call decides whether a run can succeed before anything is written.

Slack names the token's granted scopes in the `x-oauth-scopes` header of every authenticated
answer. Comparing them with what the run's settings need turns a `missing_scope` half way
through a load (users already written, channels not) into one line before the first task.
"""

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

from .client import SlackClient
from .errors import SlackScopeError

# What each scope is for; the optional ones only thin the data out when missing.
BASE_SCOPES: Dict[str, str] = {
    "users:read": "users.list",
    "channels:read": "listing public channels",
    "channels:history": "history and replies of public channels",
}
PRIVATE_SCOPES: Dict[str, str] = {
    "groups:read": "listing private channels, include_private",
    "groups:history": "history and replies of private channels, include_private",
}
JOIN_SCOPES: Dict[str, str] = {"channels:join": "conversations.join, join_public_channels"}
USER_GROUP_SCOPES: Dict[str, str] = {"usergroups:read": "usergroups.list, user_groups"}
OPTIONAL_SCOPES: Dict[str, str] = {
    "users:read.email": "users' email addresses, loaded empty without it",
}


def needed_scopes(
    include_private: bool, join_public_channels: bool, user_groups: bool = False
) -> Dict[str, str]:
    """The scopes this run's settings need, each with the call that needs it."""
    needed = dict(BASE_SCOPES)
    if user_groups:
        needed.update(USER_GROUP_SCOPES)
    if include_private:
        needed.update(PRIVATE_SCOPES)
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
    include_private: bool = False,
    join_public_channels: bool = False,
    user_groups: bool = False,
) -> SlackAccess:
    """Call `auth.test` (bad, revoked or expired tokens raise `SlackAuthError` here) and compare
    the granted scopes with the needed ones; nothing is raised for missing scopes."""
    payload: Dict[str, Any] = client.call("auth.test")
    granted = client.granted_scopes
    needed = needed_scopes(include_private, join_public_channels, user_groups)
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
