"""Faults through the Prefect flow: what Prefect retries, what it must not, and the data after.

The source retries each HTTP call itself; Prefect's task retries are the second line, for a
failure that outlasts those. These tests run the real flow on the session's Prefect harness
against the emulator and read back task runs, states, the DuckDB file and the emulator's counts.
"""

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from orchestration.cli import describe_failure
from orchestration.failures import retry_only_transient
from tests.helpers import (
    DATASET,
    THREADED_SPEC,
    TOKEN,
    Outage,
    StartEmulator,
    backfill_start,
    loaded_messages,
    query,
    readable_channel_ids,
    set_slack_env,
    task_runs_of,
    truth_messages,
)
from tooling.slack_emulator import EmulatorServer, FaultSpec, Workspace
from tooling.slack_emulator.config import DEFAULT_SCOPES
from tooling.slack_emulator.faults import FAULT_KINDS as ALL_FAULT_KINDS

START_DAY = backfill_start()
TASK_NAMES = ("get_users", "get_channels", "get_channel_history")

StartFlowEnv = Callable[..., Tuple[Workspace, EmulatorServer]]


@pytest.fixture
def flow_module(prefect_harness: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The flow module with Prefect's retry delays at 0 (10 s and 60 s in production).

    Prefect 3.9.1 reads `task.retry_delay_seconds` when a run fails (task_engine.handle_retry),
    so patching the task objects' attribute is enough; retries and the condition stay real.
    """
    import slack_pipeline_with_prefect as module

    for name in TASK_NAMES:
        task = getattr(module, name)
        assert task.retries == 2 and task.retry_condition_fn is retry_only_transient
        monkeypatch.setattr(task, "retry_delay_seconds", 0)
    return module


@pytest.fixture
def flow_env(
    flow_module: Any,
    start_emulator: StartEmulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> StartFlowEnv:
    """Start an emulator with the given config and point the flow's dlt config at it."""

    def start(
        spec: Optional[Dict[str, Any]] = None, token: str = TOKEN, **config: Any
    ) -> Tuple[Workspace, EmulatorServer]:
        server = start_emulator(spec, **config)
        set_slack_env(monkeypatch, server, tmp_path, token=token)
        return server.workspace, server

    return start


def duckdb_file(tmp_path: Path) -> Path:
    return tmp_path / "slack.duckdb"


def assert_equals_ground_truth(workspace: Workspace, tmp_path: Path) -> None:
    """Messages equal the emulator's truth over the readable channels, one row per message."""
    readable = readable_channel_ids(workspace)
    assert loaded_messages(duckdb_file(tmp_path)) == truth_messages(workspace, readable)
    total, distinct = query(
        duckdb_file(tmp_path),
        f"SELECT COUNT(*), COUNT(DISTINCT (channel_id, ts)) FROM {DATASET}.messages",
    )[0]
    assert total == distinct


def state_names(task_run: Any) -> List[str]:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        states = client.read_task_run_states(task_run.id)
    return [state.name for state in sorted(states, key=lambda s: s.timestamp)]


def first_thread_of_general(workspace: Workspace) -> Dict[str, str]:
    general = next(c["id"] for c in workspace.channels() if c["name"] == "general")
    channel_id, ts = workspace.thread_parents(general)[0]
    return {"channel": channel_id, "ts": ts}


# -- 1. a transient failure that outlasts the source's retries: Prefect retries the task -------
@pytest.mark.parametrize(
    "task_name, method",
    [("get_users", "users.list"), ("get_channels", "conversations.list")],
)
def test_prefect_retries_a_task_whose_transient_failure_outlasts_the_source_retries(
    task_name: str,
    method: str,
    flow_module: Any,
    flow_env: StartFlowEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two failed HTTP attempts exhaust the source (max_attempts=2); Prefect re-runs the task
    at once, and the re-run neither loses nor duplicates rows."""
    monkeypatch.setenv("SOURCES__SLACK__MAX_ATTEMPTS", "2")
    workspace, server = flow_env()
    outage = Outage(server, method, times=2, match={})

    state = flow_module.slack_pipeline(start_date=START_DAY, return_state=True)

    assert state.is_completed(), state.message
    assert outage.failed == 2 and outage.left == 0
    runs = task_runs_of(state)
    retried = runs[task_name]
    assert retried.run_count == 2
    names = state_names(retried)
    assert names.count("Retrying") == 1 and "AwaitingRetry" not in names, names
    assert names[-1] == "Completed"
    assert all(run.run_count == 1 for name, run in runs.items() if name != task_name)
    assert_equals_ground_truth(workspace, tmp_path)
    summary = state.result()
    assert summary["failed_channels"] == {}


# -- 1b. thread replies that outlast the retries: that channel fails, the batch loads -------
def test_replies_failing_after_retries_fail_their_channel_not_the_batch(
    flow_module: Any, flow_env: StartFlowEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One failure model for history and replies: the channel is reported under "Failed
    channels", the other channels of its batch load, the run ends Failed; the next run
    fetches the thread it missed."""
    monkeypatch.setenv("SOURCES__SLACK__MAX_ATTEMPTS", "2")
    workspace, server = flow_env()
    thread = first_thread_of_general(workspace)
    outage = Outage(server, "conversations.replies", times=2, match=thread)

    state = flow_module.slack_pipeline(start_date=START_DAY, return_state=True)

    assert state.is_failed() and outage.failed == 2
    assert "Slack channels not loaded after retries: #general (HTTP 503)" in (state.message or "")
    runs = task_runs_of(state)
    assert all(run.run_count == 1 for run in runs.values()), runs  # no Prefect retry needed
    assert runs["get_channel_history"].state.is_completed()
    readable = readable_channel_ids(workspace)
    others = readable - {thread["channel"]}
    loaded = loaded_messages(duckdb_file(tmp_path))
    assert {k: v for k, v in loaded.items() if k[0] in others} == truth_messages(workspace, others)
    general = {k for k in loaded if k[0] == thread["channel"]}
    assert (thread["channel"], thread["ts"]) in general  # its history loaded, one thread missing

    state = flow_module.slack_pipeline(return_state=True)  # the daily run after it
    assert state.is_completed(), state.message
    assert_equals_ground_truth(workspace, tmp_path)


# -- 2. a permanent error: Prefect does not retry, the failure names the cause in one line ----
# The pre-flight (tests/test_preflight.py) stops bad tokens and missing scopes before any task;
# these cases strip Slack's scope header (as a proxy may), so the error surfaces in a task.
PERMANENT_CASES = {
    "users_scope": (
        dict(scopes=tuple(s for s in DEFAULT_SCOPES if s != "users:read"), scope_header=False),
        "get_users",
        "users.list",
        "missing_scope: add the OAuth scope 'users:read'",
    ),
    "channels_scope": (
        dict(scopes=tuple(s for s in DEFAULT_SCOPES if s != "channels:read"), scope_header=False),
        "get_channels",
        "conversations.list",
        "missing_scope: add the OAuth scope 'channels:read'",
    ),
}


@pytest.mark.parametrize("case", sorted(PERMANENT_CASES))
def test_permanent_slack_error_is_not_retried_and_named_in_one_line(
    case: str, flow_module: Any, flow_env: StartFlowEnv
) -> None:
    """A bad scope or token cannot heal: one task run, one request, the cause in one line."""
    config, task_name, method, expected = PERMANENT_CASES[case]
    _, server = flow_env(**config)

    state = flow_module.slack_pipeline(start_date=START_DAY, return_state=True)

    assert state.is_failed()
    runs = task_runs_of(state)
    failed = runs[task_name]
    assert failed.run_count == 1
    names = state_names(failed)
    assert "Retrying" not in names and "AwaitingRetry" not in names, names
    assert names[-1] == "Failed"
    assert server.request_counts().get(method) == 1
    line = describe_failure(state.result(raise_on_failure=False))
    assert "\n" not in line and expected in line, line
    # Prefect's own message (UI, logs) carries dlt's wrapper too; one of its lines names it
    lines = (failed.state.message or "").splitlines()
    assert any(expected in line for line in lines), failed.state.message


# -- 3. seeded faults of every kind through the flow: the load still equals the truth --------
# Seeds 21-30 were all run in development (each ended equal to the truth); these four cover
# every fault kind between them and retries on conversations.list, history and replies.
@pytest.mark.parametrize("seed", [22, 26, 28, 29])
def test_seeded_faults_through_the_flow_end_equal_to_ground_truth(
    seed: int,
    flow_module: Any,
    flow_env: StartFlowEnv,
    tmp_path: Path,
    record_property: Callable[[str, Any], None],
) -> None:
    """The flow, not just the source, ends Completed and exact under mixed faults."""
    faults = FaultSpec(rate=0.15, seed=seed, kinds=ALL_FAULT_KINDS, slow_seconds=0.2)
    workspace, server = flow_env(faults=faults)

    state = flow_module.slack_pipeline(start_date=START_DAY, return_state=True)

    assert state.is_completed(), state.message
    injected = server.stats()["faults"]
    record_property("faults", injected)
    assert sum(injected.values()) > 0, "faults were injected"
    summary = state.result()
    assert sum(summary["retries"].values()) > 0, "the source retried them"
    assert summary["failed_channels"] == {}
    # the source's own retries absorb a 15 % fault rate: no task had to be re-run whole
    runs = task_runs_of(state)
    assert {name: run.run_count for name, run in runs.items()} == dict.fromkeys(TASK_NAMES, 1)
    assert_equals_ground_truth(workspace, tmp_path)


# -- 4. a throttled workspace through the flow: paced under the limit, 429s rare -------------
def test_throttled_flow_is_paced_by_the_allowance(
    flow_module: Any,
    flow_env: StartFlowEnv,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    record_property: Callable[[str, Any], None],
) -> None:
    """The flow passes the tier pacing to the source: 429s stay rare, and the history task
    cannot have finished faster than 50 replies calls a (scaled) minute allow."""
    scale = 0.02  # one Slack minute = 1.2 s: the 2 % pacing margin (24 ms) outlasts jitter
    workspace, server = flow_env(THREADED_SPEC, rate_limits="tiers", time_scale=scale)
    monkeypatch.setenv("SOURCES__SLACK__RATE_LIMIT_PROFILE", "tiers")
    monkeypatch.setenv("SOURCES__SLACK__RATE_LIMIT_MINUTE_SECONDS", str(60 * scale))

    state = flow_module.slack_pipeline(start_date=START_DAY, return_state=True)

    assert state.is_completed(), state.message
    history_run = task_runs_of(state)["get_channel_history"]
    elapsed = history_run.total_run_time.total_seconds()
    replies = server.request_counts()["conversations.replies"]
    assert replies > 60, "the run needs more replies calls than one window allows"
    throttled = sum(server.stats()["ratelimited"].values())
    record_property("http_429", throttled)
    record_property("replies_calls", replies)
    record_property("history_seconds", round(elapsed, 2))
    assert throttled <= 2
    # 50 replies a (scaled) minute: the calls cannot have taken less than that allows
    assert elapsed >= (replies - 1) * (60 * scale) / 50
    assert_equals_ground_truth(workspace, tmp_path)
