"""The Prefect flow end to end on Prefect's test harness: tasks, summary, artifact, dates."""

import os
from datetime import datetime, timedelta, timezone

import pytest

from tests.helpers import (
    DATASET,
    all_task_runs_of,
    latest_artifact,
    loaded_messages,
    query,
    readable_channel_ids,
    truth_messages,
)


@pytest.fixture
def flow(prefect_harness):
    from slack_pipeline_with_prefect import slack_pipeline

    return slack_pipeline


def duckdb_path():
    return os.environ["DESTINATION__DUCKDB__CREDENTIALS"]


def test_flow_backfill_loads_workspace_and_reports_summary(flow, slack_env):
    workspace, server = slack_env
    start = (datetime.now(timezone.utc) - timedelta(days=40)).strftime("%Y-%m-%d")
    summary = flow(start_date=start)

    readable = readable_channel_ids(workspace)
    assert loaded_messages(duckdb_path()) == truth_messages(workspace, readable)
    tables = query(
        duckdb_path(),
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{DATASET}'",
    )
    # nested fields are JSON columns: no dlt child tables; reactions and files are our own
    expected = {"users", "channels", "messages", "reactions", "files"}
    assert {t for (t,) in tables if not t.startswith("_dlt")} == expected
    assert summary["rows_loaded"]["users"] == len(workspace.users())
    assert summary["rows_loaded"]["messages"] == len(truth_messages(workspace, readable))
    assert summary["api_calls"]["users.list"] == 1
    assert summary["api_calls"]["conversations.list"] == 1
    assert summary["api_calls"]["conversations.replies"] == summary["threads_refreshed"] > 0
    outside = [c["name"] for c in workspace.channels() if not c.get("is_member")]
    assert summary["skipped_channels"] == {name: "not_in_channel" for name in outside}

    markdown = latest_artifact("slack-load-summary")
    assert "| messages |" in markdown.data
    assert "not_in_channel" in markdown.data


def test_first_run_without_start_date_loads_one_day(flow, slack_env):
    workspace, server = slack_env
    flow()
    cutoff = datetime.now(timezone.utc).timestamp() - 86400 - 60
    rows = query(duckdb_path(), f"SELECT ts, thread_ts FROM {DATASET}.messages")
    top_level = [float(ts) for ts, thread_ts in rows if not thread_ts or thread_ts == ts]
    assert top_level, "the last day has messages"
    assert min(top_level) >= cutoff


def test_flow_fails_clearly_on_unknown_channel(flow, slack_env):
    with pytest.raises(Exception) as raised:
        flow(channels=["general", "no-such-channel"])
    assert "Unknown Slack channel(s): no-such-channel" in str(raised.value)


def test_second_run_after_the_database_was_deleted_loads_every_table(flow, slack_env):
    """Loads are never skipped by a cache: a run against an emptied destination reloads."""
    workspace, server = slack_env
    start = (datetime.now(timezone.utc) - timedelta(days=40)).strftime("%Y-%m-%d")
    flow(start_date=start)
    os.remove(duckdb_path())  # a user starting over (or a new BigQuery dataset)
    server.reset_stats()
    summary = flow(start_date=start)
    counts = server.request_counts()
    assert counts["users.list"] == 1 and counts["conversations.list"] == 1
    assert summary["rows_loaded"]["users"] == len(workspace.users())
    assert query(duckdb_path(), f"SELECT COUNT(*) FROM {DATASET}.users")[0][0] == len(
        workspace.users()
    )
    assert query(duckdb_path(), f"SELECT COUNT(*) FROM {DATASET}.channels")[0][0] == len(
        [c for c in workspace.channels() if not c.get("is_private")]
    )
    readable = readable_channel_ids(workspace)
    assert loaded_messages(duckdb_path()) == truth_messages(workspace, readable)


def test_switching_pii_mode_the_same_day_leaves_no_raw_email(flow, slack_env, monkeypatch):
    workspace, server = slack_env
    flow()
    emails = [u["profile"]["email"] for u in workspace.users() if u["profile"].get("email")]
    loaded = {r[0] for r in query(duckdb_path(), f"SELECT profile__email FROM {DATASET}.users")}
    assert set(emails) <= loaded  # control: the first run loaded them raw

    monkeypatch.setenv("SOURCES__SLACK__PII_MODE", "hash")
    monkeypatch.setenv("SOURCES__SLACK__PII_SALT", "same-day-salt")
    flow()
    columns = [
        r[0]
        for r in query(
            duckdb_path(),
            "SELECT column_name FROM information_schema.columns"
            f" WHERE table_schema = '{DATASET}' AND table_name = 'users'",
        )
    ]
    blob = " ".join(
        str(v) for row in query(duckdb_path(), f"SELECT * FROM {DATASET}.users") for v in row
    ).lower()
    assert "profile__email" in columns
    assert not [email for email in emails if email.lower() in blob]


def history_task_runs(flow_state) -> list:
    return [t for t in all_task_runs_of(flow_state) if t.name.startswith("get_channel_history")]


def test_a_load_holds_a_volume_of_messages_not_a_count_of_channels(flow, slack_env, monkeypatch):
    """`messages_per_load`: a load starts no further channel once it has read that many
    messages; the channels left go to the next load, every message once. By default a small
    workspace is one load."""
    workspace, _ = slack_env
    readable = readable_channel_ids(workspace)
    truth = truth_messages(workspace, readable)
    with_messages = {channel for channel, _ in truth}
    assert len(with_messages) >= 3, "several loads"

    monkeypatch.setenv("SLACK_PIPELINE__MESSAGES_PER_LOAD", "1")
    state = flow(
        start_date=(datetime.now(timezone.utc) - timedelta(days=40)).date(), return_state=True
    )
    summary = state.result()
    assert loaded_messages(duckdb_path()) == truth
    assert summary["rows_loaded"]["messages"] == len(truth)
    batches = history_task_runs(state)
    assert len(batches) == len(with_messages)  # one channel read per load, then the next
    assert all(t.state.is_completed() for t in batches)

    monkeypatch.delenv("SLACK_PIPELINE__MESSAGES_PER_LOAD")
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", duckdb_path() + ".default.duckdb")
    state = flow(
        start_date=(datetime.now(timezone.utc) - timedelta(days=40)).date(), return_state=True
    )
    assert loaded_messages(duckdb_path()) == truth
    assert len(history_task_runs(state)) == 1
