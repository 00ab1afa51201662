"""The Slack emulator over real HTTP: content, paging, errors, mutations, limits and faults."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from tests.helpers import ROOT, SMALL_SPEC, TOKEN
from tooling.slack_emulator import (
    EmulatorConfig,
    EmulatorServer,
    FaultSpec,
    RemoteEmulator,
    Workspace,
    WorkspaceSpec,
)
from tooling.slack_emulator.rate_limits import RateLimiter, format_retry_after

NOW = 1_750_000_000.0
TS_RE = re.compile(r"^\d{10}\.\d{6}$")
SPEC = WorkspaceSpec(**dict(SMALL_SPEC, users=12, channels=6, messages=900, now=NOW))


# -- helpers ---------------------------------------------------------------------------------
def call(
    server: EmulatorServer, method: str, token: str | None = TOKEN, verb: str = "post", **args
) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if verb == "get":
        return requests.get(server.base_url + method, params=args, headers=headers, timeout=10)
    return requests.post(server.base_url + method, data=args, headers=headers, timeout=10)


def api(server: EmulatorServer, method: str, **args) -> dict:
    resp = call(server, method, **args)
    assert resp.status_code == 200, resp.text
    return resp.json()


def pages(server: EmulatorServer, method: str, **args) -> Iterator[dict]:
    cursor = ""
    while True:
        data = api(server, method, **args, **({"cursor": cursor} if cursor else {}))
        assert data["ok"], data
        yield data
        cursor = (data.get("response_metadata") or {}).get("next_cursor")  # absent: last page
        if not cursor:
            return


def history(server: EmulatorServer, channel: str, **args) -> list[dict]:
    return [
        m
        for page in pages(server, "conversations.history", channel=channel, **args)
        for m in page["messages"]
    ]


def channel_by_name(ws: Workspace, name: str) -> dict:
    return next(c for c in ws.channels() if c["name"] == name)


def expected_history(ws: Workspace, cid: str) -> list[str]:
    """ts of what history must show: top-level messages and broadcasts, newest first."""
    stamps = [
        m["ts"]
        for m in ws.ground_truth(cid)
        if "thread_ts" not in m
        or m["thread_ts"] == m["ts"]
        or m.get("subtype") == "thread_broadcast"
    ]
    return sorted(stamps, key=float, reverse=True)


def depth(obj: object) -> int:
    if isinstance(obj, dict):
        return 1 + max((depth(v) for v in obj.values()), default=0)
    if isinstance(obj, list):
        return 1 + max((depth(v) for v in obj), default=0)
    return 0


@pytest.fixture(scope="module")
def ws() -> Workspace:
    return Workspace(SPEC)


@pytest.fixture(scope="module")
def server(ws: Workspace) -> Iterator[EmulatorServer]:
    """Read-only tests share this server; mutating tests use ``fresh``."""
    with EmulatorServer(ws) as srv:
        yield srv


@pytest.fixture
def fresh() -> Iterator[EmulatorServer]:
    with EmulatorServer(Workspace(SPEC)) as srv:
        yield srv


def member_channels(ws: Workspace) -> list[dict]:
    return [c for c in ws.channels() if c["is_member"]]


# -- transport and auth ------------------------------------------------------------------------
def test_urls_and_auth_test(server: EmulatorServer, ws: Workspace) -> None:
    assert re.match(r"^http://127\.0\.0\.1:\d+/api/$", server.base_url)
    assert server.control_url == server.base_url.replace("/api/", "/_emulator/")
    data = api(server, "auth.test")
    assert data["ok"] is True
    assert data["team_id"] == ws.team.id and data["user_id"] == ws.team.bot_user_id
    assert data["bot_id"].startswith("B")


def test_listening_socket_is_tcp_so_answers_are_not_delayed(server: EmulatorServer) -> None:
    """asyncio sets TCP_NODELAY only on sockets whose proto is TCP; with proto 0 every
    keep-alive answer waited ~40 ms for the client's delayed ACK (Slack never does)."""
    import socket

    assert server._sock is not None
    assert server._sock.proto == socket.IPPROTO_TCP


def test_auth_errors_and_unknown_method(server: EmulatorServer) -> None:
    assert api(server, "auth.test", token=None) == {"ok": False, "error": "not_authed"}
    assert api(server, "auth.test", token="xoxb-wrong")["error"] == "invalid_auth"
    # a token POST field works, a token in the query string does not
    form = requests.post(server.base_url + "auth.test", data={"token": TOKEN}, timeout=10)
    assert form.json()["ok"] is True
    query = requests.get(server.base_url + "auth.test", params={"token": TOKEN}, timeout=10)
    assert query.json()["error"] == "not_authed"
    unknown = api(server, "chat.postMessage")
    assert unknown["ok"] is False and unknown["error"] == "unknown_method"


def test_missing_scope_and_email_scope(ws: Workspace) -> None:
    cfg = EmulatorConfig(scopes=("channels:read", "users:read"))
    with EmulatorServer(ws, cfg) as srv:
        general = channel_by_name(ws, "general")["id"]
        err = api(srv, "conversations.history", channel=general)
        assert err == {
            "ok": False,
            "error": "missing_scope",
            "needed": "channels:history",
            "provided": "channels:read,users:read",
        }
        err = api(srv, "conversations.list", types="public_channel,private_channel")
        assert err["error"] == "missing_scope" and err["needed"] == "groups:read"
        assert api(srv, "conversations.join", channel=general)["needed"] == "channels:join"
        members = api(srv, "users.list")["members"]
        assert members and all("email" not in u["profile"] for u in members)


# -- users and channels ------------------------------------------------------------------------
def test_users_list(server: EmulatorServer, ws: Workspace) -> None:
    data = api(server, "users.list")
    members = data["members"]
    assert "response_metadata" not in data  # the last page's default (Slack omits it too)
    assert len(members) == SPEC.users + 5  # 3 integration bots, the app bot, Slackbot
    humans = [u for u in members if not u["is_bot"] and u["id"] != "USLACKBOT"]
    assert len(humans) == SPEC.users
    assert any(u["deleted"] for u in humans)
    assert all(u["profile"]["email"].endswith("@emulator.example.com") for u in humans)
    assert all(u["profile"]["image_72"].startswith("https://") for u in humans)
    assert {"tz", "tz_label", "tz_offset", "is_admin", "is_owner", "updated"} <= set(humans[0])
    assert sum(u["is_owner"] for u in humans) == 1
    assert any(u["id"] == "USLACKBOT" for u in members)
    bot = next(u for u in members if u["id"] == ws.team.bot_user_id)
    assert bot["is_bot"] and bot["profile"]["bot_id"] == ws.team.bot_id
    paged = [u["id"] for page in pages(server, "users.list", limit=4) for u in page["members"]]
    assert paged == [u["id"] for u in members]
    assert api(server, "users.list", cursor="not base64!")["error"] == "invalid_cursor"


def test_conversations_list(server: EmulatorServer, ws: Workspace) -> None:
    public = api(server, "conversations.list")["channels"]
    assert all(not c["is_private"] for c in public)
    assert len(public) == SPEC.channels - SPEC.private_channels
    assert [c["name"] for c in public if c["is_general"]] == ["general"]
    assert sum(not c["is_member"] for c in public) == SPEC.non_member_channels
    assert sum(c["is_archived"] for c in public) == SPEC.archived_channels
    for c in public:
        assert re.match(r"^C0[0-9A-Z]{9}$", c["id"])
        assert {"created", "creator", "topic", "purpose", "num_members"} <= set(c)
    both = api(server, "conversations.list", types="public_channel,private_channel")["channels"]
    assert sum(c["is_private"] for c in both) == SPEC.private_channels
    unarchived = api(server, "conversations.list", exclude_archived="true")["channels"]
    assert len(unarchived) == len(public) - SPEC.archived_channels
    paged = [
        c["id"]
        for page in pages(server, "conversations.list", limit=2, types="public_channel")
        for c in page["channels"]
    ]
    assert paged == [c["id"] for c in public]
    assert api(server, "conversations.list", types="bogus")["error"] == "invalid_types"


def test_conversations_members(server: EmulatorServer, ws: Workspace) -> None:
    general = channel_by_name(ws, "general")
    active = [u["id"] for u in ws.users()[: SPEC.users] if not u["deleted"]]
    members = [
        m
        for p in pages(server, "conversations.members", channel=general["id"], limit=3)
        for m in p["members"]
    ]
    assert members == active + [ws.team.bot_user_id]
    assert general["num_members"] == len(members)
    assert api(server, "conversations.members", channel="C0NOPE")["error"] == "channel_not_found"


# -- history -----------------------------------------------------------------------------------
def test_history_pages_match_ground_truth(server: EmulatorServer, ws: Workspace) -> None:
    for ch in member_channels(ws):
        for limit in (7, 999):
            msgs = history(server, ch["id"], limit=limit)
            stamps = [m["ts"] for m in msgs]
            assert stamps == expected_history(ws, ch["id"])
            assert all(TS_RE.match(ts) for ts in stamps)
            assert len(set(stamps)) == len(stamps)
            # replies that are not broadcasts never show up in history
            assert all(
                m.get("thread_ts") in (None, m["ts"]) or m["subtype"] == "thread_broadcast"
                for m in msgs
            )


def test_history_paging_contract(server: EmulatorServer, ws: Workspace) -> None:
    cid = channel_by_name(ws, "general")["id"]
    first = api(server, "conversations.history", channel=cid, limit=10)
    assert first["has_more"] is True and len(first["messages"]) == 10
    assert first["response_metadata"]["next_cursor"]
    assert api(server, "conversations.history", channel=cid, cursor="@@@")["error"] == (
        "invalid_cursor"
    )
    everything = api(server, "conversations.history", channel=cid, limit=999)
    assert everything["has_more"] is False
    assert "response_metadata" not in everything
    default = api(server, "conversations.history", channel=cid)
    assert len(default["messages"]) == min(100, len(everything["messages"]))


def test_history_message_shapes(server: EmulatorServer, ws: Workspace) -> None:
    msgs = [m for ch in member_channels(ws) for m in history(server, ch["id"], limit=999)]
    subtypes = {m.get("subtype") for m in msgs}
    assert {None, "bot_message", "channel_join", "thread_broadcast"} <= subtypes
    plain = [m for m in msgs if "subtype" not in m]
    assert all(m["client_msg_id"] and m["user"].startswith("U") for m in plain)
    assert max(depth(m["blocks"]) for m in plain) >= 7
    assert all(m["blocks"][0]["type"] == "rich_text" for m in plain)
    reactions = [r for m in msgs for r in m.get("reactions", [])]
    assert reactions and all(r["count"] == len(r["users"]) and r["name"] for r in reactions)
    files = [f for m in msgs for f in m.get("files", [])]
    assert files and all({"id", "name", "mimetype", "size"} <= set(f) for f in files)
    assert any(m.get("attachments") for m in plain)
    assert any("edited" in m and float(m["edited"]["ts"]) > float(m["ts"]) for m in msgs)
    bots = [m for m in msgs if m.get("subtype") == "bot_message"]
    assert all(m["bot_id"].startswith("B") and "user" not in m for m in bots)
    parents = [m for m in msgs if m.get("thread_ts") == m["ts"]]
    assert len(parents) == len(ws.thread_parents()) - len(
        [p for p in ws.thread_parents() if not channel_is_member(ws, p[0])]
    )
    for p in parents:
        assert p["reply_count"] >= 1 and p["reply_users_count"] == len(p["reply_users"])
        assert float(p["latest_reply"]) > float(p["ts"])
    broadcasts = [m for m in msgs if m.get("subtype") == "thread_broadcast"]
    for b in broadcasts:
        assert b["root"]["ts"] == b["thread_ts"] and b["root"]["reply_count"] >= 1


def channel_is_member(ws: Workspace, cid: str) -> bool:
    return next(c for c in ws.channels() if c["id"] == cid)["is_member"]


def test_history_time_window(server: EmulatorServer, ws: Workspace) -> None:
    cid = channel_by_name(ws, "general")["id"]
    every = expected_history(ws, cid)
    newer, older = every[5], every[15]
    window = [m["ts"] for m in history(server, cid, oldest=older, latest=newer)]
    assert window == every[6:15]
    inclusive = [m["ts"] for m in history(server, cid, oldest=older, latest=newer, inclusive=1)]
    assert inclusive == every[5:16]
    assert [m["ts"] for m in history(server, cid, oldest=older)] == every[:15]
    assert [m["ts"] for m in history(server, cid, latest=newer, inclusive="true")] == every[5:]
    assert [m["ts"] for m in history(server, cid, inclusive=1)] == every
    paged = [m["ts"] for m in history(server, cid, oldest=older, latest=newer, limit=2)]
    assert paged == every[6:15]
    assert api(server, "conversations.history", channel=cid, oldest="yesterday")["error"] == (
        "invalid_ts_oldest"
    )
    assert api(server, "conversations.history", channel=cid, latest="1.2.3")["error"] == (
        "invalid_ts_latest"
    )


def test_history_limit_clamp_and_strict() -> None:
    spec = WorkspaceSpec(
        seed=3,
        channels=1,
        private_channels=0,
        archived_channels=0,
        non_member_channels=0,
        messages=2500,
        threads=5,
        now=NOW,
    )
    ws = Workspace(spec)
    cid = ws.channels()[0]["id"]
    with EmulatorServer(ws) as srv:
        data = api(srv, "conversations.history", channel=cid, limit=5000)
        assert len(data["messages"]) == 999 and data["has_more"] is True
        assert api(srv, "conversations.history", channel=cid, limit="x")["error"] == (
            "invalid_limit"
        )
    with EmulatorServer(ws, EmulatorConfig(strict_limit=True)) as srv:
        assert api(srv, "conversations.history", channel=cid, limit=1000)["error"] == (
            "invalid_limit"
        )
        assert len(api(srv, "conversations.history", channel=cid, limit=999)["messages"]) == 999


def test_history_channel_errors_and_archived(server: EmulatorServer, ws: Workspace) -> None:
    assert api(server, "conversations.history", channel="C0NOTEXIST")["error"] == (
        "channel_not_found"
    )
    assert api(server, "conversations.history")["error"] == "invalid_arguments"  # as Slack
    outsider = next(c for c in ws.channels() if not c["is_member"])
    assert api(server, "conversations.history", channel=outsider["id"])["error"] == (
        "not_in_channel"
    )
    archived = next(c for c in ws.channels() if c["is_archived"])
    assert (
        history(server, archived["id"])
        and api(server, "conversations.history", channel=archived["id"])["ok"]
    )
    private = next(c for c in ws.channels() if c["is_private"])
    assert [m["ts"] for m in history(server, private["id"])] == expected_history(ws, private["id"])


def test_request_styles_get_form_json(server: EmulatorServer, ws: Workspace) -> None:
    cid = channel_by_name(ws, "general")["id"]
    via_form = call(server, "conversations.history", channel=cid, limit=5).content
    via_get = call(server, "conversations.history", verb="get", channel=cid, limit=5).content
    via_json = requests.post(
        server.base_url + "conversations.history",
        json={"channel": cid, "limit": 5},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).content
    assert via_form == via_get == via_json
    assert len(json.loads(via_form)["messages"]) == 5
    merged = requests.post(
        server.base_url + "conversations.history?limit=3",
        data={"channel": cid},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()
    assert len(merged["messages"]) == 3


# -- replies -----------------------------------------------------------------------------------
def replies(server: EmulatorServer, cid: str, ts: str, **args) -> list[list[dict]]:
    return [
        p["messages"] for p in pages(server, "conversations.replies", channel=cid, ts=ts, **args)
    ]


def test_replies_threads_match_ground_truth(server: EmulatorServer, ws: Workspace) -> None:
    checked = 0
    for cid, parent_ts in ws.thread_parents():
        if not channel_is_member(ws, cid):
            continue
        truth = [m for m in ws.ground_truth(cid) if m.get("thread_ts") == parent_ts]
        (page,) = replies(server, cid, parent_ts)
        assert page[0]["ts"] == parent_ts and page[0]["reply_count"] == len(page) - 1
        assert [m["ts"] for m in page] == [m["ts"] for m in truth]
        stamps = [float(m["ts"]) for m in page[1:]]
        assert stamps == sorted(stamps) and stamps[0] > float(parent_ts)
        assert all(m["thread_ts"] == parent_ts for m in page)
        assert all(m["parent_user_id"] == page[0]["user"] for m in page[1:])
        assert page[0]["latest_reply"] == page[-1]["ts"]
        assert page[0]["reply_users"] == list(dict.fromkeys(m["user"] for m in page[1:]))
        # any reply's ts fetches the whole thread
        assert replies(server, cid, page[-1]["ts"]) == [page]
        checked += 1
    assert checked >= 20
    late = [
        (cid, ts)
        for cid, ts in ws.thread_parents()
        for m in ws.ground_truth(cid)
        if m.get("thread_ts") == ts and m["ts"] != ts and float(m["ts"]) - float(ts) > 86400
    ]
    assert late, "some replies arrive days after their parent"


def test_replies_pagination_and_filters(ws: Workspace) -> None:
    cid, parent = max(
        (p for p in ws.thread_parents() if channel_is_member(ws, p[0])),
        key=lambda p: sum(1 for m in ws.ground_truth(p[0]) if m.get("thread_ts") == p[1]),
    )
    with EmulatorServer(ws) as srv:
        (whole,) = replies(srv, cid, parent)
        reply_ts = [m["ts"] for m in whole[1:]]
        assert len(reply_ts) >= 4
        paged = replies(srv, cid, parent, limit=2)
        assert all(page[0]["ts"] == parent for page in paged)
        assert [m["ts"] for page in paged for m in page[1:]] == reply_ts
    with EmulatorServer(ws, EmulatorConfig(replies_repeat_parent=False)) as srv:
        paged = replies(srv, cid, parent, limit=2)
        assert paged[0][0]["ts"] == parent
        assert all(m["ts"] != parent for page in paged[1:] for m in page)
        assert [m["ts"] for m in paged[0][1:]] + [m["ts"] for p in paged[1:] for m in p] == (
            reply_ts
        )
        (window,) = replies(srv, cid, parent, oldest=reply_ts[0], latest=reply_ts[-1])
        assert window[0]["ts"] == parent and [m["ts"] for m in window[1:]] == reply_ts[1:-1]
        (window,) = replies(srv, cid, parent, oldest=reply_ts[0], inclusive=1)
        assert [m["ts"] for m in window[1:]] == reply_ts


def test_replies_errors_and_single_message(server: EmulatorServer, ws: Workspace) -> None:
    cid = channel_by_name(ws, "general")["id"]
    assert (
        api(server, "conversations.replies", channel=cid, ts="1000000000.000001")["error"]
        == "thread_not_found"
    )
    assert api(server, "conversations.replies", channel=cid)["error"] == "invalid_arguments"
    parents = {ts for c, ts in ws.thread_parents() if c == cid}
    lonely = next(ts for ts in expected_history(ws, cid) if ts not in parents)
    single = api(server, "conversations.replies", channel=cid, ts=lonely)
    assert [m["ts"] for m in single["messages"]] == [lonely] and single["has_more"] is False


def test_broadcast_is_in_history_and_replies(server: EmulatorServer, ws: Workspace) -> None:
    truth = [m for m in ws.ground_truth() if m.get("subtype") == "thread_broadcast"]
    assert truth
    b = next(m for m in truth if channel_is_member(ws, m["channel_id"]))
    assert b["ts"] in {m["ts"] for m in history(server, b["channel_id"])}
    (thread,) = replies(server, b["channel_id"], b["thread_ts"])
    assert b["ts"] in {m["ts"] for m in thread}


# -- join --------------------------------------------------------------------------------------
def test_join(fresh: EmulatorServer) -> None:
    ws = fresh.workspace
    outsider = next(c for c in ws.channels() if not c["is_member"])
    before = outsider["num_members"]
    joined = api(fresh, "conversations.join", channel=outsider["id"])
    assert joined["ok"] and joined["channel"]["is_member"] is True
    assert joined["channel"]["num_members"] == before + 1 and "warning" not in joined
    assert history(fresh, outsider["id"])
    again = api(fresh, "conversations.join", channel=outsider["id"])
    assert again["ok"] and again["warning"] == "already_in_channel"
    assert again["response_metadata"]["warnings"] == ["already_in_channel"]
    archived = next(c for c in ws.channels() if c["is_archived"])
    assert api(fresh, "conversations.join", channel=archived["id"])["error"] == "is_archived"
    private = next(c for c in ws.channels() if c["is_private"])
    assert api(fresh, "conversations.join", channel=private["id"])["error"] == (
        "method_not_supported_for_channel_type"
    )
    assert api(fresh, "conversations.join", channel="C0NOPE")["error"] == "channel_not_found"
    listed = api(fresh, "conversations.list")["channels"]
    assert all(c["is_member"] for c in listed)
    json_join = requests.post(
        fresh.base_url + "conversations.join",
        json={"channel": outsider["id"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()
    assert json_join["warning"] == "already_in_channel"


# -- ground truth and mutations ----------------------------------------------------------------
def test_ground_truth_counts(ws: Workspace) -> None:
    truth = list(ws.ground_truth())
    assert len(truth) == SPEC.messages == ws.message_count()
    assert len({(m["channel_id"], m["ts"]) for m in truth}) == len(truth)
    parents = [m for m in truth if m.get("thread_ts") == m["ts"]]
    assert len(parents) == SPEC.threads == len(ws.thread_parents())
    replies_n = sum(1 for m in truth if m.get("thread_ts") not in (None, m["ts"]))
    assert replies_n == sum(p["reply_count"] for p in parents)
    assert {m["channel_id"] for m in truth} == {c["id"] for c in ws.channels()}
    span = [float(m["ts"]) for m in truth if "thread_ts" not in m]
    assert NOW - SPEC.days * 86400 <= min(span) and max(span) < NOW


def test_mutations_visible_over_http(fresh: EmulatorServer) -> None:
    ws = fresh.workspace
    cid = channel_by_name(ws, "general")["id"]
    count = ws.message_count()
    newest = expected_history(ws, cid)[0]

    ts = ws.post_message(cid, text="hello emulator")
    assert float(ts) > float(newest)
    top = api(fresh, "conversations.history", channel=cid, limit=1)["messages"][0]
    assert top["ts"] == ts and top["text"] == "hello emulator"

    old = ws.ts_at_days_ago(cid, 3)
    assert abs(float(old) - (NOW - 3 * 86400)) < 2 * 86400
    r1 = ws.post_reply(cid, old, text="late reply")
    r2 = ws.post_reply(cid, old, text="shouted", broadcast=True, user=ws.users()[1]["id"])
    parent = next(m for m in history(fresh, cid) if m["ts"] == old)
    assert parent["thread_ts"] == old and parent["latest_reply"] == r2
    assert parent["reply_count"] >= 2
    in_history = {m["ts"]: m for m in history(fresh, cid)}
    assert r1 not in in_history and in_history[r2]["subtype"] == "thread_broadcast"
    assert in_history[r2]["root"]["ts"] == old
    (thread,) = replies(fresh, cid, old)
    assert [m["ts"] for m in thread[-2:]] == [r1, r2]
    assert ws.message_count() == count + 3

    ws.edit_message(cid, r1, "edited reply")
    (thread,) = replies(fresh, cid, old)
    edited = next(m for m in thread if m["ts"] == r1)
    assert edited["text"] == "edited reply" and edited["edited"]["user"] == edited["user"]

    ws.add_reaction(cid, ts, "tada", ws.users()[2]["id"])
    top = next(m for m in history(fresh, cid) if m["ts"] == ts)
    assert top["reactions"] == [{"name": "tada", "users": [ws.users()[2]["id"]], "count": 1}]

    ws.delete_message(cid, r1)
    (thread,) = replies(fresh, cid, old)
    assert r1 not in [m["ts"] for m in thread] and thread[0]["reply_count"] == len(thread) - 1
    ws.delete_message(cid, ts)
    assert ts not in {m["ts"] for m in history(fresh, cid)}
    assert ws.message_count() == count + 1

    ws.delete_message(cid, old)  # a parent with replies becomes a tombstone
    tomb = next(m for m in history(fresh, cid) if m["ts"] == old)
    assert tomb["subtype"] == "tombstone" and tomb["user"] == "USLACKBOT"
    assert tomb["text"] == "This message was deleted." and tomb["hidden"] is True
    assert tomb["reply_count"] >= 1 and tomb["thread_ts"] == old
    truth = list(ws.ground_truth(cid))
    assert len(truth) == len({m["ts"] for m in truth})
    assert sum(1 for _ in ws.ground_truth()) == ws.message_count() == count + 1
    with pytest.raises(KeyError):
        ws.edit_message(cid, ts, "gone")


def test_delete_generated_messages_without_other_overlays(fresh: EmulatorServer) -> None:
    ws = fresh.workspace
    cid, parent = ws.thread_parents(channel_by_name(ws, "general")["id"])[0]
    (thread,) = replies(fresh, cid, parent)
    ws.delete_message(cid, parent)
    tomb = next(m for m in history(fresh, cid) if m["ts"] == parent)
    assert tomb["subtype"] == "tombstone" and tomb["reply_count"] == len(thread) - 1
    (after,) = replies(fresh, cid, parent)
    assert after[0]["subtype"] == "tombstone"
    assert [m["ts"] for m in after[1:]] == [m["ts"] for m in thread[1:]]
    for reply in thread[1:]:
        ws.delete_message(cid, reply["ts"])
    # the last reply gone, the tombstone goes too
    assert parent not in {m["ts"] for m in history(fresh, cid)}
    assert api(fresh, "conversations.replies", channel=cid, ts=parent)["error"] == (
        "thread_not_found"
    )
    assert ws.message_count() == SPEC.messages - len(thread)
    assert sum(1 for _ in ws.ground_truth()) == ws.message_count()
    with pytest.raises(KeyError):
        ws.delete_message(cid, parent)


def test_channel_mutations(fresh: EmulatorServer) -> None:
    ws = fresh.workspace
    cid = ws.create_channel("brand-new")
    assert re.match(r"^C0[0-9A-Z]{9}$", cid)
    assert api(fresh, "conversations.history", channel=cid)["messages"] == []
    ws.post_message(cid, text="first")
    assert [m["text"] for m in history(fresh, cid)] == ["first"]
    ws.rename_channel(cid, "renamed")
    listed = {c["id"]: c for c in api(fresh, "conversations.list")["channels"]}
    assert listed[cid]["name"] == "renamed" and listed[cid]["previous_names"] == ["brand-new"]
    ws.archive_channel(cid)
    assert api(fresh, "conversations.list", exclude_archived=1)["channels"]
    assert cid not in {
        c["id"] for c in api(fresh, "conversations.list", exclude_archived=1)["channels"]
    }
    ws.unarchive_channel(cid)
    assert cid in {
        c["id"] for c in api(fresh, "conversations.list", exclude_archived=1)["channels"]
    }
    secret = ws.create_channel("hidden-club", is_private=True, member=False)
    assert api(fresh, "conversations.history", channel=secret)["error"] == "channel_not_found"
    with pytest.raises(ValueError):
        ws.create_channel("general")


# -- rate limits -------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_even_pacing_and_bursts() -> None:
    clock = FakeClock()
    limiter = RateLimiter("tiers", time_scale=0.01, clock=clock)
    window = 0.6
    for method, n in (("conversations.history", 50), ("users.list", 20)):
        for _ in range(3 * n):  # exactly n per window, evenly spaced, with tiny jitter
            assert limiter.acquire(method) is None
            clock.now += window / n + (1e-6 if clock.now % 2 else -1e-6)
    limiter.reset()
    assert all(limiter.acquire("conversations.replies") is None for _ in range(50))
    wait = limiter.acquire("conversations.replies")
    assert wait is not None and 0 < wait <= window
    assert limiter.acquire("conversations.members") is None  # methods are separate
    clock.now += wait
    assert limiter.acquire("conversations.replies") is None
    assert RateLimiter("non_marketplace").allowance("conversations.history") == 1
    assert RateLimiter("off").acquire("conversations.history") is None
    assert format_retry_after(0.2) == "1"
    assert format_retry_after(30.0) == "30"
    assert format_retry_after(30.2) == "31"


def test_scopes_header_and_revoked_tokens(ws: Workspace) -> None:
    """Every authenticated answer names the token's scopes (`x-oauth-scopes`), errors too."""
    scopes = ("channels:read", "channels:history")
    cfg = EmulatorConfig(scopes=scopes, revoked_tokens=("xoxb-gone",))
    with EmulatorServer(ws, cfg) as srv:
        ok = call(srv, "auth.test")
        assert ok.json()["ok"] is True and ok.json()["team_id"] == ws.team.id
        assert ok.headers["x-oauth-scopes"] == "channels:read,channels:history"
        refused = call(srv, "users.list")
        assert refused.json()["error"] == "missing_scope"
        assert refused.headers["x-oauth-scopes"] == "channels:read,channels:history"
        revoked = call(srv, "auth.test", token="xoxb-gone")
        assert revoked.json() == {"ok": False, "error": "token_revoked"}
        assert "x-oauth-scopes" not in revoked.headers
        assert "x-oauth-scopes" not in call(srv, "auth.test", token="xoxb-bad").headers
    with EmulatorServer(ws, EmulatorConfig(scope_header=False)) as srv:
        assert "x-oauth-scopes" not in call(srv, "auth.test").headers


def test_add_user_appears_in_users_list() -> None:
    ws = Workspace(SPEC)  # its own: the module's workspace stays as generated
    with EmulatorServer(ws) as srv:
        before = len(api(srv, "users.list")["members"])
        uid = ws.add_user("newcomer")
        members = api(srv, "users.list")["members"]
        assert len(members) == before + 1
        added = next(u for u in members if u["id"] == uid)
        assert added["name"] == "newcomer" and added["profile"]["email"].startswith("newcomer@")


def test_rate_limits_over_http(ws: Workspace) -> None:
    cfg = EmulatorConfig(rate_limits="tiers", time_scale=0.01)
    with EmulatorServer(ws, cfg) as srv:
        statuses = [call(srv, "users.list") for _ in range(25)]
        assert [r.status_code for r in statuses].count(200) == 20
        limited = [r for r in statuses if r.status_code == 429]
        assert len(limited) == 5
        assert all(r.json() == {"ok": False, "error": "ratelimited"} for r in limited)
        assert all(r.headers["Retry-After"] == "1" for r in limited)
        assert call(srv, "auth.test").status_code == 200  # other methods unaffected
        stats = srv.stats()
        assert stats["ratelimited"] == {"users.list": 5}
        assert stats["requests"]["users.list"] == 25
        assert call(srv, "users.list", token="bad").json()["error"] == "invalid_auth"
    cfg = EmulatorConfig(rate_limits="tiers", time_scale=0.05)
    with EmulatorServer(ws, cfg) as srv:
        codes = [call(srv, "conversations.list").status_code for _ in range(21)]
        assert codes[:20] == [200] * 20 and codes[20] == 429
        resp = call(srv, "conversations.list")
        assert resp.headers["Retry-After"] == "3"  # a 3 s (scaled) minute, whole seconds


def test_non_marketplace_profile(ws: Workspace) -> None:
    cfg = EmulatorConfig(rate_limits="non_marketplace", time_scale=0.01)
    cid = channel_by_name(ws, "general")["id"]
    with EmulatorServer(ws, cfg) as srv:
        first = api(srv, "conversations.history", channel=cid, limit=200)
        assert len(first["messages"]) == 15 and first["has_more"] is True
        second = call(srv, "conversations.history", channel=cid)
        assert second.status_code == 429
        parent = next(ts for c, ts in ws.thread_parents() if c == cid)
        assert call(srv, "conversations.replies", channel=cid, ts=parent).status_code == 200
        assert call(srv, "conversations.replies", channel=cid, ts=parent).status_code == 429
        assert srv.stats()["ratelimited"] == {
            "conversations.history": 1,
            "conversations.replies": 1,
        }


# -- faults ------------------------------------------------------------------------------------
def faulty(ws: Workspace, kind: str, **kw) -> EmulatorServer:
    spec = FaultSpec(rate=1.0, seed=1, kinds=(kind,), **kw)
    return EmulatorServer(ws, EmulatorConfig(faults=spec))


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_fault_server_errors(ws: Workspace, kind: str) -> None:
    with faulty(ws, kind) as srv:
        codes = {call(srv, "auth.test").status_code for _ in range(6)}
        assert codes == {int(kind)}
        assert srv.stats()["faults"] == {kind: 6}


def test_fault_reset_truncated_ratelimited_slow(ws: Workspace) -> None:
    with faulty(ws, "reset") as srv:
        with pytest.raises(requests.exceptions.ConnectionError):
            call(srv, "auth.test")
        assert srv.stats()["faults"] == {"reset": 1}
    with faulty(ws, "truncated") as srv:  # the full Content-Length, half the body, closed
        with pytest.raises(requests.exceptions.ChunkedEncodingError, match="IncompleteRead"):
            call(srv, "users.list")
    with faulty(ws, "ratelimited_200") as srv:
        resp = call(srv, "auth.test")
        assert resp.status_code == 200
        assert resp.json() == {"ok": False, "error": "ratelimited"}
    with faulty(ws, "slow", slow_seconds=0.3) as srv:
        start = time.monotonic()
        assert api(srv, "auth.test")["ok"] is True
        assert time.monotonic() - start >= 0.3


def test_faulted_join_changes_nothing(fresh: EmulatorServer) -> None:
    ws = fresh.workspace
    outsider = next(c for c in ws.channels() if not c["is_member"])["id"]
    for kind in ("truncated", "500", "reset", "ratelimited_200"):
        with faulty(ws, kind) as srv:
            with contextlib.suppress(
                requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError
            ):
                call(srv, "conversations.join", channel=outsider)
        assert not next(c for c in ws.channels() if c["id"] == outsider)["is_member"]


def outcome(srv: EmulatorServer) -> str:
    try:
        resp = call(srv, "auth.test")
    except requests.exceptions.ConnectionError:
        return "reset"
    except requests.exceptions.ChunkedEncodingError:  # cut short: less than Content-Length
        return "200:truncated"
    try:
        return f"{resp.status_code}:{resp.json().get('error', 'ok')}"
    except ValueError:
        return f"{resp.status_code}:truncated"


def test_faults_are_reproducible(ws: Workspace) -> None:
    spec = FaultSpec(rate=0.5, seed=5, kinds=("500", "reset", "truncated", "ratelimited_200"))
    runs = []
    for _ in range(2):
        with EmulatorServer(ws, EmulatorConfig(faults=spec)) as srv:
            runs.append([outcome(srv) for _ in range(30)])
            stats = srv.stats()
            assert sum(stats["faults"].values()) == 30 - runs[-1].count("200:ok")
    assert runs[0] == runs[1]
    assert "200:ok" in runs[0] and len(set(runs[0])) >= 4


# -- paging quirks, determinism, remote control, CLI, scale ------------------------------------
def test_short_pages_still_complete(ws: Workspace) -> None:
    cid = channel_by_name(ws, "general")["id"]
    with EmulatorServer(ws, EmulatorConfig(short_page_probability=1.0)) as srv:
        got = list(pages(srv, "conversations.history", channel=cid, limit=20))
        assert all(len(p["messages"]) < 20 for p in got)
        assert len(got) > 1 and all(p["has_more"] for p in got[:-1])
        assert [m["ts"] for p in got for m in p["messages"]] == expected_history(ws, cid)


def test_same_spec_gives_identical_bytes() -> None:
    bodies = []
    for seed in (SPEC.seed, SPEC.seed, SPEC.seed + 1):
        spec = WorkspaceSpec(**{**SPEC.__dict__, "seed": seed})
        ws = Workspace(spec)
        cid = ws.channels()[1]["id"]
        cid0, parent = ws.thread_parents()[0]
        with EmulatorServer(ws) as srv:
            bodies.append(
                (
                    call(srv, "conversations.history", channel=cid, limit=999).content,
                    call(srv, "users.list").content,
                    call(srv, "conversations.replies", channel=cid0, ts=parent).content,
                )
            )
    assert bodies[0] == bodies[1]
    assert bodies[0][0] != bodies[2][0]


def test_remote_emulator(fresh: EmulatorServer) -> None:
    ws = fresh.workspace
    remote = RemoteEmulator(fresh.control_url)
    assert remote.base_url == fresh.base_url and remote.health()
    cid = channel_by_name(ws, "general")["id"]
    ts = remote.post_message(cid, text="from afar")
    reply = remote.post_reply(cid, ts, text="answer", broadcast=True)
    remote.edit_message(cid, reply, "better answer")
    remote.add_reaction(cid, ts, "eyes", ws.users()[0]["id"])
    assert remote.message_count() == SPEC.messages + 2 == ws.message_count()
    assert (cid, ts) in remote.thread_parents(cid)
    assert list(remote.ground_truth()) == list(ws.ground_truth())
    assert list(remote.ground_truth(cid)) == list(ws.ground_truth(cid))
    remote.delete_message(cid, reply)
    assert remote.message_count() == SPEC.messages + 1
    new = remote.create_channel("remote-made")
    remote.rename_channel(new, "remote-renamed")
    remote.archive_channel(new)
    assert next(c for c in remote.channels() if c["id"] == new)["is_archived"]
    remote.unarchive_channel(new)
    assert len(remote.users()) == len(ws.users())
    assert remote.ts_at_days_ago(cid, 2) == ws.ts_at_days_ago(cid, 2)
    with pytest.raises(KeyError):
        remote.post_message("C0MISSING", text="x")
    with pytest.raises(KeyError):
        remote.ground_truth("C0MISSING")
    with pytest.raises(ValueError):
        remote.post_message(cid, text="dup", ts=ts)
    # control endpoints are not API requests
    assert remote.request_counts() == {}
    api(fresh, "auth.test")
    assert remote.stats()["requests"] == {"auth.test": 1}
    remote.reset_stats()
    assert fresh.request_counts() == {}
    remote.close()


def test_cli_serve_prints_urls_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tooling.slack_emulator",
            "serve",
            "--port",
            "0",
            "--messages",
            "120",
            "--threads",
            "6",
            "--seed",
            "4",
            "--token",
            "xoxb-cli",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        urls = json.loads(line)
        assert set(urls) == {"base_url", "control_url"}
        resp = requests.post(
            urls["base_url"] + "auth.test", headers={"Authorization": "Bearer xoxb-cli"}, timeout=10
        )
        assert resp.json()["ok"] is True
        assert RemoteEmulator(urls["control_url"]).message_count() == 120
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_million_message_workspace_is_lazy() -> None:
    start = time.perf_counter()
    ws = Workspace(WorkspaceSpec(seed=2, messages=1_000_000, channels=20, threads=20_000, now=NOW))
    assert time.perf_counter() - start < 15
    assert ws.message_count() == 1_000_000
    assert len(ws.thread_parents()) == 20_000
    cid = channel_by_name(ws, "general")["id"]
    with EmulatorServer(ws) as srv:
        data = api(srv, "conversations.history", channel=cid, limit=999)
        assert len(data["messages"]) == 999 and data["has_more"]
        stamps = [float(m["ts"]) for m in data["messages"]]
        assert stamps == sorted(stamps, reverse=True)
