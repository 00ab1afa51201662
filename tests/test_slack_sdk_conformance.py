"""The emulator as Slack's own SDK sees it: `slack_sdk.WebClient` (and `requests`) against the
emulator, as a real integration calls Slack.

The emulator must be at least as strict as Slack wherever Slack's docs say what it does
(/work/shared/slack_api_facts.md); where they are silent it offers both behaviours (here: the
last page's `response_metadata`, the parent on later replies pages) and these tests run each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import math
import random
import re
import time
import urllib.error
from collections.abc import Iterator

import pytest
import requests
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from tests.helpers import SMALL_SPEC
from tooling.slack_emulator import (
    EmulatorConfig,
    EmulatorServer,
    FaultSpec,
    Workspace,
    WorkspaceSpec,
)
from tooling.slack_emulator.rate_limits import PROFILES, RateLimiter

TOKEN = "xoxb-emulator-token"
NOW = 1_750_000_000.0
SPEC = WorkspaceSpec(**dict(SMALL_SPEC, messages=300, threads=20, days=10, now=NOW))
TS_MAX = 10**16
# What the last (or only) page of a paged answer carries under each `last_page_metadata`.
LAST_PAGE = {"present": {"next_cursor": ""}, "empty": {}, "absent": None}
WHOLE_SECONDS = re.compile(r"[1-9][0-9]*")
SCALE = 0.01  # one Slack minute = 0.6 s: a Retry-After of 1 s always outlasts the window


# -- helpers -----------------------------------------------------------------------------------
@contextlib.contextmanager
def serving(ws: Workspace, **config: object) -> Iterator[EmulatorServer]:
    with EmulatorServer(ws, EmulatorConfig(tokens=(TOKEN,), **config)) as server:  # type: ignore[arg-type]
        yield server


def sdk(server: EmulatorServer, token: str | None = TOKEN, **kwargs: object) -> WebClient:
    """Slack's client pointed at the emulator (`retry_handlers=[]`: see every error raw)."""
    return WebClient(token=token, base_url=server.base_url, timeout=10, **kwargs)  # type: ignore[arg-type]


def every_page(response) -> list[dict]:
    """The SDK's own cursor iteration (`for page in client.users_list(...)`), page by page."""
    return [dict(page.data) for page in response]


def slack_error(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value


def channel(ws: Workspace, name: str) -> str:
    return next(c["id"] for c in ws.channels() if c["name"] == name)


def outsider(ws: Workspace) -> str:
    """A public channel the bot is not a member of."""
    return next(c["id"] for c in ws.channels() if not c["is_member"] and not c["is_private"])


def history_truth(ws: Workspace, cid: str) -> list[str]:
    return [m["ts"] for m in ws.history_page(cid, 0, TS_MAX, 10**9)[0]]


def longest_thread(ws: Workspace) -> tuple[str, str]:
    def replies(parent: tuple[str, str]) -> int:
        cid, ts = parent
        return len(ws.replies_page(cid, _us(ts), 0, TS_MAX, 10**9, False)[0])

    return max(ws.thread_parents(), key=replies)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _us(ts: str) -> int:
    seconds, _, micros = ts.partition(".")
    return int(seconds) * 1_000_000 + int(micros)


@pytest.fixture(scope="module")
def ws() -> Workspace:
    return Workspace(SPEC)


@pytest.fixture(scope="module")
def server(ws: Workspace) -> Iterator[EmulatorServer]:
    """The emulator as configured by default; read-only tests share it."""
    with serving(ws) as srv:
        yield srv


@pytest.fixture(scope="module", params=sorted(LAST_PAGE))
def last_page(request: pytest.FixtureRequest, ws: Workspace) -> Iterator[tuple]:
    """(mode, server) for each form of the last page's `response_metadata`."""
    with serving(ws, last_page_metadata=request.param) as srv:
        yield request.param, srv


def assert_last_page(page: dict, mode: str) -> None:
    assert page.get("response_metadata") == LAST_PAGE[mode]
    assert ("response_metadata" in page) is (mode != "absent")


# -- 1. cursor iteration: every object once, then the SDK stops ----------------------------------
def test_last_page_carries_no_cursor_by_default(ws: Workspace) -> None:
    """Slack omits `response_metadata` on some last pages (a new channel's history): the
    default is the strictest form, so a client that needs `{next_cursor: ""}` fails here."""
    fresh = Workspace(SPEC)
    new = fresh.create_channel("brand-new")
    with serving(fresh) as srv:
        client = sdk(srv)
        assert "response_metadata" not in client.conversations_history(channel=new).data
        assert "response_metadata" not in client.users_list().data  # one page: everyone
        paged = every_page(client.conversations_members(channel=channel(fresh, "general")))
        assert "response_metadata" not in paged[-1]


def test_users_list_iterates_every_member_once(last_page: tuple, ws: Workspace) -> None:
    mode, srv = last_page
    got = every_page(sdk(srv).users_list(limit=4))
    assert [u["id"] for p in got for u in p["members"]] == [u["id"] for u in ws.users()]
    assert len(got) == math.ceil(len(ws.users()) / 4)
    assert all(p["response_metadata"]["next_cursor"] for p in got[:-1])
    assert_last_page(got[-1], mode)


def test_conversations_list_iterates_every_channel_once(last_page: tuple, ws: Workspace) -> None:
    mode, srv = last_page
    types = "public_channel,private_channel"
    got = every_page(sdk(srv).conversations_list(limit=2, types=types))
    visible = [c["id"] for c in ws.channels() if c["is_member"] or not c["is_private"]]
    assert [c["id"] for p in got for c in p["channels"]] == visible
    assert len(got) == math.ceil(len(visible) / 2)
    assert_last_page(got[-1], mode)


def test_conversations_history_iterates_every_message_once(last_page: tuple, ws: Workspace) -> None:
    mode, srv = last_page
    cid = channel(ws, "general")
    got = every_page(sdk(srv).conversations_history(channel=cid, limit=7))
    assert [m["ts"] for p in got for m in p["messages"]] == history_truth(ws, cid)
    assert len(got) > 2 and all(p["has_more"] for p in got[:-1]) and not got[-1]["has_more"]
    assert_last_page(got[-1], mode)


def test_conversations_members_iterates_every_member_once(last_page: tuple, ws: Workspace) -> None:
    mode, srv = last_page
    cid = channel(ws, "general")
    got = every_page(sdk(srv).conversations_members(channel=cid, limit=3))
    assert [u for p in got for u in p["members"]] == ws.member_ids(cid)
    assert len(got) > 1
    assert_last_page(got[-1], mode)


@pytest.mark.parametrize("mode", sorted(LAST_PAGE))
@pytest.mark.parametrize("repeat", [True, False], ids=["repeat-parent", "parent-once"])
def test_conversations_replies_iterates_every_reply_once(
    ws: Workspace, mode: str, repeat: bool
) -> None:
    """The parent comes first; whether later pages repeat it is undocumented (both modes);
    every reply arrives once, in order, and the iteration stops."""
    cid, parent = longest_thread(ws)
    replies = [m["ts"] for m in ws.replies_page(cid, _us(parent), 0, TS_MAX, 10**9, False)[0]]
    assert len(replies) > 4, "the thread needs several pages"
    with serving(ws, replies_repeat_parent=repeat, last_page_metadata=mode) as srv:
        got = every_page(sdk(srv).conversations_replies(channel=cid, ts=parent, limit=2))
    stamps = [[m["ts"] for m in p["messages"]] for p in got]
    assert stamps[0][0] == parent
    assert [p[0] == parent for p in stamps] == [True] + [repeat] * (len(stamps) - 1)
    assert [ts for p in stamps for ts in p if ts != parent] == replies
    assert len(got) == math.ceil(len(replies) / 2)
    assert_last_page(got[-1], mode)


# -- 2. errors arrive as SlackApiError with Slack's code ----------------------------------------
def test_auth_errors(ws: Workspace, server: EmulatorServer) -> None:
    assert slack_error(sdk(server, "xoxb-not-a-token").auth_test).response["error"] == (
        "invalid_auth"
    )
    assert slack_error(sdk(server, None).auth_test).response["error"] == "not_authed"
    with serving(ws, revoked_tokens=("xoxb-revoked",)) as srv:
        err = slack_error(sdk(srv, "xoxb-revoked").auth_test)
        assert err.response["error"] == "token_revoked"


def test_channel_and_thread_errors(ws: Workspace, server: EmulatorServer) -> None:
    client = sdk(server)
    general = channel(ws, "general")
    calls = {
        "channel_not_found": lambda: client.conversations_history(channel="C0NOPE"),
        "not_in_channel": lambda: client.conversations_history(channel=outsider(ws)),
        "thread_not_found": lambda: client.conversations_replies(
            channel=general, ts="1000000000.000001"
        ),
    }
    for code, call in calls.items():
        err = slack_error(call)
        assert err.response.status_code == 200
        assert err.response["error"] == code


def test_missing_scope_names_needed_and_provided(ws: Workspace) -> None:
    scopes = ("channels:read", "channels:history")
    with serving(ws, scopes=scopes) as srv:
        err = slack_error(sdk(srv).users_list)
    assert err.response["error"] == "missing_scope"
    assert err.response["needed"] == "users:read"
    assert err.response["provided"] == "channels:read,channels:history"


def test_ratelimited_is_http_429_with_whole_seconds(ws: Workspace) -> None:
    cid = channel(ws, "general")
    with serving(ws, rate_limits="non_marketplace", time_scale=0.05) as srv:
        client = sdk(srv, retry_handlers=[])
        client.conversations_history(channel=cid)
        err = slack_error(lambda: client.conversations_history(channel=cid))
    assert err.response.status_code == 429
    assert err.response["error"] == "ratelimited"
    assert err.response.headers["Retry-After"] == "3"  # a scaled minute: 3 s, whole


REQUIRED = [
    ("conversations.history", {}, ["channel"]),
    ("conversations.replies", {"ts": "1"}, ["channel"]),
    ("conversations.replies", {"channel": "C1"}, ["ts"]),
    ("conversations.replies", {}, ["channel", "ts"]),
    ("conversations.members", {}, ["channel"]),
    ("conversations.info", {}, ["channel"]),
    ("conversations.join", {}, ["channel"]),
    ("users.info", {}, ["user"]),
]


@pytest.mark.parametrize("empty", [False, True], ids=["missing", "empty"])
@pytest.mark.parametrize(("method", "given", "missing"), REQUIRED)
def test_missing_required_argument_is_invalid_arguments(
    server: EmulatorServer, method: str, given: dict, missing: list, empty: bool
) -> None:
    """Slack: `invalid_arguments` with `response_metadata.messages`, not `channel_not_found`."""
    args = {**given, **dict.fromkeys(missing, "")} if empty else given
    err = slack_error(lambda: sdk(server).api_call(method, params=args))
    assert err.response["error"] == "invalid_arguments"
    assert err.response["response_metadata"] == {
        "messages": [f"[ERROR] missing required field: {name}" for name in missing]
    }


# -- 3. RateLimitErrorRetryHandler gets every call through -------------------------------------
def test_retry_handler_gets_every_call_through_under_tiers(ws: Workspace) -> None:
    """27 users.list calls in a burst (Tier 2: 20 a minute): the SDK waits out the 429."""
    with serving(ws, rate_limits="tiers", time_scale=SCALE) as srv:
        client = sdk(srv, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=5)])
        expected = [u["id"] for u in ws.users()]
        for _ in range(3):
            got = every_page(client.users_list(limit=1))
            assert [u["id"] for p in got for u in p["members"]] == expected
        assert srv.stats()["ratelimited"].get("users.list", 0) >= 1


def test_retry_handler_gets_every_call_through_non_marketplace(ws: Workspace) -> None:
    """1 call a minute for history and replies, 15 a page: every page still arrives."""
    member = [c["id"] for c in ws.channels() if c["is_member"] and not c["is_private"]]
    sizes = {c: len(history_truth(ws, c)) for c in member}
    cid = min((c for c in member if sizes[c] > 15), key=sizes.__getitem__)  # 2+ pages
    with serving(ws, rate_limits="non_marketplace", time_scale=SCALE) as srv:
        client = sdk(srv, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=5)])
        got = every_page(client.conversations_history(channel=cid, limit=100))
        assert [m["ts"] for p in got for m in p["messages"]] == history_truth(ws, cid)
        assert all(len(p["messages"]) <= 15 for p in got)
        for parent in [ts for c, ts in ws.thread_parents() if c == cid][:2]:
            pages = every_page(client.conversations_replies(channel=cid, ts=parent))
            assert pages[0]["messages"][0]["ts"] == parent
        limited = srv.stats()["ratelimited"]
        assert limited["conversations.history"] >= 1 and limited["conversations.replies"] >= 1


def _toggled_options() -> list[str]:
    return [f.name for f in dataclasses.fields(EmulatorConfig) if f.type in (bool, "bool")]


@pytest.mark.parametrize("option", _toggled_options())
def test_retry_after_is_whole_seconds_whatever_the_options(ws: Workspace, option: str) -> None:
    """Slack sends whole seconds; the SDK's handler does `int(Retry-After)`. No emulator option
    may send anything else."""
    cid = channel(ws, "general")
    toggled = {option: not getattr(EmulatorConfig(), option)}
    with serving(ws, rate_limits="non_marketplace", time_scale=SCALE, **toggled) as srv:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        url = srv.base_url + "conversations.history"
        assert requests.post(url, data={"channel": cid}, headers=auth, timeout=10).ok
        refused = requests.post(url, data={"channel": cid}, headers=auth, timeout=10)
        assert refused.status_code == 429
        assert WHOLE_SECONDS.fullmatch(refused.headers["Retry-After"])
        client = sdk(srv, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
        assert client.conversations_history(channel=cid)["ok"] is True


# -- 4. the sliding window is strict -------------------------------------------------------------
@pytest.mark.parametrize("profile", ["tiers", "non_marketplace"])
def test_no_window_ever_holds_more_calls_than_the_allowance(profile: str) -> None:
    """Random arrivals: in no window of 60 (scaled) seconds are more calls accepted than the
    allowance; a call is refused only when the allowance is used up, and its wait is exact."""
    scale = 0.01
    window = 60 * scale
    rng = random.Random(profile)
    for method, allowance in PROFILES[profile].items():
        clock = Clock(100.0)
        limiter = RateLimiter(profile, time_scale=scale, clock=clock)
        accepted: list[float] = []
        mean_gap = window / allowance / 2.0  # arrivals at about twice the allowance
        for _ in range(6 * allowance + 12):
            clock.now += rng.expovariate(1 / mean_gap)
            t = clock.now
            in_window = [a for a in accepted if a > t - window]
            wait = limiter.acquire(method)
            if wait is None:
                assert len(in_window) < allowance, (method, t)
                accepted.append(t)
            else:
                assert len(in_window) == allowance, (method, t, "refused below the allowance")
                assert wait == pytest.approx(in_window[0] + window - t)
        for start in accepted:
            held = [a for a in accepted if start <= a < start + window]
            assert len(held) <= allowance, (method, start, len(held))


def test_two_calls_a_minute_get_one_through_a_minute() -> None:
    """Non-Marketplace history: 1 call a minute. Calls every 30 s for 3 minutes: Slack
    accepts 3 of the 6."""
    clock = Clock()
    limiter = RateLimiter("non_marketplace", clock=clock)
    outcomes = []
    for k in range(6):
        clock.now = 30.0 * k
        outcomes.append(limiter.acquire("conversations.history") is None)
    assert outcomes == [True, False, True, False, True, False]


def test_strict_window_over_http(ws: Workspace) -> None:
    """The same over HTTP through the SDK: one call every 0.4 s against a 0.6 s window."""
    cid = channel(ws, "general")
    with serving(ws, rate_limits="non_marketplace", time_scale=SCALE) as srv:
        client = sdk(srv, retry_handlers=[])
        outcomes = []
        start = time.monotonic()
        for k in range(6):
            time.sleep(max(0.0, start + 0.4 * k - time.monotonic()))
            try:
                client.conversations_history(channel=cid)
                outcomes.append("ok")
            except SlackApiError as err:
                outcomes.append(err.response["error"])
    assert outcomes == ["ok", "ratelimited"] * 3


# -- 5. request bodies: JSON, multipart, and what Slack refuses -------------------------------
def json_args(ws: Workspace) -> dict[str, tuple[dict, str, int]]:
    """method -> (JSON body, list key, items expected on the first page)."""
    general = channel(ws, "general")
    cid, parent = longest_thread(ws)
    return {
        "users.list": ({"limit": 2}, "members", 2),
        "conversations.list": ({"limit": 1}, "channels", 1),
        "conversations.history": ({"channel": general, "limit": 3}, "messages", 3),
        "conversations.replies": ({"channel": cid, "ts": parent, "limit": 1}, "messages", 2),
        "conversations.members": ({"channel": general, "limit": 2}, "members", 2),
    }


@pytest.mark.parametrize(
    "method",
    [
        "users.list",
        "conversations.list",
        "conversations.history",
        "conversations.replies",
        "conversations.members",
    ],
)
def test_json_bodies_are_read(ws: Workspace, server: EmulatorServer, method: str) -> None:
    """Slack documents `application/json` for these methods (token in the header)."""
    body, key, expected = json_args(ws)[method]
    resp = sdk(server).api_call(method, json=body)
    assert len(resp[key]) == expected
    assert resp["response_metadata"]["next_cursor"]


def test_json_info_methods_and_the_token_in_a_json_body(
    ws: Workspace, server: EmulatorServer
) -> None:
    general = channel(ws, "general")
    user = ws.users()[0]["id"]
    client = sdk(server)
    assert client.api_call("conversations.info", json={"channel": general})["channel"]["id"] == (
        general
    )
    assert client.api_call("users.info", json={"user": user})["user"]["id"] == user
    assert client.api_call("conversations.join", json={"channel": general})["ok"] is True
    # with a JSON body the token must come in the Authorization header (where the SDK moves
    # a `token` of its `json=` argument)
    assert sdk(server, None).api_call("auth.test", json={"token": TOKEN})["ok"] is True
    in_body = requests.post(server.base_url + "auth.test", json={"token": TOKEN}, timeout=10)
    assert in_body.json() == {"ok": False, "error": "not_authed"}
    invalid = requests.post(
        server.base_url + "users.list",
        data=b"{not json",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        timeout=10,
    )
    assert invalid.json()["error"] == "invalid_json"


def test_multipart_form_data_is_read(ws: Workspace, server: EmulatorServer) -> None:
    general = channel(ws, "general")
    fields = {"channel": (None, general), "limit": (None, "3")}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = server.base_url + "conversations.history"
    resp = requests.post(url, files=fields, headers=auth, timeout=10).json()
    assert resp["ok"] is True and len(resp["messages"]) == 3
    with_token = requests.post(url, files={**fields, "token": (None, TOKEN)}, timeout=10).json()
    assert with_token["ok"] is True and len(with_token["messages"]) == 3


def test_body_types_slack_refuses(server: EmulatorServer) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    url = server.base_url + "auth.test"
    xml = requests.post(
        url, data=b"<a/>", headers={**auth, "Content-Type": "application/xml"}, timeout=10
    )
    assert xml.json() == {"ok": False, "error": "invalid_post_type"}
    untyped = requests.post(url, data=b"a=b", headers=auth, timeout=10)  # no Content-Type
    assert "Content-Type" not in untyped.request.headers
    assert untyped.json()["error"] == "missing_post_type"
    not_object = requests.post(
        url, data=b"[1]", headers={**auth, "Content-Type": "application/json"}, timeout=10
    )
    assert not_object.json()["error"] == "json_not_object"


def test_conversations_info(ws: Workspace, server: EmulatorServer) -> None:
    client = sdk(server)
    listed = {c["id"]: c for c in ws.channels()}
    for cid, listed_channel in listed.items():
        if listed_channel["is_private"] and not listed_channel["is_member"]:
            continue
        info = client.conversations_info(channel=cid)["channel"]
        assert info == {k: v for k, v in listed_channel.items() if k != "num_members"}
        with_count = client.conversations_info(channel=cid, include_num_members=True)
        assert with_count["channel"]["num_members"] == listed_channel["num_members"]
    assert slack_error(lambda: client.conversations_info(channel="C0NOPE")).response["error"] == (
        "channel_not_found"
    )
    with serving(ws, scopes=("users:read",)) as srv:
        err = slack_error(lambda: sdk(srv).conversations_info(channel=channel(ws, "general")))
        assert (err.response["error"], err.response["needed"]) == (
            "missing_scope",
            "channels:read",
        )


def test_users_info(ws: Workspace, server: EmulatorServer) -> None:
    client = sdk(server)
    for user in ws.users():
        assert client.users_info(user=user["id"])["user"] == user
    assert slack_error(lambda: client.users_info(user="U0NOPE")).response["error"] == (
        "user_not_found"
    )
    with serving(ws, scopes=("users:read",)) as srv:
        user = sdk(srv).users_info(user=ws.users()[0]["id"])["user"]
        assert "email" not in user["profile"]
    with serving(ws, scopes=("channels:read",)) as srv:
        err = slack_error(lambda: sdk(srv).users_info(user=ws.users()[0]["id"]))
        assert (err.response["error"], err.response["needed"]) == ("missing_scope", "users:read")


# -- 6. faults surface as the errors of the same network failure -------------------------------
def faulty(ws: Workspace, kind: str, **spec: object):
    return serving(ws, faults=FaultSpec(rate=1.0, seed=1, kinds=(kind,), **spec))  # type: ignore[arg-type]


def test_truncated_body_is_an_incomplete_read(ws: Workspace) -> None:
    """A dropped connection leaves the body shorter than its Content-Length: the SDK and
    `requests` raise their incomplete-read errors, never a JSON decode error."""
    with faulty(ws, "truncated") as srv:
        for client in (sdk(srv), sdk(srv, retry_handlers=[])):  # default handlers, and none
            with pytest.raises(http.client.IncompleteRead):
                client.users_list()
        with pytest.raises(
            (requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError),
            match="IncompleteRead",
        ):
            requests.post(
                srv.base_url + "users.list",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            )


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_server_errors_are_slack_api_errors_with_their_status(ws: Workspace, kind: str) -> None:
    with faulty(ws, kind) as srv:
        for _ in range(4):  # JSON and empty bodies alike
            err = slack_error(sdk(srv, retry_handlers=[]).auth_test)
            assert err.response.status_code == int(kind)
            assert err.response["ok"] is False


def test_reset_is_a_connection_error(ws: Workspace) -> None:
    with faulty(ws, "reset") as srv:
        with pytest.raises((urllib.error.URLError, ConnectionResetError)):
            sdk(srv).auth_test()  # the SDK's ConnectionErrorRetryHandler retried it once
        assert srv.stats()["faults"] == {"reset": 2}
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(srv.base_url + "auth.test", timeout=10)


def test_ratelimited_200_and_slow_answers(ws: Workspace) -> None:
    with faulty(ws, "ratelimited_200") as srv:
        err = slack_error(sdk(srv).auth_test)
        assert (err.response.status_code, err.response["error"]) == (200, "ratelimited")
    with faulty(ws, "slow", slow_seconds=1.0) as srv:
        with pytest.raises(TimeoutError):
            WebClient(token=TOKEN, base_url=srv.base_url, timeout=0.2).auth_test()
        with pytest.raises(requests.exceptions.ReadTimeout):
            requests.post(srv.base_url + "auth.test", timeout=0.2)
