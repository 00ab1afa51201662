"""Typed Slack errors: each names the method and Slack's error code, never the token."""

from typing import Any, Dict, Optional

from requests import HTTPError, Response


class SlackError(Exception):
    """Base class of every error this source raises about Slack."""


class SlackConfigError(SlackError):
    """Bad configuration found before any request is made (token shape, unknown channel...)."""


class SlackApiError(SlackError):
    """Slack answered `ok: false`: a permanent error for this call."""

    def __init__(self, method: str, error: str, payload: Optional[Dict[str, Any]] = None) -> None:
        self.method = method
        self.error = error
        self.payload = payload or {}
        super().__init__(self.describe())

    def __reduce__(self) -> Any:
        # Rebuilt from its fields, not its message, so that a copy (Prefect pickles a failed
        # run's exception) is the same error rather than a TypeError.
        return (type(self), (self.method, self.error, self.payload))

    def describe(self) -> str:
        return f"Slack {self.method} failed: {self.error}"


class SlackAuthError(SlackApiError):
    """The token is missing, wrong, revoked or its account is gone: retrying cannot help."""

    HINTS = {
        "not_authed": "no token was sent; set {setting}",
        "invalid_auth": "the token is not valid; check {setting}",
        "token_revoked": "the token was revoked; reinstall the app and use its new token",
        "token_expired": "the token expired; with token rotation on, set the app's refresh_token,"
        " client_id and client_secret (docs/token-rotation.md)",
        "account_inactive": "the token's user or workspace is deactivated",
        # oauth.v2.access, token rotation's refresh (slack_source/token_rotation.py)
        "invalid_refresh_token": "the refresh token was revoked or already used; reinstall the"
        " app and set its new refresh token in {setting}",
        "invalid_client_id": "the app's client id is wrong; check {setting}",
        "bad_client_secret": "the app's client secret is wrong; check {setting}",
    }
    TOKEN_SETTING = "SOURCES__SLACK__ACCESS_TOKEN"  # where the source reads its token

    def __init__(
        self,
        method: str,
        error: str,
        payload: Optional[Dict[str, Any]] = None,
        token_setting: Optional[str] = None,
    ) -> None:
        self.token_setting = token_setting or self.TOKEN_SETTING
        super().__init__(method, error, payload)

    def __reduce__(self) -> Any:
        return (type(self), (self.method, self.error, self.payload, self.token_setting))

    def naming(self, token_setting: str) -> "SlackAuthError":
        """The same error, its hint naming the setting the token came from (a workspace's);
        a refresh's rejection already names its own setting."""
        if self.error in ROTATION_ERRORS:
            return self
        return SlackAuthError(self.method, self.error, self.payload, token_setting)

    def describe(self) -> str:
        hint = self.HINTS.get(self.error, "").format(setting=self.token_setting)
        return f"Slack {self.method} failed: {self.error}" + (f" ({hint})" if hint else "")


class SlackScopeError(SlackApiError):
    """The app lacks an OAuth scope; the message says which one to add."""

    def describe(self) -> str:
        needed = [s for s in str(self.payload.get("needed") or "?").split(",") if s]
        provided = self.payload.get("provided", "")
        scopes = ", ".join(f"'{scope}'" for scope in needed)
        noun = "scope" if len(needed) == 1 else "scopes"
        return (
            f"Slack {self.method} failed: missing_scope: add the OAuth {noun} {scopes} to the "
            f"Slack app and reinstall it (token has: {provided or 'none'})"
        )


class SlackChannelError(SlackApiError):
    """A channel cannot be read (not a member, not found, archived): skip it, keep the rest."""


class SlackTransientError(HTTPError):
    """A failure worth retrying: 5xx, 429, malformed body, `ratelimited` without a 429."""

    def __init__(
        self,
        method: str,
        reason: str,
        response: Optional[Response] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        self.method = method
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(f"Slack {method}: {reason}", response=response)

    def __reduce__(self) -> Any:
        return (type(self), (self.method, self.reason, None, self.retry_after))  # not the response


AUTH_ERRORS = frozenset(SlackAuthError.HINTS)
ROTATION_ERRORS = frozenset({"invalid_refresh_token", "invalid_client_id", "bad_client_secret"})
CHANNEL_ERRORS = frozenset(
    {"not_in_channel", "channel_not_found", "is_archived", "method_not_supported_for_channel_type"}
)


def error_from_payload(method: str, payload: Dict[str, Any]) -> SlackApiError:
    """Map Slack's `ok: false` body to the most specific error class."""
    error = str(payload.get("error") or "unknown_error")
    if error in AUTH_ERRORS:
        return SlackAuthError(method, error, payload)
    if error == "missing_scope":
        return SlackScopeError(method, error, payload)
    if error in CHANNEL_ERRORS:
        return SlackChannelError(method, error, payload)
    return SlackApiError(method, error, payload)
