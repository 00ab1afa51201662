"""Thread tracking: call `conversations.replies` only for threads whose replies changed.

A late reply never changes its parent's `ts`, only `latest_reply` and `reply_count`, so an
incremental load keyed on `ts` cannot see it. The parent, re-read inside the lookback window,
carries both; state keeps the pair last loaded for each thread, and a thread is fetched when the
pair moved, from the stored `latest_reply` on when replies were only added.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Tuple

from .client import SlackClient
from .message_rows import is_thread_parent, to_rows
from .run_stats import RunStats

THREAD_FETCH_WORKERS = 4

ThreadMark = List[Any]  # [latest_reply, reply_count]; a list so it survives dlt's JSON state


def mark_of(parent: Dict[str, Any]) -> ThreadMark:
    return [parent.get("latest_reply"), int(parent.get("reply_count") or 0)]


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
        if known != mark_of(row):
            changed.append((row, known))
    return changed


def fetch_thread(
    client: SlackClient,
    parent: Dict[str, Any],
    known: Optional[ThreadMark],
    history_latest: Optional[str],
) -> List[Dict[str, Any]]:
    """New replies of one thread as rows, without the parent and without broadcasts that the
    history read already returned (a broadcast is one message: it must land once)."""
    channel_id, thread_ts = parent["channel_id"], parent["ts"]
    params = {"channel": channel_id, "ts": thread_ts}
    oldest = replies_oldest(known, mark_of(parent))
    if oldest:
        params["oldest"] = oldest
    replies: List[Dict[str, Any]] = []
    for page in client.pages("conversations.replies", "messages", params):
        for message in page:
            ts = message.get("ts")
            if ts == thread_ts or (oldest and ts <= oldest):
                continue
            in_history = history_latest is None or ts < history_latest
            if message.get("subtype") == "thread_broadcast" and in_history:
                continue
            replies.append(message)
    return to_rows(replies, channel_id)


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
) -> List[Dict[str, Any]]:
    """Replies for every changed thread on a page of history; records the new marks."""
    out: List[Dict[str, Any]] = []
    changed = threads_to_refresh(rows, thread_state)
    if not changed:
        return out
    # Threads are independent calls of one method: fetch a few at once (pacing is shared, so
    # this only helps when the limit is not the bottleneck, e.g. unthrottled or short pages).
    with ThreadPoolExecutor(max_workers=min(THREAD_FETCH_WORKERS, len(changed))) as pool:
        fetched = list(
            pool.map(lambda pk: fetch_thread(client, pk[0], pk[1], history_latest), changed)
        )
    for (parent, _known), replies in zip(changed, fetched, strict=True):
        out.extend(replies)
        thread_state.setdefault(parent["channel_id"], {})[parent["ts"]] = mark_of(parent)
        stats.count_thread_refresh()
        stats.count_rows("replies_per_channel", parent["channel_id"], len(replies))
    return out
