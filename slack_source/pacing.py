"""Per-method request pacing: Slack limits each method separately, so each gets its own clock."""

import threading
import time
from typing import Dict, Mapping


class MethodPacer:
    """Spaces the requests of each method evenly just under its allowance per minute.

    Pacing instead of hammering until 429 keeps every method at its bound without wasted calls;
    methods never wait for each other, so history and replies proceed side by side.
    `minute_seconds` shrinks Slack's minute for the emulator's compressed time; 0 turns pacing off.
    """

    def __init__(
        self,
        allowances: Mapping[str, int],
        minute_seconds: float = 60.0,
        safety_factor: float = 1.0,
    ) -> None:
        self._intervals: Dict[str, float] = {
            method: (minute_seconds / per_minute) * safety_factor
            for method, per_minute in allowances.items()
            if per_minute > 0 and minute_seconds > 0
        }
        self._next_slot: Dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, method: str) -> float:
        """Block until `method` may be called again; return the seconds waited."""
        interval = self._intervals.get(method)
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(method, now))
            if interval is not None or slot > now:
                self._next_slot[method] = slot + (interval or 0.0)
        delay = slot - now
        if delay > 0:
            time.sleep(delay)
        return delay

    def hold(self, method: str, seconds: float) -> None:
        """Slack said Retry-After: no request of this method before that many seconds."""
        with self._lock:
            until = time.monotonic() + seconds
            self._next_slot[method] = max(self._next_slot.get(method, 0.0), until)
