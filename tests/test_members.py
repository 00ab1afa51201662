"""`channel_members`, `user_groups`, `user_group_members`: exactly the workspace's, a member who
left removed, at the calls stated in docs/daily-run.md, and only when switched on."""

import os

from slack_source import check_access, make_client
from tests.helpers import (
    DATASET,
    TOKEN,
    load_daily,
    load_source,
    make_test_pipeline,
    query,
)
from tooling.slack_emulator.config import DEFAULT_SCOPES

WITH_USER_GROUPS = (*DEFAULT_SCOPES, "usergroups:read")


def loaded_pairs(pipeline, table, key):
    rows = query(pipeline, f"SELECT {key}, user_id FROM {DATASET}.{table}")
    assert len(rows) == len(set(rows)), "one row per pair"
    return set(rows)


def truth_channel_members(workspace):
    public = [c["id"] for c in workspace.channels() if not c["is_private"]]
    return {(c, u) for c in public for u in workspace.member_ids(c)}


def test_channel_members_follow_the_workspace_at_one_call_per_channel(emulator, tmp_path):
    workspace, server = emulator
    off = make_test_pipeline(tmp_path / "off", name="slack_off")
    load_source(off, server, start_date=None)
    pipeline = make_test_pipeline(tmp_path)
    _, calls = load_source(pipeline, server, start_date=None, channel_members=True)
    assert loaded_pairs(pipeline, "channel_members", "channel_id") == truth_channel_members(
        workspace
    )
    public = [c for c in workspace.channels() if not c["is_private"]]
    assert calls["conversations.members"] == len(public)  # under 1,000 members: one page each

    channel = next(c["id"] for c in public if len(workspace.member_ids(c["id"])) > 2)
    leaver = workspace.member_ids(channel)[0]
    workspace.leave_channel(channel, leaver)
    _, without = load_daily(off, server)
    _, daily = load_daily(pipeline, server, channel_members=True)
    loaded = loaded_pairs(pipeline, "channel_members", "channel_id")
    assert (channel, leaver) not in loaded
    assert loaded == truth_channel_members(workspace)
    # the only difference the setting makes: one conversations.members call per channel
    assert daily == {**without, "conversations.members": len(public)}
    assert "conversations.members" not in without


def test_user_groups_and_their_members(start_emulator, tmp_path):
    server = start_emulator(scopes=WITH_USER_GROUPS)
    workspace = server.workspace
    pipeline = make_test_pipeline(tmp_path)
    _, calls = load_source(pipeline, server, start_date=None, user_groups=True)
    assert calls["usergroups.list"] == 1
    groups = workspace.user_groups()
    assert len(groups) == 3 and any(g["date_delete"] for g in groups)  # a disabled one too
    loaded = query(pipeline, f"SELECT id, handle, date_delete FROM {DATASET}.user_groups")
    assert sorted(loaded) == sorted((g["id"], g["handle"], g["date_delete"]) for g in groups)
    truth = {(g["id"], u) for g in groups for u in g["users"]}
    assert loaded_pairs(pipeline, "user_group_members", "usergroup_id") == truth

    shrunk, emptied = groups[0], groups[1]
    workspace.set_user_group_users(shrunk["id"], shrunk["users"][1:])
    workspace.set_user_group_users(emptied["id"], [])
    load_daily(pipeline, server, user_groups=True)
    truth = {(g["id"], u) for g in workspace.user_groups() for u in g["users"]}
    loaded = loaded_pairs(pipeline, "user_group_members", "usergroup_id")
    assert loaded == truth
    assert (shrunk["id"], shrunk["users"][0]) not in loaded
    assert not {row for row in loaded if row[0] == emptied["id"]}
    flagged = query(pipeline, f"SELECT COUNT(*) FROM {DATASET}.user_group_members WHERE is_deleted")
    assert flagged == [(0,)]


def test_preflight_names_usergroups_read_only_when_user_groups_are_on(start_emulator):
    server = start_emulator()  # the default scopes: no usergroups:read
    client = make_client(TOKEN, server.base_url, rate_limit_profile="off")
    assert check_access(client).missing == ()
    assert check_access(client, user_groups=True).missing == ("usergroups:read",)
    granted = start_emulator(scopes=WITH_USER_GROUPS)
    client = make_client(TOKEN, granted.base_url, rate_limit_profile="off")
    assert check_access(client, user_groups=True).missing == ()


def test_the_daily_flow_loads_channel_members_when_switched_on(
    prefect_harness, slack_env, monkeypatch
):
    from slack_pipeline_with_prefect import slack_pipeline

    workspace, _ = slack_env
    monkeypatch.setenv("SOURCES__SLACK__CHANNEL_MEMBERS", "true")
    summary = slack_pipeline()
    public = [c for c in workspace.channels() if not c["is_private"]]
    assert summary["api_calls"]["conversations.members"] == len(public)
    path = os.environ["DESTINATION__DUCKDB__CREDENTIALS"]
    assert loaded_pairs(path, "channel_members", "channel_id") == truth_channel_members(workspace)
