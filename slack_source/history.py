"""Channel history with a lookback window: what to re-read, what was deleted, what to remember.

Per channel the state keeps the newest top-level `ts` loaded and the top-level `ts` values inside
the lookback window. Each run re-reads `(newest - lookback, now]`, so edits, reply counts and
reactions inside the window are refreshed by merge, and a `ts` remembered but no longer returned
is a deleted message.
"""

from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Set

from .message_rows import deletion_row, shift_ts, to_rows


@dataclass(frozen=True)
class Window:
    """Exclusive `oldest`/`latest` bounds of one history read (Slack's semantics)."""

    oldest: str
    latest: Optional[str]

    def contains(self, ts: str) -> bool:
        return ts > self.oldest and (self.latest is None or ts < self.latest)

    def params(self, channel_id: str) -> Dict[str, str]:
        params = {"channel": channel_id, "oldest": self.oldest}
        if self.latest is not None:
            params["latest"] = self.latest
        return params


def plan_window(
    channel_state: Dict[str, Any],
    start_ts: Optional[str],
    end_ts: Optional[str],
    initial_ts: str,
    lookback_seconds: float,
) -> Window:
    """Explicit start wins; else continue from state minus the lookback; else start at initial."""
    if start_ts is not None:
        oldest = shift_ts(start_ts, -0.000001)
    elif channel_state.get("newest_ts"):
        oldest = shift_ts(channel_state["newest_ts"], -lookback_seconds)
    else:
        oldest = shift_ts(initial_ts, -0.000001)
    return Window(oldest=oldest, latest=end_ts)


class ChannelHistoryReader:
    """Reads one channel's window page by page and updates its state when the read completes."""

    def __init__(
        self,
        channel_id: str,
        window: Window,
        channel_state: Dict[str, Any],
        lookback_seconds: float,
    ) -> None:
        self.channel_id = channel_id
        self.window = window
        self.state = channel_state
        self.lookback_seconds = lookback_seconds
        self.remembered: Set[str] = set(channel_state.get("recent", ()))
        self.newest: Optional[str] = channel_state.get("newest_ts")
        self.seen: Set[str] = set()
        self.rows = 0

    def pages(
        self, history_pages: Iterator[List[Dict[str, Any]]]
    ) -> Iterator[List[Dict[str, Any]]]:
        for page in history_pages:
            if not page:
                continue
            rows = to_rows(page, self.channel_id)
            self._remember(rows)
            self.rows += len(rows)
            yield rows

    def _remember(self, rows: List[Dict[str, Any]]) -> None:
        page_newest = max(row["ts"] for row in rows)
        if self.newest is None or page_newest > self.newest:
            self.newest = page_newest
        cutoff = shift_ts(self.newest, -self.lookback_seconds)
        for row in rows:
            ts = row["ts"]
            if ts > cutoff or ts in self.remembered:
                self.seen.add(ts)

    def finish(self) -> List[Dict[str, Any]]:
        """Commit the read to state; return deletion rows for remembered `ts` gone from Slack."""
        deleted = sorted(
            ts for ts in self.remembered if self.window.contains(ts) and ts not in self.seen
        )
        if self.newest is not None:
            cutoff = shift_ts(self.newest, -self.lookback_seconds)
            keep = (self.remembered - set(deleted)) | self.seen
            self.state["newest_ts"] = self.newest
            self.state["recent"] = sorted(ts for ts in keep if ts > cutoff)
        return [deletion_row(self.channel_id, ts) for ts in deleted]
