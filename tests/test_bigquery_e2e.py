"""BigQuery end to end: the Prefect flow a user runs, configured for BigQuery the way a user does
it (`SLACK_PIPELINE__DESTINATION=bigquery`, a key file in GOOGLE_APPLICATION_CREDENTIALS, a
project id), loading the emulated Slack workspace into the BigQuery emulator. The checks read
the tables back with Google's client (the state test's DuckDB half reads its file) and compare
them with the workspace's ground truth."""

import json
import os
import re
import shutil
from datetime import datetime, timezone
from typing import Any, Dict, Tuple

import pytest

from tests.bigquery_emulator import BigQueryDataset
from tests.helpers import (
    ROOT,
    backfill_start,
    loaded_messages,
    pipeline_cli,
    readable_channel_ids,
    thread_with_age,
    truth_files,
    truth_messages,
    truth_reactions,
)
from tooling.slack_emulator import EmulatorServer, Workspace

TS = re.compile(r"^\d{10}\.\d{6}$")


@pytest.fixture
def flow(prefect_harness):
    from slack_pipeline_with_prefect import slack_pipeline

    return slack_pipeline


def bq_messages(bq: BigQueryDataset) -> Dict[Tuple[str, str], Dict[str, Any]]:
    rows = bq.query(
        "SELECT channel_id, ts, thread_ts, text, subtype, reply_count, latest_reply"
        f" FROM {bq.table('messages')}"
    )
    columns = ("thread_ts", "text", "subtype", "reply_count", "latest_reply")
    return {(r[0], r[1]): dict(zip(columns, r[2:], strict=True)) for r in rows}


def assert_no_duplicate_messages(bq: BigQueryDataset) -> None:
    total, distinct = bq.query(
        f"SELECT COUNT(*), COUNT(DISTINCT CONCAT(channel_id, '/', ts)) FROM {bq.table('messages')}"
    )[0]
    assert total == distinct > 0


@pytest.fixture
def backfilled(flow, bigquery_env: BigQueryDataset, slack_env: Tuple[Workspace, EmulatorServer]):
    workspace, server = slack_env
    summary = flow(start_date=backfill_start())
    return workspace, server, bigquery_env, summary


def test_backfill_equals_ground_truth(backfilled) -> None:
    workspace, _, bq, summary = backfilled
    loaded = bq_messages(bq)
    assert loaded == truth_messages(workspace, readable_channel_ids(workspace))
    assert all(TS.match(ts) for _, ts in loaded)  # Slack's string, not a float round-trip
    assert_no_duplicate_messages(bq)

    users = bq.query(f"SELECT id, name, profile__email FROM {bq.table('users')}")
    assert sorted(users) == sorted(
        (u["id"], u["name"], u["profile"].get("email")) for u in workspace.users()
    )
    channels = bq.query(f"SELECT id, name, is_archived FROM {bq.table('channels')}")
    public = [c for c in workspace.channels() if not c["is_private"]]
    assert sorted(channels) == sorted((c["id"], c["name"], c["is_archived"]) for c in public)
    assert summary["rows_loaded"]["messages"] == len(loaded)
    blob = every_value(bq)  # control for the PII test: without a mode the scan finds emails
    assert all(email.lower() in blob for email in emails(workspace))


def test_create_table_carries_partition_and_cluster(backfilled) -> None:
    """The emulator keeps no layout: the DDL dlt sent is the evidence (quoting as dlt renders)."""
    _, _, bq, _ = backfilled
    messages = bq.create_table_sql("messages")
    assert "`posted_at` TIMESTAMP" in messages
    assert "\nPARTITION BY DATE(`posted_at`)" in messages
    assert messages.endswith("CLUSTER BY `channel_id`")
    for table in ("users", "channels"):
        sql = bq.create_table_sql(table)
        assert "PARTITION BY" not in sql
        assert sql.endswith("CLUSTER BY `id`")


def test_reactions_and_files_follow_their_messages(backfilled, flow) -> None:
    """The child tables on BigQuery: the ground truth after the backfill (appended) and after
    a daily run (merged) in which a message lost its reactions; partitioned like messages."""
    workspace, _, bq, _ = backfilled
    readable = readable_channel_ids(workspace)

    def loaded() -> Tuple[set, set]:
        reactions = bq.query(f"SELECT channel_id, ts, name, user FROM {bq.table('reactions')}")
        files = bq.query(
            f"SELECT channel_id, ts, file_id, name, mimetype, size FROM {bq.table('files')}"
        )
        return set(reactions), set(files)

    assert loaded() == (truth_reactions(workspace, readable), truth_files(workspace, readable))
    channel = sorted(readable)[0]
    message = next(
        m
        for m in reversed(list(workspace.ground_truth(channel)))
        if m.get("reactions") and not m.get("thread_ts")
    )
    for reaction in message["reactions"]:
        for user in reaction["users"]:
            workspace.remove_reaction(channel, message["ts"], reaction["name"], user)
    flow()
    reactions, files = loaded()
    assert not {r for r in reactions if r[:2] == (channel, message["ts"])}
    assert (reactions, files) == (
        truth_reactions(workspace, readable),
        truth_files(workspace, readable),
    )
    for table in ("reactions", "files"):
        sql = bq.create_table_sql(table)
        assert "\nPARTITION BY DATE(`posted_at`)" in sql
        assert sql.endswith("CLUSTER BY `channel_id`")


def test_a_missing_reply_is_found_through_the_dataset_and_fetched_again(backfilled, flow):
    """The thread check (orchestration/reconcile.py) reads BigQuery back through dlt."""
    workspace, server, bq, summary = backfilled
    assert summary["incomplete_threads"] == []
    readable = readable_channel_ids(workspace)
    channel = sorted(readable)[0]
    thread = thread_with_age(workspace, channel, 2)
    replies = [
        m["ts"]
        for m in workspace.ground_truth(channel)
        if m.get("thread_ts") == thread and m["ts"] != thread and not m.get("subtype")
    ]
    count = truth_messages(workspace, {channel})[(channel, thread)]["reply_count"]
    bq.query(
        f"DELETE FROM {bq.table('messages')} WHERE channel_id = '{channel}' AND ts = '{replies[0]}'"
    )
    found = flow()["incomplete_threads"]
    assert found == [{"channel": channel, "thread": thread, "expected": count, "loaded": count - 1}]
    server.reset_stats()
    assert flow()["incomplete_threads"] == []
    assert server.request_counts()["conversations.replies"] == 1
    assert bq_messages(bq) == truth_messages(workspace, readable)


def test_staging_dataset_is_emptied_after_the_load(backfilled, flow) -> None:
    """`[load] truncate_staging_dataset = true` in .dlt/config.toml: merges leave no rows behind.
    (The backfill appended its messages into the empty table; the daily run merges them.)"""
    _, _, bq, _ = backfilled
    flow()
    staged = [table for table in bq.tables(bq.staging) if not table.startswith("_dlt")]
    assert {"messages", "users", "channels"} <= set(staged)
    assert {table: bq.row_count(table, bq.staging) for table in staged} == dict.fromkeys(staged, 0)
    assert bq.row_count("messages") > 0


def top_level_at_days(workspace: Workspace, channel: str, days: float) -> str:
    """A plain top-level message (no thread) about `days` old: editing or deleting it moves no
    thread mark, so it costs a daily run no extra call."""
    target = datetime.now(timezone.utc).timestamp() - days * 86400
    plain = [
        ts for (_, ts), m in truth_messages(workspace, {channel}).items() if not m["thread_ts"]
    ]
    return min(plain, key=lambda ts: abs(float(ts) - target))


def test_day_of_changes_then_a_quiet_day(backfilled, flow) -> None:
    workspace, server, bq, _ = backfilled
    readable = readable_channel_ids(workspace)
    channel = sorted(readable)[0]
    fresh_thread = thread_with_age(workspace, channel, 3)
    new_ts = workspace.post_message(channel, text="brand new message")
    reply = workspace.post_reply(channel, fresh_thread, text="late reply, 3-day thread")
    broadcast = workspace.post_reply(channel, fresh_thread, text="broadcast!", broadcast=True)
    edited = top_level_at_days(workspace, channel, 1)
    deleted = top_level_at_days(workspace, channel, 2)
    workspace.edit_message(channel, edited, "edited text")
    workspace.delete_message(channel, deleted)

    server.reset_stats()
    flow()
    counts = server.request_counts()
    loaded = bq_messages(bq)
    assert loaded == truth_messages(workspace, readable)
    assert loaded[(channel, new_ts)]["text"] == "brand new message"
    assert loaded[(channel, reply)]["text"] == "late reply, 3-day thread"
    assert loaded[(channel, broadcast)]["subtype"] == "thread_broadcast"
    assert loaded[(channel, fresh_thread)]["latest_reply"] == broadcast
    assert loaded[(channel, edited)]["text"] == "edited text"
    assert (channel, deleted) not in loaded
    assert_no_duplicate_messages(bq)
    assert counts["conversations.replies"] == 1  # the one thread that changed

    server.reset_stats()
    flow()
    counts = server.request_counts()
    assert counts.get("conversations.replies", 0) == 0
    assert counts["conversations.history"] == len(readable)
    assert bq_messages(bq) == truth_messages(workspace, readable)


@pytest.mark.parametrize("destination", ["duckdb", "bigquery"])
def test_state_restored_from_the_warehouse(
    destination: str, flow, slack_env, request: pytest.FixtureRequest, tmp_path
) -> None:
    """A new machine or container: no local dlt folder. The next daily run must continue from
    the state dlt committed to the destination: the same calls as a normal daily run, and the
    changes only that state can see (an edit and a deletion older than one day, which a first
    run would not read back), not a new backfill and not a gap."""
    workspace, server = slack_env
    if destination == "bigquery":
        bq = request.getfixturevalue("bigquery_env")
        read_messages = lambda: bq_messages(bq)  # noqa: E731
    else:
        read_messages = lambda: loaded_messages(os.environ["DESTINATION__DUCKDB__CREDENTIALS"])  # noqa: E731
    readable = readable_channel_ids(workspace)
    flow(start_date=backfill_start())
    server.reset_stats()
    normal = flow()
    normal_calls = server.request_counts()

    shutil.rmtree(tmp_path / "pipelines")
    channel = sorted(readable)[0]
    edited = top_level_at_days(workspace, channel, 3)
    deleted = top_level_at_days(workspace, channel, 4)
    workspace.edit_message(channel, edited, "edited while the folder was gone")
    workspace.delete_message(channel, deleted)
    new_ts = workspace.post_message(channel, text="posted while the folder was gone")
    server.reset_stats()
    restored = flow()
    restored_calls = server.request_counts()
    print(
        f"{destination}: normal daily run {normal_calls}, after the folder was deleted "
        f"{restored_calls}; messages rows {normal['rows_loaded'].get('messages')} vs "
        f"{restored['rows_loaded'].get('messages')}"
    )

    assert restored_calls == normal_calls
    assert restored_calls["conversations.history"] == len(readable)
    assert restored_calls.get("conversations.replies", 0) == 0
    loaded = read_messages()
    assert loaded == truth_messages(workspace, readable)
    assert loaded[(channel, edited)]["text"] == "edited while the folder was gone"
    assert (channel, deleted) not in loaded and (channel, new_ts) in loaded
    # the lookback window again, plus the new message and the deletion
    assert restored["rows_loaded"]["messages"] <= normal["rows_loaded"]["messages"] + 2


def every_value(bq: BigQueryDataset) -> str:
    """Every row of every table (dlt's included) of the dataset and its staging dataset, as
    JSON text: a raw value anywhere shows up here."""
    rows = [
        row[0]
        for dataset in (bq.name, bq.staging)
        for table in bq.tables(dataset)
        for row in bq.query(f"SELECT TO_JSON_STRING(t) FROM {bq.table(table, dataset)} AS t")
    ]
    assert rows
    return "\n".join(rows).lower()


def emails(workspace: Workspace) -> list:
    found = [u["profile"]["email"] for u in workspace.users() if u["profile"].get("email")]
    assert found
    return found


def test_cli_run_with_pii_hash_leaves_no_raw_email(bigquery_env, slack_env, tmp_path) -> None:
    """`slack_pipeline_with_prefect.py run` in a subprocess, as a user starts it, with
    `pii_mode = "hash"`: users load (hashed), and no email is in any table or column."""
    workspace, _ = slack_env
    bq = bigquery_env
    env = dict(os.environ)  # the fixtures' Slack and BigQuery settings, as a user exports them
    env.update(
        SOURCES__SLACK__PII_MODE="hash",
        SOURCES__SLACK__PII_SALT="test-salt-not-secret",
        PREFECT_HOME=str(tmp_path / "prefect_home"),
    )
    result = pipeline_cli("run", cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ids = bq.query(f"SELECT id, profile__email FROM {bq.table('users')}")
    assert sorted(i for i, _ in ids) == sorted(u["id"] for u in workspace.users())
    assert all(email is None or re.fullmatch(r"[0-9a-f]{64}", email) for _, email in ids)
    assert bq.row_count("messages") > 0
    blob = every_value(bq)
    for email in emails(workspace):
        assert email.lower() not in blob


def test_dms_members_and_user_groups_on_bigquery(
    flow, bigquery_env: BigQueryDataset, start_emulator, monkeypatch, tmp_path
) -> None:
    """Every kind of conversation and every membership table through the flow into BigQuery,
    exactly the workspace's: DMs with their counterpart, group DMs with their members (a JSON
    column), channel members, user groups and their members."""
    from tests.helpers import set_slack_env
    from tests.test_conversations import ALL_KINDS, WITH_DMS, all_readable, dm_workspace

    server = start_emulator(dm_workspace(), scopes=(*WITH_DMS, "usergroups:read"))
    workspace = server.workspace
    set_slack_env(monkeypatch, server, tmp_path)
    monkeypatch.setenv("SOURCES__SLACK__CONVERSATION_TYPES", json.dumps(ALL_KINDS))
    monkeypatch.setenv("SOURCES__SLACK__CHANNEL_MEMBERS", "true")
    monkeypatch.setenv("SOURCES__SLACK__USER_GROUPS", "true")
    flow(start_date=backfill_start())
    bq = bigquery_env
    assert bq_messages(bq) == truth_messages(workspace, all_readable(workspace))
    channels = workspace.channels()
    ims = bq.query(f"SELECT id, user FROM {bq.table('channels')} WHERE is_im")
    assert sorted(ims) == sorted((c["id"], c["user"]) for c in channels if c.get("is_im"))
    groups = bq.query(
        f"SELECT id, TO_JSON_STRING(members) FROM {bq.table('channels')} WHERE is_mpim"
    )
    assert {i: json.loads(m) for i, m in groups} == {
        c["id"]: workspace.member_ids(c["id"]) for c in channels if c.get("is_mpim")
    }
    listed = [c["id"] for c in channels if c.get("is_member", True) or not c["is_private"]]
    members = bq.query(f"SELECT channel_id, user_id FROM {bq.table('channel_members')}")
    assert len(members) == len(set(members))
    assert set(members) == {(c, u) for c in listed for u in workspace.member_ids(c)}
    group_members = bq.query(f"SELECT usergroup_id, user_id FROM {bq.table('user_group_members')}")
    truth = {(g["id"], u) for g in workspace.user_groups() for u in g["users"]}
    assert sorted(group_members) == sorted(truth)
    user_groups = bq.query(f"SELECT id, handle FROM {bq.table('user_groups')}")
    assert sorted(user_groups) == sorted((g["id"], g["handle"]) for g in workspace.user_groups())
