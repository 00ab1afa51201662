"""Completeness is checked, not claimed: a reply missing from the warehouse is found after the
next load (named in the summary and its artifact), fetched again by the run after, and a quiet
run then reports nothing and calls conversations.replies no more. `reconcile` on the command
line checks a whole dataset."""

import os

import duckdb
import pytest

from orchestration.summary import summary_markdown
from tests.helpers import (
    DATASET,
    backfill_start,
    emulator_cli_env,
    loaded_messages,
    pipeline_cli,
    readable_channel_ids,
    truth_messages,
)


@pytest.fixture
def flow(prefect_harness):
    from slack_pipeline_with_prefect import slack_pipeline

    return slack_pipeline


def remove_reply_behind_the_pipelines_back(workspace, readable, days=2.0):
    """Delete one reply of a recent thread from the DuckDB file (not from Slack); returns
    (channel, thread, reply_count)."""
    import time

    cutoff = time.time() - days * 86400
    parent = next(
        m
        for m in sorted(workspace.ground_truth(), key=lambda m: m["ts"], reverse=True)
        if m["channel_id"] in readable
        and m.get("reply_count", 0) >= 2
        and m.get("thread_ts") == m["ts"]
        and float(m["ts"]) < cutoff
    )
    channel, thread = parent["channel_id"], parent["ts"]
    reply = next(
        m["ts"]
        for m in workspace.ground_truth(channel)
        if m.get("thread_ts") == thread and m["ts"] != thread and not m.get("subtype")
    )
    with duckdb.connect(os.environ["DESTINATION__DUCKDB__CREDENTIALS"]) as con:
        con.execute(
            f"DELETE FROM {DATASET}.messages WHERE channel_id = ? AND ts = ?", [channel, reply]
        )
    return channel, thread, parent["reply_count"]


def test_a_missing_reply_is_reported_then_fetched_again(flow, slack_env):
    workspace, server = slack_env
    readable = readable_channel_ids(workspace)
    assert flow(start_date=backfill_start())["incomplete_threads"] == []
    channel, thread, count = remove_reply_behind_the_pipelines_back(workspace, readable)

    server.reset_stats()
    summary = flow()
    assert summary["incomplete_threads"] == [
        {"channel": channel, "thread": thread, "expected": count, "loaded": count - 1}
    ]
    assert server.request_counts().get("conversations.replies", 0) == 0  # the pair never moved
    markdown = summary_markdown(summary)
    assert "| channel | thread | expected | loaded |" in markdown
    assert f"| {thread} | {count} | {count - 1} |" in markdown

    server.reset_stats()
    summary = flow()  # the reset mark: the thread is read in full once
    assert summary["incomplete_threads"] == []
    assert server.request_counts()["conversations.replies"] == 1
    assert loaded_messages(os.environ["DESTINATION__DUCKDB__CREDENTIALS"]) == truth_messages(
        workspace, readable
    )

    server.reset_stats()
    summary = flow()
    assert summary["incomplete_threads"] == []
    assert server.request_counts().get("conversations.replies", 0) == 0
    assert "Incomplete threads: none" in summary_markdown(summary)


def test_reconcile_command_checks_the_whole_dataset(flow, slack_env, tmp_path):
    workspace, server = slack_env
    readable = readable_channel_ids(workspace)
    flow(start_date=backfill_start())
    env = emulator_cli_env(
        server,
        tmp_path,
        DESTINATION__DUCKDB__CREDENTIALS=os.environ["DESTINATION__DUCKDB__CREDENTIALS"],
    )
    clean = pipeline_cli("reconcile", cwd=tmp_path, env=env)
    assert clean.returncode == 0, clean.stderr
    assert "every thread adds up" in clean.stdout

    channel, thread, count = remove_reply_behind_the_pipelines_back(workspace, readable)
    server.reset_stats()
    found = pipeline_cli("reconcile", cwd=tmp_path, env=env)
    assert found.returncode == 1, found.stderr
    assert f"thread {thread} in {channel}: {count} replies expected, {count - 1} loaded" in (
        found.stdout
    )
    assert server.request_counts() == {}  # reads the warehouse only

    server.reset_stats()
    assert flow()["incomplete_threads"] == []
    assert server.request_counts()["conversations.replies"] == 1
    assert pipeline_cli("reconcile", cwd=tmp_path, env=env).returncode == 0
