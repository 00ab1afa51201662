"""Slack Web API access: dlt's requests Session with Slack's cursor, errors, retries and pacing.

HTTP plumbing is dlt's (`dlt.sources.helpers.requests.Session`, `BearerTokenAuth`); this
module adds only what is Slack-specific: the `next_cursor` loop, `ok: false` bodies become
typed errors, 429/5xx/malformed bodies are retried (Retry-After honoured exactly), and every
attempt waits for its method's pacing slot.

Why not `RESTClient.paginate`: it adds CPU to every call on top of the HTTP request (a deep
copy of the paginator, JSONPath selection, two formatted log records per page), which adds up
with one `conversations.replies` call per changed thread (tooling/bench/RESULTS.md); Slack's
cursor rule is four lines (see `pages`).
"""

import logging
import os
import random
import re
from typing import Any, Dict, Iterator, List, Mapping, Optional

import dlt
import orjson
import requests
from dlt.common.configuration.inject import with_config
from dlt.sources.helpers.requests.session import Session
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from requests.exceptions import ChunkedEncodingError, ConnectionError, Timeout
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from .caps import CAPPED_METHODS, DETECTED_PROFILE, CapDetector
from .errors import SlackConfigError, SlackTransientError, error_from_payload
from .pacing import MethodPacer
from .run_stats import RunStats
from .settings import (
    DEFAULT_API_BASE_URL,
    PACING_SAFETY_FACTOR,
    RATE_LIMIT_PROFILES,
    RETRY_BACKOFF_SECONDS,
    RETRY_MAX_BACKOFF_SECONDS,
    SLACK_CALL_ATTEMPTS,
    SLACK_METHODS,
    TOKEN_PREFIXES,
    allowances,
    page_sizes,
)
from .token_rotation import TokenRotation

logger = logging.getLogger("dlt.slack")

# A call answered `token_expired` is retried with a new token at most this often.
TOKEN_EXPIRED_RETRIES = 3
RETRYABLE = (SlackTransientError, ConnectionError, Timeout, ChunkedEncodingError)
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9\-_.]+$")


def method_of(url: str) -> str:
    """`https://slack.com/api/conversations.history?x=1` -> `conversations.history`."""
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def check_token(token: Optional[str]) -> str:
    """Reject a missing or malformed token before any call; the message never echoes it."""
    if not token or not str(token).strip():
        raise SlackConfigError(
            "No Slack token: set SOURCES__SLACK__ACCESS_TOKEN or sources.slack.access_token"
            " in .dlt/secrets.toml"
        )
    token = str(token).strip()
    if not token.startswith(TOKEN_PREFIXES) or not _TOKEN_SHAPE.match(token):
        raise SlackConfigError(
            "Malformed Slack token: expected a token starting with one of "
            f"{', '.join(TOKEN_PREFIXES)} (check SOURCES__SLACK__ACCESS_TOKEN)"
        )
    return token


class PacedAdapter(HTTPAdapter):
    """Waits for the method's pacing slot before every attempt, retries included."""

    def __init__(self, pacer: MethodPacer, stats: RunStats, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pacer = pacer
        self.stats = stats

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        method = method_of(request.url or "")
        waited = self.pacer.wait(method)
        if waited:
            self.stats.add_wait(waited)
        self.stats.count_call(method)
        return super().send(request, *args, **kwargs)


class SlackClient:
    """One Slack workspace, one token: paged and single calls with Slack's rules applied."""

    def __init__(
        self,
        access_token: str,
        api_base_url: str,
        *,
        rate_limit_profile: str = "tiers",
        minute_seconds: float = 60.0,
        max_attempts: int = SLACK_CALL_ATTEMPTS,
        backoff_seconds: float = RETRY_BACKOFF_SECONDS,
        max_backoff_seconds: float = RETRY_MAX_BACKOFF_SECONDS,
        timeout_seconds: float = 60.0,
        stats: Optional[RunStats] = None,
        team_id: Optional[str] = None,
        token_rotation: Optional[TokenRotation] = None,
    ) -> None:
        token = check_token(access_token)
        if not re.match(r"https?://[^/\s]+", str(api_base_url or "")):
            raise SlackConfigError(
                f"sources.slack.api_base_url must be an http(s) URL such as"
                f" {DEFAULT_API_BASE_URL}, not {str(api_base_url)!r}"
            )
        if rate_limit_profile not in RATE_LIMIT_PROFILES:
            raise SlackConfigError(
                f"Unknown rate_limit_profile '{rate_limit_profile}': use one of "
                f"{', '.join(RATE_LIMIT_PROFILES)}"
            )
        self.stats = stats or RunStats()
        self.page_sizes: Mapping[str, int] = page_sizes(rate_limit_profile)
        self.pacer = MethodPacer(
            allowances(rate_limit_profile), minute_seconds, safety_factor=PACING_SAFETY_FACTOR
        )
        self._backoff = (backoff_seconds, max_backoff_seconds)
        # `tiers` watches for Slack's non-Marketplace caps (slack_source/caps.py); an explicit
        # profile is taken as said.
        self.caps: Optional[CapDetector] = (
            CapDetector(minute_seconds, self._switch_to_detected_caps)
            if rate_limit_profile == "tiers"
            else None
        )
        session = Session(timeout=timeout_seconds, raise_for_status=False)
        adapter = PacedAdapter(self.pacer, self.stats, pool_maxsize=16)
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        # Every call goes to one host: resolve proxy settings from the environment once, not
        # per request (requests re-reads them on each send, ~5 % of extract time).
        session.proxies.update(requests.utils.get_environ_proxies(api_base_url))
        session.trust_env = False
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get(
            "CURL_CA_BUNDLE", True
        )
        session.send = Retrying(  # type: ignore[method-assign]
            retry=retry_if_exception_type(RETRYABLE),
            wait=self._wait_before_retry,
            stop=stop_after_attempt(max_attempts),
            before_sleep=self._log_retry,
            reraise=True,
        ).wraps(session.send)
        session.auth = BearerTokenAuth(token)
        session.hooks["response"] = [self._check_response]
        self._session = session
        self._base = api_base_url if api_base_url.endswith("/") else api_base_url + "/"
        # The token's scopes as Slack last named them (`x-oauth-scopes`); None until a
        # response carried the header (a proxy may strip it: unknown, not "no scopes").
        self.granted_scopes: Optional[frozenset] = None
        # Enterprise Grid: the workspace an org-level token reads (sent on team-scoped methods)
        self.team_id = team_id or None
        # Token rotation: on `token_expired` the Bearer token is swapped and the call retried
        self.rotation = token_rotation

    # -- calls -----------------------------------------------------------------------------
    def pages(
        self, method: str, params: Optional[Dict[str, Any]] = None
    ) -> Iterator[List[Dict[str, Any]]]:
        """Every page of a cursor-paginated method, each as the list under its data key."""
        data_key = SLACK_METHODS[method].data_key or ""
        query = dict(params or {})
        if self.team_id and SLACK_METHODS[method].team_scoped:
            query.setdefault("team_id", self.team_id)
        if method in self.page_sizes:
            query.setdefault("limit", self.page_sizes[method])
        url = self._base + method
        while True:
            logger.debug("Slack %s %s", method, query)
            payload = self._session.get(url, params=query).json()
            yield payload.get(data_key) or []
            cursor = (payload.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return
            query["cursor"] = cursor

    def call(self, method: str, params: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """One non-paginated call (POST form, as Slack's SDKs do); returns the parsed body."""
        response = self._session.post(self._base + method, data=params or {})
        return response.json()  # type: ignore[no-any-return]

    # -- Slack's answer rules --------------------------------------------------------------
    def _check_response(self, response: Response, *args: Any, **kwargs: Any) -> Response:
        """Turn Slack's answer into data or a typed error; parse the JSON body once."""
        method = method_of(response.url)
        status = response.status_code
        if status == 429:
            retry_after = _retry_after_seconds(response)
            self.stats.count_ratelimited(method)
            self.pacer.hold(method, retry_after)
            if self.caps is not None:
                self.caps.ratelimited(method, retry_after)
            raise SlackTransientError(method, "HTTP 429 ratelimited", response, retry_after)
        if status >= 500:
            raise SlackTransientError(method, f"HTTP {status}", response)
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise SlackTransientError(
                method, f"HTTP {status} with a malformed JSON body", response
            ) from None
        if not isinstance(payload, dict):
            raise SlackTransientError(method, "response body is not a JSON object", response)
        if not payload.get("ok"):
            if payload.get("error") == "token_expired" and self._may_refresh(response):
                return self._retry_refreshed(response, kwargs)
            if payload.get("error") == "ratelimited":
                self.stats.count_ratelimited(method)
                raise SlackTransientError(method, "ratelimited", response)
            raise error_from_payload(method, payload)
        if self.caps is not None:
            self.caps.page(method, payload, response.url)
        scopes = response.headers.get("x-oauth-scopes")
        if scopes is not None:
            self.granted_scopes = frozenset(s.strip() for s in scopes.split(",") if s.strip())
        response.json = lambda *a, **k: payload  # type: ignore[method-assign]
        return response

    def _may_refresh(self, response: Response) -> bool:
        """Rotation is on and this call has not been retried with new tokens too often (a
        token that expires again at once: a wrong clock, or other threads' calls using up a
        test's tokens of a few calls)."""
        retried = getattr(response.request, "_refreshed", 0)
        return self.rotation is not None and retried < TOKEN_EXPIRED_RETRIES

    def _retry_refreshed(self, response: Response, send_options: Dict[str, Any]) -> Response:
        """The same call again with the refreshed token (or the one another thread or run
        refreshed already): the run goes on with the pages it has, none lost or read twice.
        Later calls of every thread use the new token too."""
        assert self.rotation is not None
        used = (response.request.headers.get("Authorization") or "").partition(" ")[2]
        token = check_token(self.rotation.after_expiry(used))
        self._session.auth.token = token  # type: ignore[union-attr]
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {token}"
        retry._refreshed = getattr(response.request, "_refreshed", 0) + 1  # type: ignore[attr-defined]
        logger.info("Slack %s: token expired; retrying with the new one", method_of(retry.url))
        return self._session.send(retry, **send_options)

    def _switch_to_detected_caps(self, signal: str) -> None:
        """Pace history and replies at the non-Marketplace allowance from now on (the other
        threads' next calls included: the pacer is shared) and ask for pages of its size."""
        self.pacer.set_allowances(
            {m: n for m, n in allowances(DETECTED_PROFILE).items() if m in CAPPED_METHODS}
        )
        self.page_sizes = {**self.page_sizes, **{
            m: n for m, n in page_sizes(DETECTED_PROFILE).items() if m in CAPPED_METHODS
        }}  # fmt: skip
        self.stats.detect_rate_limits(DETECTED_PROFILE, signal)
        logger.warning(
            "Slack rate limits: this app gets the non-Marketplace limits (%s): "
            "conversations.history and conversations.replies paced at 1 call a minute for the "
            'rest of the run; set sources.slack.rate_limit_profile = "non_marketplace" to '
            "start so",
            signal,
        )

    def _wait_before_retry(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, SlackTransientError) and error.retry_after is not None:
            return error.retry_after  # Slack said exactly how long; the pacer holds too
        base, cap = self._backoff
        return min(cap, base * 2 ** (state.attempt_number - 1)) * random.uniform(0.5, 1.0)

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        method = getattr(error, "method", None) or _method_of_failed_request(error)
        self.stats.count_retry(method)
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "Slack %s: %s; retry %d in %.2fs",
            method,
            _describe_transient(error),
            state.attempt_number,
            wait,
        )


def _method_of_failed_request(error: Optional[BaseException]) -> str:
    """The Slack method a connection-level failure (reset, timeout) was calling."""
    request = getattr(error, "request", None)
    url = getattr(request, "url", None)
    return method_of(url) if url else "request"


def _retry_after_seconds(response: Response) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "1")))
    except ValueError:
        return 1.0


def _describe_transient(error: Optional[BaseException]) -> str:
    if isinstance(error, SlackTransientError):
        return error.reason
    return type(error).__name__ if error else "unknown error"


@with_config(sections=("sources", "slack"))
def make_client(
    access_token: str = dlt.secrets.value,
    api_base_url: str = DEFAULT_API_BASE_URL,
    *,
    rate_limit_profile: str = "tiers",
    rate_limit_minute_seconds: float = 60.0,
    max_attempts: int = SLACK_CALL_ATTEMPTS,
    stats: Optional[RunStats] = None,
    team_id: Optional[str] = None,
    token_rotation: Optional[TokenRotation] = None,
) -> SlackClient:
    """A client paced for the app's rate-limit profile; unset arguments come from
    `sources.slack.*` config (env `SOURCES__SLACK__*`), like the source's own.
    `token_rotation`: the installation's rotating token (`access_token` is its current one)."""
    return SlackClient(
        access_token,
        api_base_url,
        rate_limit_profile=rate_limit_profile,
        minute_seconds=rate_limit_minute_seconds,
        max_attempts=max_attempts,
        stats=stats,
        team_id=team_id,
        token_rotation=token_rotation,
    )
