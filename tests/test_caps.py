"""Slack's non-Marketplace caps detected under `rate_limit_profile = "tiers"` (caps.py): the run
switches history/replies to 1 call a minute after at most a few 429s and says so; an
internal app's run detects nothing and makes the calls it always made."""

from datetime import datetime, timedelta, timezone

import pytest

from slack_source.caps import CapDetector
from tests.helpers import (
    TOKEN,
    emulator_server,
    load_daily,
    load_source,
    loaded_messages,
    make_test_pipeline,
    readable_channel_ids,
    truth_messages,
)

START = datetime.now(timezone.utc) - timedelta(days=40)
SCALE = 0.004  # one Slack minute = 0.24 s
SPEC = dict(seed=5, users=6, channels=4, private_channels=0, archived_channels=1,
            non_member_channels=1, messages=300, threads=12, days=30)  # fmt: skip
MAX_429 = 3
TIERS_SCALE = 0.02  # Tier 3 slots of 24 ms: a busy machine's jitter stays inside them


def paced(profile: str, scale: float = SCALE) -> dict:
    return dict(rate_limit_profile=profile, rate_limit_minute_seconds=60 * scale)


def non_marketplace_emulator(start_emulator, spec=SPEC, scale=SCALE):
    return start_emulator(spec, rate_limits="non_marketplace", time_scale=scale)


def capped_backfill(start_emulator, tmp_path, spec=SPEC, scale=SCALE):
    """A backfill under `tiers` against a non-Marketplace emulator: exact and detected."""
    server = non_marketplace_emulator(start_emulator, spec, scale)
    workspace = server.workspace
    pipeline = make_test_pipeline(tmp_path)
    stats, counts = load_source(pipeline, server, start_date=START, **paced("tiers", scale))
    assert loaded_messages(pipeline) == truth_messages(workspace, readable_channel_ids(workspace))
    assert stats.detected_rate_limits == "non_marketplace"
    assert stats.as_dict()["detected_rate_limits"] == "non_marketplace"
    assert sum(server.stats()["ratelimited"].values()) <= MAX_429
    return stats, counts


def test_non_marketplace_app_is_detected_and_the_run_is_exact(tmp_path, start_emulator, capfd):
    stats, counts = capped_backfill(start_emulator, tmp_path)
    assert "page held 15 messages of 999 asked" in stats.detected_by
    assert sum(stats.ratelimited.values()) <= MAX_429
    assert counts["conversations.replies"] > 3  # the switch held for replies too
    logged = capfd.readouterr().err.splitlines()  # dlt's logger writes to stderr itself
    warnings = [line for line in logged if "non-Marketplace" in line]
    assert len(warnings) == 1, warnings


def test_small_channels_are_detected_by_their_429s(tmp_path, start_emulator):
    """Channels too small to fill a capped page: only Retry-After tells, after two 429s. A
    longer minute than the other tests: the second 429 needs the next call inside the
    emulator's window, which a busy machine's scheduling delay must not outlast."""
    small = dict(SPEC, channels=6, messages=40, threads=3)
    stats, _ = capped_backfill(start_emulator, tmp_path, small, scale=0.02)
    assert "HTTP 429" in stats.detected_by
    assert 2 <= sum(stats.ratelimited.values()) <= MAX_429


def test_internal_app_detects_nothing_and_makes_the_same_calls(tmp_path, start_emulator):
    """`tiers` on an internal app: no detection, and a backfill and a daily run make exactly
    the calls (per method) of a run without the detector (`off`)."""
    runs = {}
    for profile in ("off", "tiers"):
        server = start_emulator(SPEC, rate_limits="tiers", time_scale=TIERS_SCALE)
        pipeline = make_test_pipeline(tmp_path / profile)
        backfill, backfill_counts = load_source(
            pipeline, server, start_date=START, **paced(profile, TIERS_SCALE)
        )
        daily, daily_counts = load_daily(pipeline, server, **paced(profile, TIERS_SCALE))
        runs[profile] = (backfill_counts, daily_counts)
        assert backfill.detected_rate_limits is None and daily.detected_rate_limits is None
        assert sum(backfill.ratelimited.values()) == sum(daily.ratelimited.values()) == 0
        readable = readable_channel_ids(server.workspace)
        assert daily_counts["conversations.history"] == len(readable)
        assert loaded_messages(pipeline) == truth_messages(server.workspace, readable)
    assert runs["tiers"] == runs["off"]


def test_explicit_profile_is_an_override_without_detection():
    """`non_marketplace` paces from the start; `off` and it never run the detector."""
    from slack_source.client import SlackClient

    for profile in ("non_marketplace", "off"):
        assert (
            SlackClient(TOKEN, "http://127.0.0.1:9/api/", rate_limit_profile=profile).caps is None
        )
    assert SlackClient(TOKEN, "http://127.0.0.1:9/api/").caps is not None


@pytest.mark.parametrize(
    "payload, url, detected",
    [
        ({"messages": [{}] * 15, "has_more": True}, "/api/conversations.history?limit=999", True),
        ({"messages": [{}] * 15, "has_more": False}, "/api/conversations.history?limit=999", False),
        (
            {"messages": [{}] * 15, "response_metadata": {"next_cursor": "x"}},
            "/api/conversations.replies?limit=999",
            True,
        ),  # fmt: skip
        ({"messages": [{}] * 15, "has_more": True}, "/api/conversations.history?limit=15", False),
        ({"messages": [{}] * 14, "has_more": True}, "/api/conversations.history?limit=999", False),
        ({"members": [{}] * 15, "has_more": True}, "/api/users.list?limit=999", False),
    ],
)
def test_page_signal(payload, url, detected):
    seen = []
    detector = CapDetector(60.0, seen.append)
    method = url.split("?")[0].rsplit("/", 1)[1]
    detector.page(method, payload, "http://x" + url)
    assert bool(seen) is detected and (detector.signal is not None) is detected


def test_retry_after_signal_needs_two_long_waits():
    seen = []
    detector = CapDetector(60.0, seen.append)
    detector.ratelimited("conversations.history", 1.2)  # a Tier-3 slot: no signal
    detector.ratelimited("conversations.history", 40.0)
    assert seen == []
    detector.ratelimited("conversations.replies", 55.0)
    detector.ratelimited("conversations.replies", 55.0)  # once only
    assert len(seen) == 1


def test_check_probes_one_history_page(tmp_path):
    """`check` under `tiers` reads one history page and says what it shows."""
    from tests.helpers import emulator_cli

    for limits, expected in (
        ("non_marketplace", "Rate limits:   tiers; detected non_marketplace (a conversations"),
        ("off", "Rate limits:   tiers (not capped: a history page of #"),
    ):
        with emulator_server(SPEC, rate_limits=limits) as server:
            result = emulator_cli(
                server, tmp_path, "check", SOURCES__SLACK__RATE_LIMIT_PROFILE="tiers"
            )
        assert result.returncode == 0, result.stderr[-2000:]
        assert expected in result.stdout, result.stdout
        assert server.stats()["requests"].get("conversations.history") == 1


def test_flow_detects_once_and_reports_it(
    prefect_harness, tmp_path, monkeypatch, start_emulator, capfd
):
    """The daily flow with one channel per task: the first batch detects the caps, later
    batches start with them (no second detection, no more 429s); the summary and its artifact
    say what was detected."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from slack_pipeline_with_prefect import slack_pipeline
    from tests.helpers import backfill_start, latest_artifact, set_slack_env

    server = non_marketplace_emulator(start_emulator)
    workspace = server.workspace
    set_slack_env(monkeypatch, server, tmp_path)
    monkeypatch.setenv("SOURCES__SLACK__RATE_LIMIT_PROFILE", "tiers")
    monkeypatch.setenv("SOURCES__SLACK__RATE_LIMIT_MINUTE_SECONDS", str(60 * SCALE))
    monkeypatch.setenv("SLACK_PIPELINE__CHANNELS_PER_LOAD", "1")
    summary = slack_pipeline(start_date=backfill_start())

    readable = readable_channel_ids(workspace)
    assert len(readable) >= 2, "more than one batch"
    path = tmp_path / "slack.duckdb"
    assert loaded_messages(path) == truth_messages(workspace, readable)
    assert summary["detected_rate_limits"] == "non_marketplace"
    assert sum(summary["ratelimited_429"].values()) <= MAX_429
    assert sum(server.stats()["ratelimited"].values()) <= MAX_429
    artifact = latest_artifact("slack-load-summary")
    run_logs = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[artifact.flow_run_id]))
    with get_client(sync_client=True) as client:
        # the run's own log (the hook sends it before the run ends): one warning, once
        logged = [
            log.message
            for log in client.read_logs(log_filter=run_logs)
            if "non-Marketplace" in log.message
        ]
    assert len(logged) == 1, logged
    assert "Rate limits detected: non_marketplace (a conversations.history page held 15" in (
        artifact.data
    )
