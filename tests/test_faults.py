"""Faults, rate limits and secrets: the load still equals the ground truth, paced, token-free."""

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from slack_source import slack_source
from tests.helpers import (
    DATASET,
    THREADED_SPEC,
    TOKEN,
    Outage,
    emulator_server,
    load_source,
    loaded_messages,
    make_test_pipeline,
    query,
    readable_channel_ids,
    truth_messages,
)
from tooling.slack_emulator import FaultSpec

START = datetime.now(timezone.utc) - timedelta(days=40)
FAULT_KINDS = ("500", "502", "503", "reset", "truncated", "ratelimited_200")


def load(pipeline, server, **kwargs):
    return load_source(pipeline, server, start_date=START, **kwargs)[0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_seeded_faults_end_equal_to_ground_truth(seed, tmp_path, monkeypatch, start_emulator):
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "ERROR")
    faults = FaultSpec(rate=0.15, seed=seed, kinds=FAULT_KINDS)
    server = start_emulator(faults=faults)
    workspace = server.workspace
    pipeline = make_test_pipeline(tmp_path)
    client_kwargs = dict(rate_limit_profile="off", max_attempts=12)
    stats = load(pipeline, server, **client_kwargs)
    assert server.stats()["faults"], "faults were injected"
    assert sum(stats.retries.values()) > 0
    readable = readable_channel_ids(workspace)
    assert loaded_messages(pipeline) == truth_messages(workspace, readable)
    total, distinct = query(
        pipeline, f"SELECT COUNT(*), COUNT(DISTINCT (channel_id, ts)) FROM {DATASET}.messages"
    )[0]
    assert total == distinct


def test_pacing_keeps_429s_rare_and_respects_the_allowance(tmp_path, start_emulator):
    scale = 0.02  # one Slack minute = 1.2 s: the 2 % pacing margin (24 ms) outlasts jitter
    server = start_emulator(THREADED_SPEC, rate_limits="tiers", time_scale=scale)
    workspace = server.workspace
    started = time.monotonic()
    stats = load(
        make_test_pipeline(tmp_path),
        server,
        rate_limit_profile="tiers",
        rate_limit_minute_seconds=60 * scale,
    )
    elapsed = time.monotonic() - started
    replies = stats.calls["conversations.replies"]
    assert replies > 60, "the run needs more replies calls than one window allows"
    assert sum(stats.ratelimited.values()) <= 2
    # 50 replies a (scaled) minute: the calls cannot have taken less than that allows
    assert elapsed >= (replies - 1) * (60 * scale) / 50
    assert loaded_messages(tmp_path / "slack.duckdb") == truth_messages(
        workspace, readable_channel_ids(workspace)
    )


def test_retry_after_is_honoured_when_slack_throttles(tmp_path, start_emulator):
    """Pacing off against a throttling server: every 429 is waited out, nothing is lost."""
    scale = 0.05  # a Slack minute = 3 s: unpaced calls outrun 50 a window
    server = start_emulator(THREADED_SPEC, rate_limits="tiers", time_scale=scale)
    workspace = server.workspace
    stats = load(make_test_pipeline(tmp_path), server, rate_limit_profile="off", max_attempts=50)
    assert sum(stats.ratelimited.values()) > 0
    assert server.stats()["ratelimited"] == {k: v for k, v in stats.ratelimited.items() if v}
    assert loaded_messages(tmp_path / "slack.duckdb") == truth_messages(
        workspace, readable_channel_ids(workspace)
    )


def test_token_never_written_anywhere(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "DEBUG")
    caplog.set_level("DEBUG")
    faults = FaultSpec(rate=0.1, seed=5, kinds=("500", "ratelimited_200"))
    # a block, not the fixture: what follows it checks after the server has stopped
    with emulator_server(faults=faults) as server:
        pipeline = make_test_pipeline(tmp_path)
        load(pipeline, server, rate_limit_profile="off", max_attempts=12)
        # a failing run too: its error text must not carry the token either
        with pytest.raises(Exception) as raised:
            make_test_pipeline(tmp_path, "bad").run(
                slack_source(access_token="xoxb-wrong-token", api_base_url=server.base_url)
            )
        assert "xoxb-wrong-token" not in str(raised.value)
    assert TOKEN not in caplog.text
    leaks = []
    for path in Path(tmp_path).rglob("*"):
        if path.is_file() and TOKEN.encode() in path.read_bytes():
            leaks.append(str(path))
    assert leaks == []
    tables = query(
        pipeline,
        f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{DATASET}'",
    )
    for (table,) in tables:
        rows = query(pipeline, f'SELECT * FROM {DATASET}."{table}"')
        assert TOKEN not in repr(rows)


def test_a_failing_channel_does_not_lose_the_others(tmp_path, start_emulator):
    """History fails for good on some channels (no retries left): the rest still load."""
    faults = FaultSpec(rate=0.5, seed=4, kinds=("503",), methods=("conversations.history",))
    server = start_emulator(faults=faults)
    pipeline = make_test_pipeline(tmp_path)
    stats = load(pipeline, server, max_attempts=1)
    assert_only_failed_channels_missing(server.workspace, pipeline, stats)


def test_failing_thread_replies_fail_their_channel_not_the_load(tmp_path, start_emulator):
    """The same for thread replies: #general's threads cannot be read, the load goes on."""
    server = start_emulator(THREADED_SPEC)
    workspace = server.workspace
    general = next(c["id"] for c in workspace.channels() if c["name"] == "general")
    Outage(server, "conversations.replies", times=10**6, match={"channel": general})
    pipeline = make_test_pipeline(tmp_path)
    stats = load(pipeline, server, max_attempts=1)
    assert stats.failed_channels == {"general": "HTTP 503"}
    assert_only_failed_channels_missing(workspace, pipeline, stats)


def assert_only_failed_channels_missing(workspace, pipeline, stats):
    readable = readable_channel_ids(workspace)
    names = {c["name"]: c["id"] for c in workspace.channels()}
    failed = {names[name] for name in stats.failed_channels}
    assert failed and failed < readable
    assert set(stats.failed_channels.values()) == {"HTTP 503"}
    loaded_ok = {k: v for k, v in loaded_messages(pipeline).items() if k[0] not in failed}
    assert loaded_ok == truth_messages(workspace, readable - failed)


def test_pacer_keeps_a_sliding_minute_when_threads_wake_late(monkeypatch):
    """Threads that wake late must not bunch: any `allowance + 1` sends span a full minute.

    A send is the moment the pacer lets a call go: the clock reading it records for the call
    under its lock, and the one it measures the sliding minute against. Those readings are
    checked, exactly. A time the test takes after `wait` returns would add however long the
    machine kept that thread from running, and could fail a correct pacer on a busy host.
    """
    import random
    import threading
    from collections import deque
    from types import SimpleNamespace

    from slack_source import pacing

    jitter = random.Random(3)
    monkeypatch.setattr(  # a busy process: each of the pacer's wake-ups up to 40 ms late
        pacing,
        "time",
        SimpleNamespace(
            monotonic=time.monotonic,
            sleep=lambda s: time.sleep(s + jitter.choice([0.0, 0.0, 0.04])),
        ),
    )
    allowance, minute = 5, 0.25
    pacer = pacing.MethodPacer({"conversations.replies": allowance}, minute_seconds=minute)
    sent, returned = [], []

    class Sends(deque):
        """The pacer's record of the method's last `allowance` sends; every one kept here."""

        def append(self, sent_at: float) -> None:
            sent.append(sent_at)
            super().append(sent_at)

    pacer._sent["conversations.replies"] = Sends(maxlen=allowance)

    def worker():
        for _ in range(6):
            pacer.wait("conversations.replies")
            returned.append(threading.get_ident())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(returned) == 24 and len(sent) == 24
    sent.sort()
    bunched = [
        (i, sent[i + allowance] - sent[i])
        for i in range(len(sent) - allowance)
        if sent[i] + minute > sent[i + allowance]
    ]
    assert bunched == []  # no margin: the pacer's own readings, not thread hand-over
