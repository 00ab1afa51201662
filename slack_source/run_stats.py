"""Counters of one run (calls, 429s, skipped channels, rows), shared by the client and resources.

The flow reads them after a load to publish the run summary; they hold no Slack payloads and no
secrets, so they are safe to log and to put in Prefect artifacts.
"""

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class RunStats:
    calls: Counter = field(default_factory=Counter)
    ratelimited: Counter = field(default_factory=Counter)
    retries: Counter = field(default_factory=Counter)
    seconds_waited_for_limits: float = 0.0
    messages_per_channel: Counter = field(default_factory=Counter)
    replies_per_channel: Counter = field(default_factory=Counter)
    deleted_per_channel: Counter = field(default_factory=Counter)
    threads_refreshed: int = 0
    skipped_channels: Dict[str, str] = field(default_factory=dict)
    joined_channels: List[str] = field(default_factory=list)
    failed_channels: Dict[str, str] = field(default_factory=dict)
    deferred_channels: List[str] = field(default_factory=list)  # left for the next load
    channel_names: Dict[str, str] = field(default_factory=dict)  # id -> name, for summaries
    # Slack's caps found by the client under `tiers` (slack_source/caps.py): profile and signal
    detected_rate_limits: Optional[str] = None
    detected_by: Optional[str] = None
    started_at: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_call(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1

    def count_ratelimited(self, method: str) -> None:
        with self._lock:
            self.ratelimited[method] += 1

    def count_retry(self, method: str) -> None:
        with self._lock:
            self.retries[method] += 1

    def add_wait(self, seconds: float) -> None:
        with self._lock:
            self.seconds_waited_for_limits += seconds

    def count_rows(self, counter_name: str, channel: str, n: int) -> None:
        with self._lock:
            getattr(self, counter_name)[channel] += n

    def count_thread_refresh(self) -> None:
        with self._lock:
            self.threads_refreshed += 1

    def skip_channel(self, channel: str, reason: str) -> None:
        with self._lock:
            self.skipped_channels[channel] = reason

    def defer_channel(self, channel_id: str) -> None:
        with self._lock:
            self.deferred_channels.append(channel_id)

    def name_channel(self, channel_id: str, name: str) -> None:
        with self._lock:
            self.channel_names[channel_id] = name

    def fail_channel(self, channel: str, reason: str) -> None:
        with self._lock:
            self.failed_channels[channel] = reason

    def detect_rate_limits(self, profile: str, signal: str) -> None:
        with self._lock:
            self.detected_rate_limits = profile
            self.detected_by = signal

    def as_dict(self) -> Dict[str, Any]:
        """A JSON-ready snapshot for summaries and artifacts."""
        with self._lock:
            return {
                "api_calls": dict(self.calls),
                "ratelimited_429": dict(self.ratelimited),
                "retries": dict(self.retries),
                "seconds_waited_for_limits": round(self.seconds_waited_for_limits, 3),
                "messages_per_channel": dict(self.messages_per_channel),
                "replies_per_channel": dict(self.replies_per_channel),
                "deleted_per_channel": dict(self.deleted_per_channel),
                "threads_refreshed": self.threads_refreshed,
                "skipped_channels": dict(self.skipped_channels),
                "joined_channels": list(self.joined_channels),
                "failed_channels": dict(self.failed_channels),
                "deferred_channels": list(self.deferred_channels),
                "channel_names": dict(self.channel_names),
                "detected_rate_limits": self.detected_rate_limits,
                "detected_by": self.detected_by,
                "elapsed_seconds": round(time.monotonic() - self.started_at, 3),
            }
