"""Per-method rate limits with Slack's tiers and the 2025 non-Marketplace profile.

Sliding window: a request is allowed when fewer than ``allowance`` requests of the same method
were accepted in the last window (one minute times ``time_scale``). To absorb arrival jitter,
entries leave the window half a slot early (slot = window / allowance): a client pacing at
exactly ``allowance`` per minute is never refused, while a burst gets at most ``allowance`` per
``window - slot/2`` (about 1% looser than a strict window for Tier 3). Rejected requests do not
use the allowance.
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
    "usergroups.list": 20,  # Tier 2
    "auth.test": 600,  # "special": hundreds per minute
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


def format_retry_after(seconds: float, fractional: bool) -> str:
    """``Retry-After`` value: Slack's whole seconds rounded up (at least 1), or milliseconds.

    Whole seconds over-state short scaled waits (0.2 s becomes 1 s) but keep Slack's format;
    benchmarks with a small ``time_scale`` should use the fractional form.
    """
    if fractional:
        return f"{max(math.ceil(seconds * 1000) / 1000, 0.001):.3f}"
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
        span = self.window - self.window / n / 2
        now = self.clock()
        with self._lock:
            log = self._log.setdefault(method, deque())
            while log and log[0] <= now - span:
                log.popleft()
            if len(log) < n:
                log.append(now)
                return None
            return max(log[0] + span - now, 0.0)

    def reset(self) -> None:
        """Forget all recorded requests."""
        with self._lock:
            self._log.clear()
