"""Channel history with a lookback window: what to re-read, what was deleted, what to remember.

Per channel the state keeps the newest top-level `ts` loaded and the top-level `ts` values of
the range the last daily run read (`recent`, packed into one string by `pack_ts`). Each daily
run re-reads at least `lookback_days` back from the newest `ts`, and finishes the page that
reaches that point: the first page (up to 999 messages) is paid for anyway, and in a quiet
channel it reaches weeks further back at no extra call, up to `max_lookback_days`. Edits,
reply counts and reactions in the range read are refreshed by merge, and a `ts` remembered
inside that range but no longer returned is a deleted message.
"""

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Set, TypeVar

from .message_rows import deletion_row, pack_ts, shift_ts, to_rows, unpack_ts

ONE_MICROSECOND = 0.000001
Page = TypeVar("Page")


@dataclass(frozen=True)
class Window:
    """Exclusive `oldest`/`latest` bounds of one history read (Slack's semantics).

    `floor`, on a daily read, is where the read may stop: once a page reaches it, no further
    page is requested. None reads the whole window (backfills, first loads)."""

    oldest: str
    latest: Optional[str]
    floor: Optional[str] = None

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
    max_lookback_seconds: float = 0.0,
) -> Window:
    """Explicit start wins; else continue from state: at least `lookback_seconds` back, at most
    `max_lookback_seconds`; else start at initial."""
    if start_ts is not None:
        return Window(oldest=shift_ts(start_ts, -ONE_MICROSECOND), latest=end_ts)
    newest = channel_state.get("newest_ts")
    if newest:
        reach = max(lookback_seconds, max_lookback_seconds)
        return Window(
            oldest=shift_ts(newest, -reach),
            latest=end_ts,
            floor=shift_ts(newest, -lookback_seconds),
        )
    return Window(oldest=shift_ts(initial_ts, -ONE_MICROSECOND), latest=end_ts)


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
        self.remembered: Set[str] = set(unpack_ts(channel_state.get("recent")))
        self.newest: Optional[str] = channel_state.get("newest_ts")
        self.seen: Set[str] = set()
        # Exclusive lower bound of what was actually read: the window's, unless the read
        # stopped at the end of the page that reached the floor.
        self.reached: str = window.oldest
        self.rows = 0

    def pages(
        self, history_pages: Iterator[List[Dict[str, Any]]]
    ) -> Iterator[List[Dict[str, Any]]]:
        floor = self.window.floor
        for page in history_pages:
            if not page:
                continue
            rows = to_rows(page, self.channel_id)
            self._remember(rows)
            self.rows += len(rows)
            yield rows
            oldest_on_page = min(row["ts"] for row in rows)
            if floor is not None and oldest_on_page <= floor:
                # Pages run newest first: everything from here up was returned.
                self.reached = max(self.reached, shift_ts(oldest_on_page, -ONE_MICROSECOND))
                return

    def _remember(self, rows: List[Dict[str, Any]]) -> None:
        page_newest = max(row["ts"] for row in rows)
        if self.newest is None or page_newest > self.newest:
            self.newest = page_newest
        if self.window.floor is not None:  # a daily read remembers the whole range it read
            self.seen.update(row["ts"] for row in rows)
            return
        cutoff = shift_ts(self.newest, -self.lookback_seconds)
        for row in rows:
            ts = row["ts"]
            if ts > cutoff or ts in self.remembered:
                self.seen.add(ts)

    def read_range(self, ts: str) -> bool:
        return ts > self.reached and self.window.contains(ts)

    def finish(self) -> List[Dict[str, Any]]:
        """Commit the read to state; return deletion rows for remembered `ts` gone from Slack."""
        deleted = sorted(
            ts for ts in self.remembered if self.read_range(ts) and ts not in self.seen
        )
        if self.newest is not None:
            if self.window.floor is not None:
                cutoff = self.reached
            else:
                cutoff = shift_ts(self.newest, -self.lookback_seconds)
            keep = (self.remembered - set(deleted)) | self.seen
            self.state["newest_ts"] = self.newest
            self.state["recent"] = pack_ts(ts for ts in keep if ts > cutoff)
        return [deletion_row(self.channel_id, ts) for ts in deleted]


def batched_pages(
    pages: Iterable[Page],
    min_rows: int,
    max_wait_s: float = math.inf,
    rows_of: Callable[[Page], int] = len,
) -> Iterator[List[Page]]:
    """Consecutive pages grouped until they hold `min_rows` rows or `max_wait_s` passed since
    the group began. dlt spends a few ms on every item (schema hints, writer), so unthrottled
    999-message pages are handed over five at a time; when Slack's limits space the pages out,
    each one goes on at once, so the replies of its threads are fetched meanwhile. The pages
    are Arrow tables by then (`rows_of=num_rows`): five pages of Python dicts held at once, on
    each of dlt's workers, left a 1M backfill ~40 MB more resident (RESULTS.md, "Under 400 MB
    at 1M")."""
    group: List[Page] = []
    rows = 0
    started = time.monotonic()
    for page in pages:
        group.append(page)
        rows += rows_of(page)
        if rows >= min_rows or time.monotonic() - started >= max_wait_s:
            yield group
            group, rows = [], 0
            started = time.monotonic()
    if group:
        yield group


def chain(
    first: List[Dict[str, Any]], rest: Iterator[List[Dict[str, Any]]]
) -> Iterator[List[Dict[str, Any]]]:
    """The first page (already fetched) followed by the rest, still lazily."""
    yield first
    yield from rest
