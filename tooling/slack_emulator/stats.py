"""Cheap request counters: per method, 429s per method, injected faults."""

from __future__ import annotations

import threading
from collections import Counter


class RequestStats:
    """Counters behind ``EmulatorServer.stats()`` (control endpoints are not counted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._ratelimited: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()
        self._faults_by_method: Counter[str] = Counter()

    def request(self, method: str) -> None:
        """One API request of ``method`` arrived (whatever its outcome)."""
        with self._lock:
            self._requests[method] += 1

    def ratelimited(self, method: str) -> None:
        """An HTTP 429 was sent."""
        with self._lock:
            self._ratelimited[method] += 1

    def fault(self, method: str, kind: str) -> None:
        """A fault of ``kind`` was injected."""
        with self._lock:
            self._faults[kind] += 1
            self._faults_by_method[method] += 1

    def request_counts(self) -> dict[str, int]:
        """Requests per method."""
        with self._lock:
            return dict(self._requests)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """All counters as plain dicts."""
        with self._lock:
            return {
                "requests": dict(self._requests),
                "ratelimited": dict(self._ratelimited),
                "faults": dict(self._faults),
                "faults_by_method": dict(self._faults_by_method),
            }

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            for c in (self._requests, self._ratelimited, self._faults, self._faults_by_method):
                c.clear()
