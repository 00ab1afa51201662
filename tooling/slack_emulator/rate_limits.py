"""Per-method rate limits with Slack's tiers and the 2025 non-Marketplace profile.

Strict sliding window: a request is allowed when fewer than ``allowance`` requests of the same
method were accepted in the window that ends with it (one minute times ``time_scale``, the
earlier end open). So no window of that length ever holds more accepted requests than the
allowance, whatever the arrival pattern: a client must pace at or under the allowance, with a
margin for its own jitter. Rejected requests do not use the allowance.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

TIERS: dict[str, int] = {
    "users.list": 20,  # Tier 2
    "conversations.list": 20,  # Tier 2
    "conversations.history": 50,  # Tier 3
    "conversations.replies": 50,  # Tier 3
    "conversations.join": 50,  # Tier 3
    "conversations.members": 100,  # Tier 4
    "conversations.info": 50,  # Tier 3
    "users.info": 100,  # Tier 4
    "usergroups.list": 20,  # Tier 2
    "auth.test": 600,  # "special": hundreds per minute
    "auth.teams.list": 20,  # Tier 2 (org-wide installs: tooling/slack_emulator/org.py)
}
NON_MARKETPLACE: dict[str, int] = {
    **TIERS,
    "conversations.history": 1,
    "conversations.replies": 1,
}
PROFILES: dict[str, dict[str, int]] = {
    "off": {},
    "tiers": TIERS,
    "non_marketplace": NON_MARKETPLACE,
}


def format_retry_after(seconds: float) -> str:
    """``Retry-After`` value: whole seconds as Slack sends them (slack_sdk's retry handler does
    ``int()`` on it), the wait rounded up, at least 1.

    ``seconds`` is the real (scaled) wait: with ``time_scale`` a Slack minute lasts
    ``60 * time_scale`` real seconds and the header says how many real seconds to wait, so it
    over-states waits under a second (0.2 s becomes 1 s). A client that honours it waits a
    little long, never too short.
    """
    return str(max(1, math.ceil(seconds - 1e-9)))


class RateLimiter:
    """Sliding-window limiter, one window per method."""

    def __init__(
        self,
        profile: str = "off",
        time_scale: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowances = PROFILES[profile]
        self.window = 60.0 * time_scale
        self.clock = clock
        self._lock = threading.Lock()
        self._log: dict[str, deque[float]] = {}

    def allowance(self, method: str) -> int | None:
        """Requests per window for ``method`` (``None``: unlimited)."""
        return self.allowances.get(method)

    def acquire(self, method: str) -> float | None:
        """Record a request; ``None`` if allowed, else real seconds until one would be."""
        n = self.allowances.get(method)
        if n is None:
            return None
        now = self.clock()
        with self._lock:
            log = self._log.setdefault(method, deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) < n:
                log.append(now)
                return None
            return self.window - (now - log[0])

    def reset(self) -> None:
        """Forget all recorded requests."""
        with self._lock:
            self._log.clear()
