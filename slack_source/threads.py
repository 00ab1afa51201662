"""Thread tracking: call `conversations.replies` only for threads whose replies changed.

A late reply never changes its parent's `ts`, only `latest_reply` and `reply_count`, so an
incremental load keyed on `ts` cannot see it. The parent, re-read inside the lookback window,
carries both; state keeps the pair last loaded for each thread (and the replies loaded), and a
thread is fetched when the pair moved: from the stored `latest_reply` on when replies were only
added, in full when some went missing, so that deleted replies are removed too.
"""

from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from .client import RETRYABLE, SlackClient
from .message_rows import deletion_row, is_thread_parent, pack_ts, to_rows, unpack_ts
from .run_stats import RunStats

THREAD_FETCH_WORKERS = 4

# What thread tracking reads back from a history page (see `threads_to_refresh`).
THREAD_PARENT_COLUMNS = (
    "channel_id",
    "ts",
    "thread_ts",
    "latest_reply",
    "reply_count",
    "is_deleted",
)

# [latest_reply, reply_count, "ts of the replies loaded"] (`pack_ts`): a list so it survives
# dlt's JSON state. Marks written before reply lists existed have two elements; they still
# work, they only cannot name deleted replies until the thread is fetched once more.
ThreadMark = List[Any]


def mark_of(parent: Dict[str, Any], replies: Optional[Iterable[str]] = None) -> ThreadMark:
    mark: ThreadMark = [parent.get("latest_reply"), int(parent.get("reply_count") or 0)]
    return mark if replies is None else [*mark, pack_ts(replies)]


def loaded_replies(known: Optional[ThreadMark]) -> Optional[List[str]]:
    return unpack_ts(known[2]) if known and len(known) > 2 else None


def replies_oldest(known: Optional[ThreadMark], now: ThreadMark) -> Optional[str]:
    """Fetch only newer replies when replies were merely added; else the whole thread."""
    if not known or not known[0] or not now[0]:
        return None
    if now[0] >= known[0] and now[1] >= known[1]:
        return str(known[0])
    return None


def threads_to_refresh(
    rows: List[Dict[str, Any]], thread_state: Dict[str, Dict[str, ThreadMark]]
) -> List[Tuple[Dict[str, Any], Optional[ThreadMark]]]:
    """Parents on this page whose (latest_reply, reply_count) differ from what was loaded."""
    changed = []
    for row in rows:
        if row.get("is_deleted") or not is_thread_parent(row):
            continue
        known = thread_state.get(row["channel_id"], {}).get(row["ts"])
        if not known or known[:2] != mark_of(row):
            changed.append((row, known))
    return changed


@dataclass
class ThreadRead:
    """One thread's refresh: rows to load (new replies, deletion rows) and its new mark."""

    rows: List[Dict[str, Any]]
    mark: ThreadMark
    replies: int
    deleted: int


def _read_replies(
    client: SlackClient,
    parent: Dict[str, Any],
    oldest: Optional[str],
    history_latest: Optional[str],
) -> Tuple[List[Dict[str, Any]], int]:
    """Replies after `oldest` (all when None), without the parent and without broadcasts that
    the history read already returned (a broadcast is one message: it must land once); and
    how many replies Slack returned in all (broadcasts included, as `reply_count` counts)."""
    channel_id, thread_ts = parent["channel_id"], parent["ts"]
    params = {"channel": channel_id, "ts": thread_ts}
    if oldest:
        params["oldest"] = oldest
    replies: List[Dict[str, Any]] = []
    returned = 0
    for page in client.pages("conversations.replies", params):
        for message in page:
            ts = message.get("ts")
            if ts == thread_ts or (oldest and ts <= oldest):
                continue
            returned += 1
            in_history = history_latest is None or ts < history_latest
            if message.get("subtype") == "thread_broadcast" and in_history:
                continue
            replies.append(message)
    return to_rows(replies, channel_id), returned


def fetch_thread(
    client: SlackClient,
    parent: Dict[str, Any],
    known: Optional[ThreadMark],
    history_latest: Optional[str],
) -> ThreadRead:
    """The replies of one changed thread, fetched from the stored `latest_reply` on when the
    counts add up, else in full; a full read removes the replies Slack no longer returns."""
    now = mark_of(parent)
    before = loaded_replies(known)
    oldest = replies_oldest(known, now)
    rows, returned = _read_replies(client, parent, oldest, history_latest)
    if oldest and known is not None and int(known[1]) + returned == now[1]:
        loaded = set(before or ()) | {row["ts"] for row in rows}
        return ThreadRead(rows, mark_of(parent, loaded), len(rows), 0)
    if oldest:  # replies were deleted as well as added: only a full read can tell which
        rows, returned = _read_replies(client, parent, None, history_latest)
    loaded = [row["ts"] for row in rows]
    gone = sorted(set(before or ()) - set(loaded))
    deletions = [deletion_row(parent["channel_id"], ts) for ts in gone]
    return ThreadRead(rows + deletions, mark_of(parent, loaded), len(rows), len(gone))


def prune_threads(
    thread_state: Dict[str, Dict[str, ThreadMark]], channel_id: str, window_oldest: str
) -> None:
    """Forget threads whose parent is older than this run's window: history cannot return them.

    Called before the channel's first page, not after its last: the marks of its pages are
    recorded by `messages` on dlt's worker threads, possibly after the history read ended.
    """
    threads = thread_state.get(channel_id)
    if not threads:
        return
    for ts in [ts for ts in threads if ts <= window_oldest]:
        del threads[ts]


def refresh_threads(
    client: SlackClient,
    rows: List[Dict[str, Any]],
    thread_state: Dict[str, Dict[str, ThreadMark]],
    history_latest: Optional[str],
    stats: RunStats,
    on_failure: Callable[[str, BaseException], None],
) -> Iterator[List[Dict[str, Any]]]:
    """The replies (and deletion rows) of each changed thread on a page of history, one list
    per thread as its fetch completes, so that the caller can turn them into Arrow tables
    instead of holding a long-tailed page's replies as dicts; records each new mark when its
    rows are handed over. A thread whose replies still fail after the retries keeps its old
    mark (the next run fetches it again) and `on_failure(channel_id, error)` reports its
    channel; the page and the other threads load."""
    changed = threads_to_refresh(rows, thread_state)
    if not changed:
        return

    def read(pair: Tuple[Dict[str, Any], Optional[ThreadMark]]) -> Union[ThreadRead, Exception]:
        try:
            return fetch_thread(client, pair[0], pair[1], history_latest)
        except RETRYABLE as error:
            return error

    # Threads are independent calls of one method: fetch a few at once (pacing is shared, so
    # this only helps when the limit is not the bottleneck, e.g. unthrottled or short pages).
    # Handed over in the order they complete: a long thread does not hold back the dicts of
    # the short ones fetched meanwhile.
    with ThreadPoolExecutor(max_workers=min(THREAD_FETCH_WORKERS, len(changed))) as pool:
        parents = {pool.submit(read, pair): pair[0] for pair in changed}
        for future in as_completed(parents):
            parent, result = parents.pop(future), future.result()
            if isinstance(result, Exception):
                on_failure(parent["channel_id"], result)
                continue
            thread_state.setdefault(parent["channel_id"], {})[parent["ts"]] = result.mark
            stats.count_thread_refresh()
            stats.count_rows("replies_per_channel", parent["channel_id"], result.replies)
            if result.deleted:
                stats.count_rows("deleted_per_channel", parent["channel_id"], result.deleted)
            yield result.rows
