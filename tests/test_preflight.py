"""The pre-flight: a bad, revoked or under-scoped token ends in one line before anything is
written, from the command line and inside a flow run; `check` reports without loading."""

import os
from pathlib import Path
from typing import Any, Tuple

import pytest

from tests.helpers import TOKEN, StartEmulator, run_cli, set_slack_env
from tooling.slack_emulator import EmulatorServer, Workspace
from tooling.slack_emulator.config import DEFAULT_SCOPES

REVOKED = "xoxb-revoked-by-uninstall"
WITHOUT_HISTORY = tuple(s for s in DEFAULT_SCOPES if s not in ("channels:history", "users:read"))


@pytest.fixture
def emulated(start_emulator: StartEmulator) -> Tuple[Workspace, EmulatorServer]:
    server = start_emulator(revoked_tokens=(REVOKED,))
    return server.workspace, server


@pytest.fixture
def under_scoped(start_emulator: StartEmulator) -> Tuple[Workspace, EmulatorServer]:
    server = start_emulator(scopes=WITHOUT_HISTORY)
    return server.workspace, server


def cli(server: EmulatorServer, tmp_path: Path, token: str, *args: str) -> Any:
    env = {
        "SOURCES__SLACK__ACCESS_TOKEN": token,
        "SOURCES__SLACK__API_BASE_URL": server.base_url,
        "SOURCES__SLACK__RATE_LIMIT_PROFILE": "off",
    }
    return run_cli(*args, env=env, tmp_path=tmp_path)


def one_error_line(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


CASES = {
    "wrong": ("xoxb-wrong-0123456789", "auth.test failed: invalid_auth (the token is not valid"),
    "revoked": (REVOKED, "auth.test failed: token_revoked (the token was revoked; reinstall"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_token_is_one_line_exit_2_and_nothing_written(case, emulated, tmp_path):
    _, server = emulated
    token, expected = CASES[case]
    result = cli(server, tmp_path, token, "run")
    assert result.returncode == 2
    assert expected in one_error_line(result)
    assert result.stdout == ""
    assert server.request_counts() == {"auth.test": 1}
    assert not (tmp_path / "cli.duckdb").exists()
    assert token not in result.stderr


def test_missing_scopes_are_named_in_one_line(under_scoped, tmp_path):
    _, server = under_scoped
    result = cli(server, tmp_path, TOKEN, "run")
    assert result.returncode == 2
    line = one_error_line(result)
    assert "missing_scope: add the OAuth scopes 'channels:history', 'users:read'" in line
    assert server.request_counts() == {"auth.test": 1}
    assert not (tmp_path / "cli.duckdb").exists()


def test_include_private_needs_the_groups_scopes(tmp_path, start_emulator):
    server = start_emulator(scopes=tuple(s for s in DEFAULT_SCOPES if not s.startswith("groups:")))
    result = cli(server, tmp_path, TOKEN, "run", "--include-private")
    assert "'groups:history', 'groups:read'" in one_error_line(result)
    assert result.returncode == 2


def test_check_reports_workspace_scopes_channels_and_destination(emulated, tmp_path):
    workspace, server = emulated
    result = cli(server, tmp_path, TOKEN, "check")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"({workspace.team.id})" in out and "emulator-bot" in out
    assert "Missing:       none" in out
    outside = sorted("#" + c["name"] for c in workspace.channels() if c["is_member"] is False)
    public = [c for c in workspace.channels() if not c["is_private"]]
    assert f"Channels:      {len(public)} visible" in out
    assert f"  skips:       {', '.join(outside)}" in out
    assert "Rate limits:   off" in out
    assert f"Destination:   duckdb: {tmp_path / 'cli.duckdb'}, dataset slack_data" in out
    assert server.request_counts() == {"auth.test": 1, "conversations.list": 1}
    assert not (tmp_path / "cli.duckdb").exists()


def test_check_with_missing_scopes_exits_2_and_names_them(under_scoped, tmp_path):
    _, server = under_scoped
    result = cli(server, tmp_path, TOKEN, "check")
    assert result.returncode == 2
    assert "Missing:       channels:history (history and replies of public channels)" in (
        result.stdout
    )
    assert "Not ready" in result.stdout


def test_flow_run_fails_with_the_same_line_before_any_task(
    prefect_harness, emulated, monkeypatch, tmp_path
):
    from orchestration.cli import describe_failure
    from slack_pipeline_with_prefect import slack_pipeline

    _, server = emulated
    set_slack_env(monkeypatch, server, tmp_path, token=REVOKED)

    state = slack_pipeline(return_state=True)

    assert state.is_failed()
    expected = "Slack auth.test failed: token_revoked (the token was revoked"
    assert expected in describe_failure(state.result(raise_on_failure=False))
    assert expected in (state.message or "")
    assert server.request_counts() == {"auth.test": 1}
    assert not os.path.exists(tmp_path / "slack.duckdb")

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    assert runs == []
