"""Per-method request pacing: Slack limits each method separately, so each gets its own clock."""

import threading
import time
from collections import deque
from typing import Deque, Dict, Mapping


class MethodPacer:
    """Spaces the requests of each method evenly just under its allowance per minute.

    Pacing instead of hammering until 429 keeps every method at its bound without wasted calls;
    methods never wait for each other, so history and replies proceed side by side.
    `minute_seconds` shrinks Slack's minute for the emulator's compressed time; 0 turns pacing off.

    Even spacing alone is not enough: a request that leaves late (its thread woke late, the
    process was busy) and the next one on time arrive closer than a slot. Slack counts a
    sliding minute, so each request also waits until the one `allowance` requests before it
    left a (safety-stretched) minute ago, measured when it actually left.
    """

    def __init__(
        self,
        allowances: Mapping[str, int],
        minute_seconds: float = 60.0,
        safety_factor: float = 1.0,
    ) -> None:
        self._intervals: Dict[str, float] = {}
        self._allowances: Dict[str, int] = {}
        for method, per_minute in allowances.items():
            if per_minute > 0 and minute_seconds > 0:
                self._intervals[method] = (minute_seconds / per_minute) * safety_factor
                self._allowances[method] = per_minute
        self._minute = minute_seconds
        self._safety = safety_factor
        self._window = minute_seconds * safety_factor
        self._next_slot: Dict[str, float] = {}
        self._sent: Dict[str, Deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, method: str) -> float:
        """Block until `method` may be called again; return the seconds waited."""
        interval = self._intervals.get(method)
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot.get(method, now))
            if interval is not None or slot > now:
                self._next_slot[method] = slot + (interval or 0.0)
        waited = max(0.0, slot - now)
        if waited:
            time.sleep(waited)
        if interval is not None:
            waited += self._wait_for_sliding_minute(method)
        return waited

    def _wait_for_sliding_minute(self, method: str) -> float:
        """Checked when the request is about to leave, then recorded as sent."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                sent = self._sent.get(method)
                if sent is None:
                    sent = self._sent[method] = deque(maxlen=self._allowances[method])
                free_at = sent[0] + self._window if len(sent) == sent.maxlen else now
                if free_at <= now:
                    sent.append(now)
                    return waited
            time.sleep(free_at - now)
            waited += free_at - now

    def set_allowances(self, allowances: Mapping[str, int]) -> None:
        """New allowances for some methods, from now on (the client found the app's real
        limits mid-run). Threads already past `wait` are not recalled; the next request of
        each method waits a new slot after the last one that left."""
        with self._lock:
            for method, per_minute in allowances.items():
                if per_minute <= 0 or self._minute <= 0:
                    continue
                interval = (self._minute / per_minute) * self._safety
                self._intervals[method] = interval
                self._allowances[method] = per_minute
                sent = self._sent.get(method)
                if sent is not None:
                    recent = list(sent)[-per_minute:]
                    self._sent[method] = deque(recent, maxlen=per_minute)
                    if recent:
                        slot = recent[-1] + interval
                        self._next_slot[method] = max(self._next_slot.get(method, 0.0), slot)

    def hold(self, method: str, seconds: float) -> None:
        """Slack said Retry-After: no request of this method before that many seconds."""
        with self._lock:
            until = time.monotonic() + seconds
            self._next_slot[method] = max(self._next_slot.get(method, 0.0), until)
