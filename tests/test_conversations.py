"""All four kinds of conversation: DMs and group DMs as Slack shows them (ids, `user`, members,
their own scopes), read only when `conversation_types` asks, exact against the emulator's truth,
from the API and from a full export alike."""

import json

import pytest
import requests

from slack_source import SlackConfigError, make_client, resolve_conversation_types
from slack_source.channels import list_channels
from tests.helpers import (
    DATASET,
    SMALL_SPEC,
    TOKEN,
    backfill_date,
    emulator_cli,
    load_daily,
    load_source,
    loaded_messages,
    make_test_pipeline,
    query,
    readable_channel_ids,
    truth_messages,
)
from tooling.slack_emulator import Workspace, WorkspaceSpec
from tooling.slack_emulator.config import DEFAULT_SCOPES
from tooling.slack_emulator.export import write_export

DM_SCOPES = ("im:read", "im:history", "mpim:read", "mpim:history")
WITH_DMS = (*DEFAULT_SCOPES, *DM_SCOPES)
DM_SPEC = dict(SMALL_SPEC, dms=3, group_dms=2, messages=1000)
ALL_KINDS = ["public_channel", "private_channel", "mpim", "im"]


def dm_workspace() -> Workspace:
    return Workspace(WorkspaceSpec(**DM_SPEC))


def kinds(workspace: Workspace, flag: str) -> list:
    return [c for c in workspace.channels() if c.get(flag)]


def all_readable(workspace: Workspace) -> set:
    """What a run with every kind reads: member channels, private ones, and every DM."""
    direct = {c["id"] for c in workspace.channels() if c.get("is_im") or c.get("is_mpim")}
    return readable_channel_ids(workspace, include_private=True) | direct


def slack_call(server, method, token=TOKEN, **args):
    headers = {"Authorization": f"Bearer {token}"}
    return requests.post(server.base_url + method, data=args, headers=headers, timeout=10).json()


def test_the_emulator_shows_dms_as_slack_does_with_their_own_scopes(start_emulator):
    server = start_emulator(dm_workspace(), scopes=WITH_DMS)
    workspace = server.workspace
    ims, mpims = kinds(workspace, "is_im"), kinds(workspace, "is_mpim")
    assert len(ims) == 3 and len(mpims) == 2
    listed = slack_call(server, "conversations.list", types="im,mpim")["channels"]
    assert {c["id"] for c in listed} == {c["id"] for c in ims + mpims}
    for im in (c for c in listed if c.get("is_im")):
        assert im["id"].startswith("D") and im["user"].startswith("U")
        assert "name" not in im and "is_member" not in im
    for mpim in (c for c in listed if c.get("is_mpim")):
        assert mpim["id"][0] in "GC" and mpim["name"].startswith("mpdm-")
        assert mpim["is_private"] and not mpim["is_channel"]
    # the default types are public channels only: no DM in the plain listing
    plain = slack_call(server, "conversations.list")["channels"]
    assert not any(c.get("is_im") or c.get("is_mpim") for c in plain)
    members = slack_call(server, "conversations.members", channel=mpims[0]["id"])["members"]
    assert members == workspace.member_ids(mpims[0]["id"]) and len(members) >= 3

    narrow = start_emulator(dm_workspace(), scopes=DEFAULT_SCOPES)
    refused = slack_call(narrow, "conversations.list", types="im")
    assert (refused["error"], refused["needed"]) == ("missing_scope", "im:read")
    history = slack_call(narrow, "conversations.history", channel=ims[0]["id"])
    assert (history["error"], history["needed"]) == ("missing_scope", "im:history")


def test_conversation_types_are_checked_before_any_call():
    assert resolve_conversation_types(None, False) == ("public_channel",)
    assert resolve_conversation_types(None, True) == ("public_channel", "private_channel")
    assert resolve_conversation_types(["im", "public_channel"], True) == (
        "public_channel",
        "private_channel",
        "im",
    )
    with pytest.raises(SlackConfigError, match=r"Unknown conversation type\(s\): dm;"):
        resolve_conversation_types(["public_channel", "dm"])


def test_every_kind_loads_exactly_and_the_default_reads_no_dm(start_emulator, tmp_path):
    server = start_emulator(dm_workspace(), scopes=WITH_DMS)
    workspace = server.workspace
    default = make_test_pipeline(tmp_path / "default", name="slack_default")
    _, default_calls = load_source(default, server, start_date=backfill_date())
    public = readable_channel_ids(workspace)
    assert set(loaded_messages(default)) == set(truth_messages(workspace, public))

    pipeline = make_test_pipeline(tmp_path)
    _, calls = load_source(
        pipeline, server, start_date=backfill_date(), conversation_types=ALL_KINDS
    )
    readable = all_readable(workspace)
    assert loaded_messages(pipeline) == truth_messages(workspace, readable)
    ims, mpims = kinds(workspace, "is_im"), kinds(workspace, "is_mpim")
    assert any(k[0] == ims[0]["id"] for k in loaded_messages(pipeline))
    rows = dict(query(pipeline, f'SELECT id, "user" FROM {DATASET}.channels WHERE is_im'))
    assert rows == {c["id"]: c["user"] for c in ims}
    groups = query(pipeline, f"SELECT id, members FROM {DATASET}.channels WHERE is_mpim")
    assert {i: json.loads(m) for i, m in groups} == {
        c["id"]: workspace.member_ids(c["id"]) for c in mpims
    }
    # what DMs cost: one conversations.members call per group DM, history and replies of each
    assert calls["conversations.list"] == default_calls["conversations.list"] == 1
    assert calls["conversations.members"] == len(mpims)
    assert "conversations.members" not in default_calls

    # a daily run afterwards: still exact, nothing read twice into the table
    workspace.post_message(ims[0]["id"], text="a new DM")
    load_daily(pipeline, server, conversation_types=ALL_KINDS)
    assert loaded_messages(pipeline) == truth_messages(workspace, readable)


def test_a_full_export_with_dms_then_daily_runs_with_every_kind(start_emulator, tmp_path):
    from tests.test_export import assert_unique, import_zip

    server = start_emulator(dm_workspace(), scopes=WITH_DMS)
    workspace = server.workspace
    exported = write_export(workspace, tmp_path / "full.zip")
    folders = {
        c.get("name") or c["id"] for c in workspace.channels() if c.get("is_im") or c.get("is_mpim")
    }

    without = make_test_pipeline(tmp_path / "without", name="slack_without")
    rows = import_zip(without, exported.path)
    loaded = loaded_messages(without)
    direct = {c["id"] for c in workspace.channels() if c.get("is_im") or c.get("is_mpim")}
    assert not any(key[0] in direct for key in loaded), "DMs are off unless asked for"
    assert rows["messages"] < exported.messages

    pipeline = make_test_pipeline(tmp_path)
    rows = import_zip(pipeline, exported.path, conversation_types=ALL_KINDS)
    assert rows["messages"] == exported.messages
    assert loaded_messages(pipeline) == truth_messages(workspace)
    assert folders  # DM folders were written and read
    workspace.post_message(kinds(workspace, "is_mpim")[0]["id"], text="after the export")
    load_daily(pipeline, server, conversation_types=ALL_KINDS)
    loaded = loaded_messages(pipeline)
    readable = all_readable(workspace)
    truth = truth_messages(workspace)
    assert {k: v for k, v in loaded.items() if k[0] in readable} == {
        k: v for k, v in truth.items() if k[0] in readable
    }
    assert_unique(pipeline)


def test_a_kind_the_token_cannot_read_is_one_line_and_exit_2(start_emulator, tmp_path):
    server = start_emulator(dm_workspace(), scopes=DEFAULT_SCOPES)
    kinds_setting = "SOURCES__SLACK__CONVERSATION_TYPES"
    result = emulator_cli(server, tmp_path, "run", **{kinds_setting: '["public_channel", "im"]'})
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "im:history" in errors[0] and "im:read" in errors[0], errors
    assert TOKEN not in result.stderr + result.stdout
    assert not (tmp_path / "cli.duckdb").exists(), "nothing written"
    assert server.request_counts().get("conversations.list") is None

    result = emulator_cli(server, tmp_path, "run", **{kinds_setting: '["public_channel", "dms"]'})
    assert result.returncode == 2
    assert "Unknown conversation type(s): dms" in result.stderr


def test_check_shows_which_kinds_the_token_can_read(start_emulator, tmp_path):
    server = start_emulator(dm_workspace(), scopes=(*DEFAULT_SCOPES, "im:read", "im:history"))
    result = emulator_cli(
        server, tmp_path, "check", SOURCES__SLACK__CONVERSATION_TYPES='["public_channel", "im"]'
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        "Conversations: reads public_channel, im; the token can read public_channel,"
        " private_channel, im" in result.stdout
    ), result.stdout
    client = make_client(TOKEN, server.base_url, rate_limit_profile="off")
    assert len([c for c in list_channels(client, ("im",))]) == 3
