"""Progress of a long load: at most one line per stage every `progress_seconds`.

dlt's own collector prints a block per stage and per task (resources, rows per table, jobs);
a backfill of hours needs one line now and then that says how far it is: rows and Slack calls
so far, and how fast the busiest method runs against its tier's bound, the ceiling of any
Slack pipeline.
"""

import logging
import time
from collections import Counter
from typing import Dict, Optional

from dlt.common.runtime.collector import Collector

from slack_source.run_stats import RunStats
from slack_source.settings import allowances

logger = logging.getLogger("dlt.slack.progress")
# dlt's counters that are not rows of a table
NOT_ROWS = ("Resources", "Files", "Items", "Jobs")


class RunProgress(Collector):
    """A dlt progress collector writing one line per `period` seconds to the run's log."""

    def __init__(
        self,
        period: float,
        stats: Optional[RunStats] = None,
        rate_limit_profile: str = "tiers",
        minute_seconds: float = 60.0,
    ) -> None:
        self.period = period
        self.stats = stats
        self.bounds = allowances(rate_limit_profile)
        self.minute_seconds = minute_seconds  # Slack's minute (shorter on the emulator)
        self.step = ""
        self.rows: Counter = Counter()
        self.started = self.last = time.monotonic()

    def _start(self, step: str) -> None:
        self.step = step
        self.rows = Counter()
        self.started = self.last = time.monotonic()

    def _stop(self) -> None:
        pass  # the run's summary says what was loaded

    def update(
        self,
        name: str,
        inc: int = 1,
        total: Optional[int] = None,
        inc_total: Optional[int] = None,
        message: Optional[str] = None,
        label: Optional[str] = None,
    ) -> None:
        if label is None and name not in NOT_ROWS:
            self.rows[name] += inc
        now = time.monotonic()
        if now - self.last >= self.period:
            self.last = now
            logger.info(self.line(now))

    def line(self, now: float) -> str:
        """`Extract: 45,000 rows (messages 44,000, users 1,000), 230 Slack calls, 3 min 10 s;
        conversations.replies at 48/min of its 50/min bound`"""
        stage = self.step.split()[0].capitalize() if self.step else "Load"
        parts = [f"{stage}: {sum(self.rows.values()):,} rows"]
        if self.rows:
            tables = ", ".join(f"{t} {n:,}" for t, n in self.rows.most_common(3))
            parts[0] += f" ({tables})"
        elapsed = now - self.started
        if self.stats is not None:
            parts.append(f"{sum(self.stats.calls.values()):,} Slack calls")
        parts.append(_duration(elapsed))
        text = ", ".join(parts)
        pace = self._pace(now)
        return f"{text}; {pace}" if pace else text

    def _pace(self, now: float) -> str:
        """The busiest paced method's calls per minute since the run began, against its bound."""
        if self.stats is None or not self.stats.calls:
            return ""
        minutes = max(now - self.stats.started_at, 1.0) / self.minute_seconds
        paced: Dict[str, int] = {m: n for m, n in self.stats.calls.items() if m in self.bounds}
        if not paced:
            return ""
        method, calls = max(paced.items(), key=lambda item: item[1])
        return f"{method} at {calls / minutes:.0f}/min of its {self.bounds[method]}/min bound"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"
