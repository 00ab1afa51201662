"""Proof that every thread is complete: each parent's `reply_count` against the replies the
warehouse holds, read back through dlt (`pipeline.dataset()`), on DuckDB and BigQuery alike.

Thread tracking (slack_source/threads.py) fetches a thread when its parent's
(`latest_reply`, `reply_count`) moved since the last load; a reply lost between Slack and the
warehouse (a race with a deletion, a row removed by hand, a bug) would never move that pair
again. After each load the threads the source tracks in the loaded channels are counted; a
thread that does not add up is reported (a warning in the run log, a table in the summary) and
its mark is reset, so the next run fetches it in full (its stored reply list kept, so replies
gone from Slack are removed too). `reconcile` on the command line does the same for a whole
dataset.

`reply_count` counts broadcasts, and so does this check: a broadcast is one `messages` row
with its `thread_ts`.
"""

from dataclasses import asdict, dataclass
from typing import Any, Collection, Dict, List, Optional

import dlt
from dlt.common.destination.exceptions import DestinationUndefinedEntity
from dlt.destinations.exceptions import DatabaseUndefinedRelation

from .loading import sql_literals

SOURCE_NAME = "slack"

_COUNT_SQL = """
SELECT p.channel_id, p.ts, p.reply_count, COUNT(r.ts) AS loaded
FROM {table} AS p
LEFT JOIN {table} AS r
  ON r.channel_id = p.channel_id AND r.thread_ts = p.ts AND r.ts <> p.ts
WHERE p.thread_ts = p.ts AND p.reply_count > 0{channels}
GROUP BY p.channel_id, p.ts, p.reply_count
HAVING COUNT(r.ts) <> p.reply_count
ORDER BY p.channel_id, p.ts
"""


@dataclass(frozen=True)
class IncompleteThread:
    """A thread whose parent counts other replies than the warehouse holds."""

    channel: str
    thread: str
    expected: int
    loaded: int

    def describe(self) -> str:
        return (
            f"thread {self.thread} in {self.channel}: {self.expected} replies expected,"
            f" {self.loaded} loaded"
        )


def thread_marks(pipeline: dlt.Pipeline) -> Dict[str, Dict[str, Any]]:
    """The source state's thread marks (channel -> thread ts -> mark), as last committed."""
    sources = pipeline.state.get("sources", {})
    return sources.get(SOURCE_NAME, {}).get("threads", {})


def count_threads(
    pipeline: dlt.Pipeline, channel_ids: Optional[Collection[str]] = None
) -> List[IncompleteThread]:
    """Every thread (of `channel_ids`, or all) whose loaded replies differ from `reply_count`.
    One query; a dataset without `messages` has none."""
    dataset = pipeline.dataset()
    client = dataset.sql_client
    where = ""
    if channel_ids is not None:
        if not channel_ids:
            return []
        where = f" AND p.channel_id IN ({sql_literals(client, channel_ids)})"
    sql = _COUNT_SQL.format(table=client.make_qualified_table_name("messages"), channels=where)
    try:
        # raw: the query is already in the destination's SQL (dlt's own rewriting of SQL
        # strings goes through sqlglot's lineage, which the pinned sqlglot version rejects)
        rows = dataset(sql, _execute_raw_query=True).fetchall()
    except (DestinationUndefinedEntity, DatabaseUndefinedRelation, ValueError):
        return []
    return [IncompleteThread(r[0], r[1], int(r[2]), int(r[3])) for r in rows]


def reset_marks(pipeline: dlt.Pipeline, threads: List[IncompleteThread]) -> int:
    """Make the marks of `threads` differ from any parent, so the next run fetches each in
    full; commit the state to the destination at once (a run on another machine restores it
    from there). Returns how many marks were reset (an untracked thread has none)."""
    reset = 0
    with pipeline.managed_state(extract_state=True) as state:
        marks = state.get("sources", {}).get(SOURCE_NAME, {}).get("threads", {})
        for thread in threads:
            mark = marks.get(thread.channel, {}).get(thread.thread)
            if mark is None:
                continue
            # [latest_reply, reply_count, replies loaded]: no parent has count -1; the reply
            # list stays, so the full read names the replies Slack no longer returns
            marks[thread.channel][thread.thread] = [None, -1, *mark[2:]]
            reset += 1
    if reset:
        pipeline.normalize()
        pipeline.load().raise_on_failed_jobs()
    return reset


def reconcile_threads(
    pipeline: dlt.Pipeline, channel_ids: Optional[Collection[str]] = None
) -> List[Dict[str, Any]]:
    """After a load: the tracked threads of `channel_ids` (all channels when None) that do not
    add up, as summary rows (`channel`, `thread`, `expected`, `loaded`); their marks reset."""
    marks = thread_marks(pipeline)
    channels = set(marks) if channel_ids is None else set(channel_ids) & set(marks)
    tracked = [t for t in count_threads(pipeline, channels) if t.thread in marks.get(t.channel, {})]
    if tracked:
        reset_marks(pipeline, tracked)
    return [asdict(t) for t in tracked]


def reconcile_dataset(pipeline: dlt.Pipeline) -> List[str]:
    """`reconcile`: every thread of the dataset, tracked or not, as report lines (empty when
    every thread adds up); the marks of the tracked ones are reset. The state is first synced
    from the destination, so a machine without the pipeline's local folder sees the same."""
    pipeline.sync_destination()
    incomplete = count_threads(pipeline)
    marks = thread_marks(pipeline)
    tracked = [t for t in incomplete if t.thread in marks.get(t.channel, {})]
    reset_marks(pipeline, tracked)
    lines = []
    for thread in incomplete:
        if thread in tracked:
            lines.append(f"{thread.describe()}; the next daily run fetches it again")
        else:
            lines.append(
                f"{thread.describe()}; beyond the daily run's reach (no thread mark):"
                " a backfill with --start-date covering it reads it again"
            )
    return lines
