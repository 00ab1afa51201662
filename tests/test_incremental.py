"""Daily runs: late replies, edits, deletions and broadcasts caught with the fewest calls."""

from datetime import datetime, timedelta, timezone

import pytest

from slack_source import slack_source
from slack_source.message_rows import unpack_ts
from tests.helpers import (
    DATASET,
    LOOKBACK_DAYS,
    TOKEN,
    load_daily,
    loaded_messages,
    make_test_pipeline,
    query,
    readable_channel_ids,
    thread_with_age,
    truth_messages,
)


def in_window(key, newest_by_channel):
    channel, ts = key
    return float(ts) > newest_by_channel[channel] - LOOKBACK_DAYS * 86400


@pytest.fixture
def backfilled(slack_env, tmp_path):
    workspace, server = slack_env
    pipeline = make_test_pipeline(tmp_path)
    start = datetime.now(timezone.utc) - timedelta(days=40)
    stats, counts = load_daily(pipeline, server, start_date=start)
    readable = readable_channel_ids(workspace)
    assert loaded_messages(pipeline) == truth_messages(workspace, readable)
    return workspace, server, pipeline, readable, counts


def test_daily_run_catches_late_replies_edits_deletes_and_broadcasts(backfilled):
    workspace, server, pipeline, readable, run1_counts = backfilled
    channel = sorted(readable)[0]
    fresh_thread = thread_with_age(workspace, channel, 3)
    old_thread = thread_with_age(workspace, channel, 10)
    assert float(old_thread) < datetime.now(timezone.utc).timestamp() - 9 * 86400

    new_ts = workspace.post_message(channel, text="brand new message")
    reply_fresh = workspace.post_reply(channel, fresh_thread, text="late reply, 3-day thread")
    reply_old = workspace.post_reply(channel, old_thread, text="late reply, 10-day thread")
    broadcast = workspace.post_reply(channel, fresh_thread, text="broadcast!", broadcast=True)
    recent = [
        ts
        for (ch, ts), m in truth_messages(workspace, {channel}).items()
        if ts != new_ts
        and not m["thread_ts"]
        and float(ts) > datetime.now(timezone.utc).timestamp() - 2 * 86400
    ]
    edited, deleted = recent[0], recent[1]
    workspace.edit_message(channel, edited, "edited text")
    workspace.delete_message(channel, deleted)

    stats, counts = load_daily(pipeline, server)

    loaded = loaded_messages(pipeline)
    truth = truth_messages(workspace, readable)
    assert (channel, new_ts) in loaded
    assert loaded[(channel, reply_fresh)]["text"] == "late reply, 3-day thread"
    assert loaded[(channel, broadcast)]["subtype"] == "thread_broadcast"
    assert loaded[(channel, edited)]["text"] == "edited text"
    assert (channel, deleted) not in loaded
    assert loaded[(channel, fresh_thread)]["latest_reply"] == broadcast
    # older than the 7-day lookback, but on the first history page: caught at no extra call
    assert loaded[(channel, reply_old)]["text"] == "late reply, 10-day thread"
    assert loaded == truth
    total, distinct = query(
        pipeline, f"SELECT COUNT(*), COUNT(DISTINCT (channel_id, ts)) FROM {DATASET}.messages"
    )[0]
    assert total == distinct
    # one replies call for each of the two threads that changed
    assert counts.get("conversations.replies", 0) == 2
    assert stats.threads_refreshed == 2
    member_public = [c for c in workspace.channels() if c["is_member"] and not c["is_private"]]
    assert counts["conversations.history"] == len(member_public)
    assert stats.deleted_per_channel[channel] == 1

    after_run2 = loaded_messages(pipeline)
    stats, counts = load_daily(pipeline, server)
    assert counts.get("conversations.replies", 0) == 0
    assert loaded_messages(pipeline) == after_run2


def test_unchanged_daily_run_makes_no_replies_call(backfilled):
    workspace, server, pipeline, readable, run1_counts = backfilled
    assert run1_counts["conversations.replies"] >= 1
    stats, counts = load_daily(pipeline, server)
    assert counts.get("conversations.replies", 0) == 0
    member_public = [c for c in workspace.channels() if c["is_member"] and not c["is_private"]]
    assert counts["conversations.history"] == len(member_public)
    assert loaded_messages(pipeline) == truth_messages(workspace, readable)
    # thread marks are kept for parents the next read can still return (max_lookback_days):
    # here every thread of the 30-day workspace, each with the replies it loaded
    state = pipeline.state["sources"]["slack"]
    kept = 0
    for channel_id, marks in state["threads"].items():
        window_start = float(state["channels"][channel_id]["newest_ts"]) - 90 * 86400
        assert all(float(ts) > window_start for ts in marks)
        assert all(len(mark) == 3 and len(unpack_ts(mark[2])) <= mark[1] for mark in marks.values())
        kept += len(marks)
    assert kept == run1_counts["conversations.replies"]


class Boom(RuntimeError):
    pass


def test_run_killed_mid_extraction_then_rerun_equals_ground_truth(slack_env, tmp_path):
    workspace, server = slack_env
    pipeline = make_test_pipeline(tmp_path)
    start = datetime.now(timezone.utc) - timedelta(days=40)
    source = slack_source(
        access_token=TOKEN,
        api_base_url=server.base_url,
        start_date=start,
        rate_limit_profile="off",
    )
    seen = {"items": 0}

    def explode_mid_way(item):
        seen["items"] += 1  # items are pages (Arrow tables): fail on the second one
        if seen["items"] == 2:
            raise Boom("killed mid-way")
        return item

    source.resources["messages"].add_map(explode_mid_way)
    with pytest.raises(Exception) as raised:
        pipeline.run(source)
    assert "killed mid-way" in str(raised.value)
    assert pipeline.state.get("sources", {}).get("slack", {}).get("channels") in (None, {})

    channel = sorted(readable_channel_ids(workspace))[0]
    workspace.post_message(channel, text="posted between the runs")
    load_daily(pipeline, server, start_date=None, initial_start_date=start)
    assert loaded_messages(pipeline) == truth_messages(workspace, readable_channel_ids(workspace))
