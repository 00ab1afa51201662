"""Apps with token rotation: expiring access tokens and single-use refresh tokens.

Slack's rules (docs "Using token rotation", slack_api_facts.md section 8): once rotation is on,
an access token (`xoxe.xoxb-…`) lives 12 hours and is then answered `token_expired`;
`oauth.v2.access` with `grant_type=refresh_token`, the app's `client_id` and `client_secret`
and a refresh token answers a new access token and a new refresh token, and the refresh token
it was given is spent (`invalid_refresh_token` when used again). Every token it issues reaches
the same workspace (tenant) as the token it replaces.

Two lifetimes: `token_lifetime_s` (real seconds; default 12 h scaled by the emulator's
`time_scale`), or `token_lifetime_calls`, a number of authenticated calls after which a token
expires: a test's run then expires at a call it can count on, however fast the machine is.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import MutableMapping
from dataclasses import dataclass

from .pagination import SlackError

OAUTH_METHOD = "oauth.v2.access"
SLACK_TOKEN_LIFETIME_S = 43200  # 12 hours, Slack's `expires_in`


@dataclass(frozen=True)
class RotationSpec:
    """A rotating app. ``seeds``: (refresh token, token of ``EmulatorConfig.tokens``) pairs,
    each refresh token reaching that token's workspace; those configured tokens rotate too
    (their lifetime starts with the server)."""

    client_id: str = "1000000001.2000000002"
    client_secret: str = "emulator-client-secret"
    seeds: tuple[tuple[str, str], ...] = ()
    token_lifetime_s: float | None = None
    token_lifetime_calls: int | None = None

    def __post_init__(self) -> None:
        if self.token_lifetime_s is not None and self.token_lifetime_s <= 0:
            raise ValueError("token_lifetime_s must be > 0")
        if self.token_lifetime_calls is not None and self.token_lifetime_calls < 1:
            raise ValueError("token_lifetime_calls must be >= 1")


@dataclass
class _Issued:
    """One rotating access token: the tenant it reaches, when it expires, calls left."""

    tenant_token: str
    expires_at: float
    calls_left: int | None


class TokenRotation:
    """The emulator's side of rotation. ``tenants`` is the Slack app's token -> tenant map:
    issued tokens are added to it, so they authenticate as the workspace they replace."""

    def __init__(
        self, spec: RotationSpec | None, tenants: MutableMapping, time_scale: float = 1.0
    ) -> None:
        self.spec = spec or RotationSpec(client_id="", client_secret="")
        self.tenants = tenants
        self.lifetime_s = (
            self.spec.token_lifetime_s
            if self.spec.token_lifetime_s is not None
            else SLACK_TOKEN_LIFETIME_S * time_scale
        )
        self._lock = threading.Lock()
        self._serial = itertools.count(1)
        self._access: dict[str, _Issued] = {}
        self._refresh: dict[str, str] = {}  # live refresh token -> tenant token
        self._spent: set[str] = set()
        self.refreshes = 0
        self.rejected = 0
        self.expired = 0
        for refresh_token, token in self.spec.seeds:
            if token not in tenants:
                raise ValueError("a rotation seed names a token the emulator does not serve")
            self._refresh[refresh_token] = token
            self._access[token] = self._issue_for(token)

    def _issue_for(self, tenant_token: str) -> _Issued:
        return _Issued(
            tenant_token, time.monotonic() + self.lifetime_s, self.spec.token_lifetime_calls
        )

    def check(self, token: str) -> None:
        """Raise `token_expired` for an expired rotating token; count a call against it."""
        with self._lock:
            issued = self._access.get(token)
            if issued is None:
                return  # a token that does not rotate
            if time.monotonic() >= issued.expires_at or issued.calls_left == 0:
                self.expired += 1
                raise SlackError("token_expired")
            if issued.calls_left is not None:
                issued.calls_left -= 1

    def oauth_access(self, args: dict[str, str]) -> dict:
        """`oauth.v2.access` with `grant_type=refresh_token`: a new pair, or Slack's error."""
        with self._lock:
            try:
                return self._refresh_pair(args)
            except SlackError:
                self.rejected += 1
                raise

    def _refresh_pair(self, args: dict[str, str]) -> dict:
        if not self.spec.client_id or args.get("client_id") != self.spec.client_id:
            raise SlackError("invalid_client_id")
        if args.get("client_secret") != self.spec.client_secret:
            raise SlackError("bad_client_secret")
        if args.get("grant_type") != "refresh_token":
            raise SlackError("invalid_grant_type")
        old = args.get("refresh_token") or ""
        tenant_token = self._refresh.pop(old, None)
        if tenant_token is None:
            raise SlackError("invalid_refresh_token")  # unknown, or spent already
        self._spent.add(old)
        serial = next(self._serial)
        access_token = f"xoxe.xoxb-1-{serial}-{secrets.token_hex(12)}"
        refresh_token = f"xoxe-1-{serial}-{secrets.token_hex(16)}"
        self._access[access_token] = self._issue_for(tenant_token)
        self._refresh[refresh_token] = tenant_token
        tenant = self.tenants[tenant_token]
        self.tenants[access_token] = tenant
        self.refreshes += 1
        team = tenant.workspace.team
        return {
            "ok": True,
            "app_id": "A0EMULATOR",
            "authed_user": {"id": team.bot_user_id},
            "scope": ",".join(tenant.api.config.scopes),
            "token_type": "bot",
            "access_token": access_token,
            "bot_user_id": team.bot_user_id,
            "refresh_token": refresh_token,
            "expires_in": max(1, round(self.lifetime_s)),
            "team": {"id": team.id, "name": team.name},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def secrets(self) -> set[str]:
        """Every secret of the app: tokens issued or seeded, refresh tokens, the client
        secret (tests assert that none of them reaches a log, an artifact or a table)."""
        with self._lock:
            seeds = {value for pair in self.spec.seeds for value in pair}
            return (set(self._access) | set(self._refresh) | self._spent | seeds) | {
                self.spec.client_secret
            }

    def snapshot(self) -> dict[str, int]:
        """Refreshes made, refreshes rejected, calls answered `token_expired`."""
        with self._lock:
            return {"refreshes": self.refreshes, "rejected": self.rejected, "expired": self.expired}
