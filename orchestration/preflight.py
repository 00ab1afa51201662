"""The run's pre-flight: the token works and holds every scope the settings need.

Called by the flow before its first task and by the command line before the flow starts, so
a bad, revoked or under-scoped token costs one `auth.test` call and one line, never a write.
"""

from typing import Any, Optional

import dlt

from slack_source import SlackAccess, SlackAuthError, check_access, make_client, require_access

# Few attempts: the pre-flight is one cheap call; Slack being down shows within seconds.
PREFLIGHT_ATTEMPTS = 3


def join_public_channels() -> bool:
    return bool(dlt.config.get("sources.slack.join_public_channels", bool) or False)


def slack_access(
    include_private: bool, token_setting: Optional[str] = None, **access: Any
) -> SlackAccess:
    """`auth.test` plus the scope comparison; raises `SlackAuthError` / `SlackScopeError`.
    `access`: a workspace's token, API and team (`workspaces.workspace_access`), else config;
    `token_setting`: where that token is set, named by the hint of a bad token."""
    client = make_client(max_attempts=PREFLIGHT_ATTEMPTS, **access)
    try:
        return require_access(check_access(client, include_private, join_public_channels()))
    except SlackAuthError as error:
        if token_setting is None:
            raise
        raise error.naming(token_setting) from None
