"""The hand-over from an imported export to the daily API run: every state write in one place.

The daily run keeps, per channel (see `history` and `threads`):
- `state["channels"][channel_id]["newest_ts"]`: the newest top-level `ts` loaded; the next run
  re-reads history from `newest_ts - lookback`;
- `state["channels"][channel_id]["recent"]`: top-level `ts` values inside that window, packed
  (`pack_ts`; a value remembered but no longer returned by Slack is a deleted message);
- `state["threads"][channel_id][parent_ts] = [latest_reply, reply_count, "reply ts ..."]`: what was
  loaded of each thread the daily run can still re-read (`max_lookback_days`): a parent whose
  pair moved gets `conversations.replies`, and a reply missing from a full read is deleted.

An import writes the same keys, so the next daily run continues where the export ends. Writes only
ever move a channel forward: an export older than what the API already loaded leaves
`newest_ts` where it was and adds nothing the window cannot use.

A thread mark records the replies the export actually holds (newest reply `ts`, count), not the
parent's own `latest_reply`/`reply_count`: a date-limited export shows a parent's thread as it was
when the export was made but holds only the replies inside its range, and a mark taken from the
parent would claim replies nobody loaded.
"""

from collections import deque
from typing import Any, Deque, Dict, Iterable, List, Optional, Sequence

from ..message_rows import pack_ts, shift_ts, unpack_ts
from ..threads import ThreadMark

State = Dict[str, Any]


def window_start(newest_ts: str, lookback_seconds: float) -> str:
    """Oldest `ts` (exclusive) the daily run re-reads after `newest_ts`."""
    return shift_ts(newest_ts, -lookback_seconds)


def advance_channel_state(
    channel_state: State,
    newest_ts: str,
    top_level_ts: Iterable[str],
    lookback_seconds: float,
) -> None:
    """Move `newest_ts` forward (never back) and remember the top-level `ts` in its window.

    `recent` keeps what the state already remembered: a `ts` the API loaded that is missing from
    the export may be a deletion, which the next run detects only while it is remembered.
    """
    known = channel_state.get("newest_ts")
    newest = newest_ts if known is None or newest_ts > known else known
    cutoff = window_start(newest, lookback_seconds)
    remembered = set(unpack_ts(channel_state.get("recent"))) | set(top_level_ts)
    channel_state["newest_ts"] = newest
    channel_state["recent"] = pack_ts(ts for ts in remembered if ts > cutoff)


def newer_mark(known: Optional[ThreadMark], imported: ThreadMark) -> ThreadMark:
    """The mark that covers more of the thread: the later `latest_reply`, then more replies."""
    if not known or not known[0]:
        return list(imported)
    if (str(imported[0]), int(imported[1])) > (str(known[0]), int(known[1])):
        return list(imported)
    return known


def merge_thread_marks(
    channel_threads: Dict[str, ThreadMark], marks: Dict[str, ThreadMark]
) -> None:
    """Record the imported marks of one channel, keeping an existing mark that is further on."""
    for parent_ts, mark in marks.items():
        channel_threads[parent_ts] = newer_mark(channel_threads.get(parent_ts), mark)


def hand_over(
    state: State,
    channel_id: str,
    newest_ts: Optional[str],
    top_level_ts: Iterable[str],
    marks: Dict[str, ThreadMark],
    lookback_seconds: float,
    mark_seconds: float,
) -> None:
    """Write one channel's imported position into the `slack` source state."""
    if newest_ts is None:
        return
    channel_state = state.setdefault("channels", {}).setdefault(channel_id, {})
    advance_channel_state(channel_state, newest_ts, top_level_ts, lookback_seconds)
    cutoff = window_start(channel_state["newest_ts"], mark_seconds)
    in_window = {ts: mark for ts, mark in marks.items() if ts > cutoff}
    if in_window:
        merge_thread_marks(state.setdefault("threads", {}).setdefault(channel_id, {}), in_window)


class ChannelPosition:
    """What one channel's export holds that the hand-over needs, kept small while streaming.

    Day files arrive oldest first, so a top-level `ts` older than `newest - lookback` (a thread
    older than `newest - mark_seconds`) can never matter to the daily run again and is dropped
    as the read goes on: memory stays that of one window.
    """

    def __init__(self, lookback_seconds: float, mark_seconds: Optional[float] = None) -> None:
        self.lookback_seconds = lookback_seconds
        self.mark_seconds = max(lookback_seconds, mark_seconds or 0.0)
        self.newest_top: Optional[str] = None
        self.newest_any: Optional[str] = None
        self.tops: Deque[str] = deque()
        # parent ts -> [newest reply ts, replies, [ts of replies other than broadcasts]]
        self.threads: Dict[str, List[Any]] = {}

    def observe(
        self,
        ts_values: Sequence[str],
        thread_ts_values: Sequence[Optional[str]],
        reply_counts: Sequence[Optional[int]],
        subtypes: Sequence[Optional[str]],
    ) -> None:
        """The messages of some day files as columns (any order within a day): taken column by
        column from the Arrow page, which costs less than a dict per message."""
        threads = self.threads
        for ts, thread_ts, reply_count, subtype in zip(
            ts_values, thread_ts_values, reply_counts, subtypes, strict=True
        ):
            if self.newest_any is None or ts > self.newest_any:
                self.newest_any = ts
            reply = thread_ts is not None and thread_ts != ts
            if reply:
                mark = threads.get(thread_ts)
                if mark is not None:
                    if mark[0] is None or ts > mark[0]:
                        mark[0] = ts
                    mark[1] += 1
                    if subtype != "thread_broadcast":  # history tracks broadcasts
                        mark[2].append(ts)
            elif thread_ts is not None and reply_count:
                threads.setdefault(ts, [None, 0, []])
            if not reply or subtype == "thread_broadcast":
                self.tops.append(ts)
                if self.newest_top is None or ts > self.newest_top:
                    self.newest_top = ts
        self._forget_old()

    def _forget_old(self) -> None:
        if self.newest_top is None:
            return
        cutoff = window_start(self.newest_top, self.lookback_seconds)
        tops = self.tops
        while tops and tops[0] <= cutoff:
            tops.popleft()
        if len(self.threads) > 1000:
            marks_from = window_start(self.newest_top, self.mark_seconds)
            self.threads = {ts: m for ts, m in self.threads.items() if ts > marks_from}

    @property
    def newest(self) -> Optional[str]:
        """Where the daily run continues: the newest top-level `ts`; in a channel whose export
        holds only replies (their parents older than its range), the newest reply."""
        return self.newest_top or self.newest_any

    def marks(self) -> Dict[str, ThreadMark]:
        """Marks of the threads whose replies the export holds."""
        return {ts: [m[0], m[1], pack_ts(m[2])] for ts, m in self.threads.items() if m[1]}

    def write(self, state: State, channel_id: str) -> None:
        hand_over(
            state,
            channel_id,
            self.newest,
            list(self.tops),
            self.marks(),
            self.lookback_seconds,
            self.mark_seconds,
        )
