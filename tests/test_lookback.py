"""The daily re-read uses what it pays for: the rest of the page past `lookback_days` (late
replies to older threads), the weekly sweep for busy channels, and deleted replies."""

from datetime import datetime, timedelta, timezone
from typing import Any, Dict

import pytest

from slack_source.message_rows import DELTA_MARK, pack_ts, unpack_ts
from tests.helpers import (
    DATASET,
    load_source,
    loaded_messages,
    make_test_pipeline,
    query,
    readable_channel_ids,
    thread_with_age,
    truth_messages,
)

# Slack's non-Marketplace pages (15 messages) make every emulated channel "busy": 7 days of
# it need several history pages, so 12 days are out of the daily run's reach.
BUSY = dict(rate_limit_profile="non_marketplace", rate_limit_minute_seconds=0.01)
QUIET = dict(rate_limit_profile="off")


def backfill(workspace: Any, server: Any, tmp_path: Any, profile: Dict[str, Any]) -> Any:
    pipeline = make_test_pipeline(tmp_path)
    load_source(
        pipeline, server, start_date=datetime.now(timezone.utc) - timedelta(days=40), **profile
    )
    assert loaded_messages(pipeline) == truth_messages(workspace, readable_channel_ids(workspace))
    return pipeline


def member_public(workspace: Any) -> int:
    return len([c for c in workspace.channels() if c["is_member"] and not c["is_private"]])


def assert_exact(pipeline: Any, workspace: Any) -> None:
    assert loaded_messages(pipeline) == truth_messages(workspace, readable_channel_ids(workspace))
    total, distinct = query(
        pipeline, f"SELECT COUNT(*), COUNT(DISTINCT (channel_id, ts)) FROM {DATASET}.messages"
    )[0]
    assert total == distinct


def reply_to_old_thread(workspace: Any) -> "tuple[str, str]":
    """A late reply to a 12-day-old thread (older than the 7-day lookback): channel, reply."""
    channel = sorted(readable_channel_ids(workspace))[0]
    parent = thread_with_age(workspace, channel, 12)
    assert float(parent) < datetime.now(timezone.utc).timestamp() - 9 * 86400
    return channel, workspace.post_reply(channel, parent, text="12 days later")


def test_late_reply_to_a_12_day_old_thread_in_a_quiet_channel_is_caught_daily(slack_env, tmp_path):
    workspace, server = slack_env
    pipeline = backfill(workspace, server, tmp_path, QUIET)
    channel, reply = reply_to_old_thread(workspace)

    stats, counts = load_source(pipeline, server, lookback_days=7, **QUIET)

    assert loaded_messages(pipeline)[(channel, reply)]["text"] == "12 days later"
    assert_exact(pipeline, workspace)
    # the calls of a quiet day: one history page per channel, plus the one changed thread
    assert counts["conversations.history"] == member_public(workspace)
    assert counts["conversations.replies"] == 1


def test_busy_channel_needs_the_weekly_sweep_for_a_12_day_old_thread(slack_env, tmp_path):
    workspace, server = slack_env
    pipeline = backfill(workspace, server, tmp_path, BUSY)
    channel, reply = reply_to_old_thread(workspace)

    stats, counts = load_source(pipeline, server, lookback_days=7, **BUSY)
    assert (channel, reply) not in loaded_messages(pipeline)  # the daily run stops at 7 days
    assert counts["conversations.history"] > member_public(workspace)
    assert counts.get("conversations.replies", 0) == 0

    stats, counts = load_source(pipeline, server, lookback_days=35, **BUSY)  # prefect.yaml's sweep
    assert loaded_messages(pipeline)[(channel, reply)]["text"] == "12 days later"
    assert_exact(pipeline, workspace)
    # the marks of every other thread were kept: only the changed one is fetched
    assert counts["conversations.replies"] == 1


def replies_of(workspace: Any, channel: str, parent: str) -> list:
    return sorted(
        ts
        for (ch, ts), m in truth_messages(workspace, {channel}).items()
        if m["thread_ts"] == parent and ts != parent and m["subtype"] != "thread_broadcast"
    )


def thread_with_replies(workspace: Any, channel: str, at_least: int) -> str:
    for _, parent in sorted(workspace.thread_parents(channel), key=lambda p: -float(p[1])):
        if len(replies_of(workspace, channel, parent)) >= at_least:
            return parent
    pytest.skip(f"no thread with {at_least} replies")


@pytest.mark.parametrize(
    "values",
    [
        ["1700000000.000100", "1600000000.999999", "1700000000.000100", "0.000001"],
        ["1700000000.000100", "1700000000.1", "1700000000.000200"],  # not Slack's 6 digits
        ["01.000000", "1.000000"],  # a leading zero: the delta form would drop it
        [],
    ],
    ids=["slack_ts", "short_fraction", "leading_zero", "empty"],
)
def test_packed_ts_give_back_every_value_exactly(values):
    packed = pack_ts(values)
    assert unpack_ts(packed) == sorted(values)
    canonical = all(ts == f"{int(ts[:-7])}.{ts[-6:]}" for ts in values)
    assert packed.startswith(DELTA_MARK) == (canonical and bool(values))


@pytest.mark.parametrize("also_add", [False, True], ids=["deleted", "deleted_and_added"])
def test_deleted_reply_is_removed_from_messages(slack_env, tmp_path, also_add):
    workspace, server = slack_env
    pipeline = backfill(workspace, server, tmp_path, QUIET)
    channel = sorted(readable_channel_ids(workspace))[0]
    parent = thread_with_replies(workspace, channel, 2)
    gone = replies_of(workspace, channel, parent)[0]  # not the latest: latest_reply stays
    workspace.delete_message(channel, gone)
    added = workspace.post_reply(channel, parent, text="one more") if also_add else None

    stats, counts = load_source(pipeline, server, lookback_days=7, **QUIET)

    loaded = loaded_messages(pipeline)
    assert (channel, gone) not in loaded
    assert added is None or loaded[(channel, added)]["text"] == "one more"
    assert_exact(pipeline, workspace)
    assert stats.deleted_per_channel[channel] == 1
    # count down: one full read; count unchanged but latest moved: the short read, then a full
    assert counts["conversations.replies"] == (2 if also_add else 1)
    stats, counts = load_source(pipeline, server, lookback_days=7, **QUIET)
    assert counts.get("conversations.replies", 0) == 0
