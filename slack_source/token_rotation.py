"""Slack token rotation: expiring access tokens renewed with single-use refresh tokens.

Once an app turns rotation on (it cannot be turned off), its access tokens (`xoxe.xoxb-…`)
expire after 12 hours and Slack answers `token_expired`. `oauth.v2.access` with
`grant_type=refresh_token`, the app's `client_id` and `client_secret` and the current refresh
token answers a new access token, a new refresh token and `expires_in`; the refresh token it
was given is spent. So the current pair must live where every worker and every run reads and
updates it (a `TokenStore`), and a refresh happens under the store's lock, re-reading the pair
first: two runs that find the token expired together make one refresh, not two (the second
would spend a refresh token that is already spent, and fail).

The configured refresh token is only the seed: once the store holds a pair descending from it,
the stored pair wins (a restarted worker continues with it). A different configured refresh
token (the app reinstalled) starts a new chain.

This module needs no Prefect: `MemoryTokenStore` serves one process, `FileTokenStore` the
processes of one machine. The Prefect-backed store (a Secret block and a global concurrency
limit) is `orchestration/token_store.py`.
"""

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager, Dict, Iterator, Optional

from dlt.sources.helpers.requests import Client

from .errors import SlackAuthError, SlackConfigError, SlackTransientError, error_from_payload
from .settings import DEFAULT_API_BASE_URL, TOKEN_REFRESH_MARGIN_S

logger = logging.getLogger("dlt.slack")
# dlt's requests client: 429, 5xx and dropped connections retried (Retry-After honoured); a
# last failed answer is returned, not raised, so that Slack's error body can be read.
_http = Client(raise_for_status=False, request_max_attempts=5)

OAUTH_METHOD = "oauth.v2.access"
REFRESH_TOKEN_PREFIX = "xoxe-"
# Which setting to name when Slack rejects the refresh: the refresh token, client id, secret.
REJECTED_SETTING = {
    "invalid_refresh_token": "refresh_token",
    "invalid_client_id": "client_id",
    "bad_client_secret": "client_secret",
}


def digest(secret: str) -> str:
    """A short one-way fingerprint of a secret: tells two seeds apart without storing one."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TokenPair:
    """What a store holds: the current access token, its refresh token and expiry. `repr`
    shows no token. `expires_at` None: unknown (a configured token, used until Slack says
    `token_expired`); `seed`: the digest of the configured refresh token the chain began with."""

    access_token: Optional[str] = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: Optional[float]
    lifetime_s: Optional[float]
    seed: str

    def due(self, now: float, margin_s: Optional[float] = None) -> bool:
        """True when the access token is missing, expired or expires within the margin
        (`TOKEN_REFRESH_MARGIN_S`, at most a quarter of its lifetime: short test tokens)."""
        if not self.access_token:
            return True
        if self.expires_at is None:
            return False
        if margin_s is None:
            margin_s = min(TOKEN_REFRESH_MARGIN_S, (self.lifetime_s or 0.0) / 4)
        return self.expires_at - now <= margin_s

    def as_dict(self) -> Dict[str, Any]:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "lifetime_s": self.lifetime_s,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, value: Any) -> Optional["TokenPair"]:
        """A stored pair, or None for anything that is not one (an empty or foreign value)."""
        if not isinstance(value, dict) or not value.get("refresh_token"):
            return None
        return cls(
            access_token=value.get("access_token") or None,
            refresh_token=str(value["refresh_token"]),
            expires_at=value.get("expires_at"),
            lifetime_s=value.get("lifetime_s"),
            seed=str(value.get("seed") or ""),
        )


class TokenStore:
    """Where the current pair lives, shared by everything that uses the installation, and
    the lock a refresh holds. `read`/`write` take and give `TokenPair.as_dict()` dicts."""

    def read(self) -> Optional[Dict[str, Any]]:
        raise NotImplementedError

    def write(self, pair: Dict[str, Any]) -> None:
        raise NotImplementedError

    def lock(self) -> ContextManager[None]:
        raise NotImplementedError


class MemoryTokenStore(TokenStore):
    """One process (bare dlt use, tests): a dict and a lock."""

    def __init__(self) -> None:
        self._pair: Optional[Dict[str, Any]] = None
        self._lock = threading.Lock()

    def read(self) -> Optional[Dict[str, Any]]:
        return dict(self._pair) if self._pair else None

    def write(self, pair: Dict[str, Any]) -> None:
        self._pair = dict(pair)

    def lock(self) -> ContextManager[None]:
        return self._lock


class FileTokenStore(TokenStore):
    """The processes of one machine (bare dlt use): a JSON file only its owner can read,
    replaced atomically, and an `flock` on a lock file beside it."""

    def __init__(self, path: "str | Path") -> None:
        self.path = Path(path)

    def read(self) -> Optional[Dict[str, Any]]:
        try:
            return json.loads(self.path.read_text())  # type: ignore[no-any-return]
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def write(self, pair: Dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(pair, file)
        os.replace(temporary, self.path)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as file:
            fcntl.flock(file, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(file, fcntl.LOCK_UN)


@dataclass(frozen=True)
class RotationCredentials:
    """The app's credentials and the seed, with the names of the settings they come from
    (for error messages, never the values). `repr` shows no secret."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_token: Optional[str] = field(default=None, repr=False)
    settings: Dict[str, str] = field(default_factory=dict)  # field -> setting name

    def setting(self, name: str) -> str:
        return self.settings.get(name, f"SOURCES__SLACK__{name.upper()}")


def check_rotation(credentials: RotationCredentials) -> RotationCredentials:
    """One line for a missing or malformed part of the rotation settings, never its value."""
    missing = [
        credentials.setting(name)
        for name in ("client_id", "client_secret")
        if not str(getattr(credentials, name) or "").strip()
    ]
    if missing:
        raise SlackConfigError(
            f"Token rotation needs {' and '.join(missing)} (the app's Basic Information page)"
            f" next to {credentials.setting('refresh_token')}"
        )
    refresh = str(credentials.refresh_token or "").strip()
    if not refresh.startswith(REFRESH_TOKEN_PREFIX) or not refresh.replace("-", "").isalnum():
        raise SlackConfigError(
            f"Malformed Slack refresh token: expected one starting with {REFRESH_TOKEN_PREFIX}"
            f" (check {credentials.setting('refresh_token')})"
        )
    return credentials


class TokenRotation:
    """The current access token of one installation, refreshed when due or expired.

    Thread-safe and shared by every client of a process (a local lock first, then the
    store's, which other processes honour too)."""

    def __init__(
        self,
        store: TokenStore,
        credentials: RotationCredentials,
        api_base_url: str = DEFAULT_API_BASE_URL,
        label: str = "Slack",
        timeout_s: float = 60.0,
    ) -> None:
        self.store = store
        self.credentials = check_rotation(credentials)
        self._url = api_base_url.rstrip("/") + "/" + OAUTH_METHOD
        self.label = label
        self.timeout_s = timeout_s
        self.refreshes = 0  # made by this process
        self._local = threading.Lock()
        self._seed = digest(credentials.refresh_token.strip())

    def access_token(self) -> str:
        """The stored access token, refreshed first when it expires within the margin."""
        pair = self._current()
        if not pair.due(time.time()):
            return pair.access_token  # type: ignore[return-value]
        with self._local, self.store.lock():
            pair = self._current()  # another run may have refreshed meanwhile
            if not pair.due(time.time()):
                return pair.access_token  # type: ignore[return-value]
            return self._refresh(pair)

    def after_expiry(self, expired: Optional[str]) -> str:
        """The token to retry with after Slack answered `token_expired` to `expired`: the
        stored one if another thread or run already replaced it, else a refreshed one."""
        with self._local, self.store.lock():
            pair = self._current()
            if pair.access_token and pair.access_token != expired and not pair.due(time.time(), 0):
                return pair.access_token
            return self._refresh(pair)

    # -- the pair --------------------------------------------------------------------------
    def _current(self) -> TokenPair:
        """The stored pair of this seed's chain, else the seed (a configured access token of
        unknown expiry, or none: refresh at once)."""
        stored = TokenPair.from_dict(self.store.read())
        if stored is not None and stored.seed == self._seed:
            return stored
        return TokenPair(
            access_token=(self.credentials.access_token or "").strip() or None,
            refresh_token=self.credentials.refresh_token.strip(),
            expires_at=None,
            lifetime_s=None,
            seed=self._seed,
        )

    def _refresh(self, pair: TokenPair) -> str:
        """Spend the pair's refresh token for a new pair and store it at once (the old
        refresh token is gone from this moment)."""
        answer = self._oauth_access(pair.refresh_token)
        lifetime = float(answer.get("expires_in") or 0) or None
        new = TokenPair(
            access_token=str(answer["access_token"]),
            refresh_token=str(answer["refresh_token"]),
            expires_at=time.time() + lifetime if lifetime else None,
            lifetime_s=lifetime,
            seed=self._seed,
        )
        self.store.write(new.as_dict())
        self.refreshes += 1
        logger.info(
            "Slack token refreshed (%s): the new access token expires in %s",
            self.label,
            f"{lifetime / 3600:.1f} h" if lifetime else "an unknown time",
        )
        return new.access_token  # type: ignore[return-value]

    def _oauth_access(self, refresh_token: str) -> Dict[str, Any]:
        """`oauth.v2.access` (POST form, no Bearer token); a rejection names the setting to
        fix and no value; Slack unreachable after the retries is a transient error."""
        response = _http.post(
            self._url,
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            # HTTP Basic, as Slack's reference recommends over client_id/client_secret fields
            auth=(self.credentials.client_id, self.credentials.client_secret),
            timeout=self.timeout_s,
        )
        if response.status_code == 429 or response.status_code >= 500:
            raise SlackTransientError(OAUTH_METHOD, f"HTTP {response.status_code}")
        try:
            payload = response.json()
        except ValueError:
            payload = {"ok": False, "error": f"HTTP {response.status_code}"}
        if not isinstance(payload, dict):
            payload = {"ok": False, "error": "malformed_response"}
        if payload.get("ok") and payload.get("access_token") and payload.get("refresh_token"):
            return payload
        error = str(payload.get("error") or "unknown_error")
        if error in REJECTED_SETTING:
            setting = self.credentials.setting(REJECTED_SETTING[error])
            raise SlackAuthError(OAUTH_METHOD, error, {"error": error}, setting)
        raise error_from_payload(OAUTH_METHOD, {"error": error})
