"""Slack's non-Marketplace caps, detected from Slack's own answers instead of guessed.

A commercially distributed app that is not Marketplace-approved gets 1 `conversations.history`
/ `conversations.replies` call a minute and 15 messages a page; an internal app keeps Tier 3.
Which one a token is cannot be asked of Slack, and a wrong `rate_limit_profile` costs either a
429 storm (paced at Tier 3 against 1 a minute) or a run ten times slower (the other way round).
So under `tiers` the client watches two signals and switches those methods to the
non-Marketplace allowance for the rest of the run:

- a page: exactly `non_marketplace_page_size` (15) messages although more were asked for and
  more remain (`has_more` / `next_cursor`). Slack may return short pages, but one of exactly the
  cap's size with more to come is the cap itself; one such page is enough, and costs no 429.
- 429s whose `Retry-After` fits one call a minute: paced at Tier 3 (a call every 1.2 s), a
  Tier-3 limiter asks for about a slot; more than a quarter of a minute, twice, is the 1-a-minute
  limit (a channel too small to fill a capped page shows only this way). Two, not one, so that a
  single long wait (another client of the same token) does not slow a whole run.

Detection is one-way and happens once per client; the caller (the flow) hands the detected
profile to the clients of later tasks, so each run pays for it at most once.
"""

import threading
from typing import Any, Callable, Dict, Optional
from urllib.parse import parse_qs, urlsplit

from .settings import SLACK_METHODS

CAPPED_METHODS = frozenset(
    name for name, method in SLACK_METHODS.items() if method.non_marketplace_per_minute
)
# A 429's Retry-After, as a share of Slack's minute, above which it fits 1 call a minute
RETRY_AFTER_SIGNAL_SHARE = 0.25
RETRY_AFTER_SIGNALS = 2
DETECTED_PROFILE = "non_marketplace"


class CapDetector:
    """Watches history/replies answers of one client; calls `on_detect(signal)` once."""

    def __init__(self, minute_seconds: float, on_detect: Callable[[str], None]) -> None:
        self._minute = minute_seconds
        self._on_detect = on_detect
        self._long_waits = 0
        self._lock = threading.Lock()
        self.signal: Optional[str] = None  # what gave the caps away, once detected

    def page(self, method: str, payload: Dict[str, Any], url: str) -> None:
        """A successful answer of `method` (called for every page: cheap unless capped)."""
        if self.signal is not None or method not in CAPPED_METHODS:
            return
        cap = SLACK_METHODS[method].non_marketplace_page_size
        messages = payload.get(SLACK_METHODS[method].data_key or "")
        if cap is None or not isinstance(messages, list) or len(messages) != cap:
            return
        more = payload.get("has_more") or (payload.get("response_metadata") or {}).get(
            "next_cursor"
        )
        asked = _requested_limit(url) if more else 0
        if asked <= cap:
            return
        self._detect(f"a {method} page held {cap} messages of {asked} asked, with more to come")

    def ratelimited(self, method: str, retry_after: float) -> None:
        """A 429 of `method` with its Retry-After in seconds."""
        if self.signal is not None or method not in CAPPED_METHODS or self._minute <= 0:
            return
        if retry_after < self._minute * RETRY_AFTER_SIGNAL_SHARE:
            return
        with self._lock:
            self._long_waits += 1
            if self._long_waits < RETRY_AFTER_SIGNALS:
                return
        self._detect(
            f"{RETRY_AFTER_SIGNALS} answers of HTTP 429 to {method} asked to wait"
            f" {retry_after:.1f} s, as for 1 call a minute"
        )

    def _detect(self, signal: str) -> None:
        with self._lock:
            if self.signal is not None:
                return
            self.signal = signal
        self._on_detect(signal)


def _requested_limit(url: str) -> int:
    values = parse_qs(urlsplit(url).query).get("limit")
    try:
        return int(values[0]) if values else 0
    except ValueError:
        return 0
