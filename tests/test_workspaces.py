"""Several workspaces in one configuration, on Prefect's test harness: the emulator serves them
by token, each `slack_pipeline(workspace=...)` run loads its own workspace into its own
DuckDB file and dlt pipeline, configuration mistakes fail in one line, and Enterprise Grid
org-level tokens are given the workspace's `team_id`."""

from pathlib import Path
from typing import Dict

import pytest

from orchestration.run_settings import load_run_settings
from orchestration.workspaces import configured_workspaces, for_workspace
from slack_source import (
    SlackApiError,
    SlackAuthError,
    SlackConfigError,
    list_channels,
    make_client,
)
from tests.helpers import (
    SMALL_SPEC,
    StartEmulator,
    backfill_start,
    query,
    readable_channel_ids,
    truth_messages,
)
from tooling.slack_emulator import EmulatorConfig, EmulatorServer, Workspace, WorkspaceSpec

TOKENS = {"alpha": "xoxb-alpha-token", "beta": "xoxb-beta-token", "gamma": "xoxb-gamma-token"}
SEEDS = {"alpha": 21, "beta": 22, "gamma": 23}


@pytest.fixture
def workspaces(start_emulator: StartEmulator) -> EmulatorServer:
    """Three workspaces of different sizes on one emulator; beta's token is an Enterprise Grid
    org-level one (its lists need team_id), gamma's is revoked."""
    served = {
        TOKENS[name]: Workspace(WorkspaceSpec(**{**SMALL_SPEC, "seed": seed, "messages": 300 + i}))
        for i, (name, seed) in enumerate(SEEDS.items())
    }
    config = EmulatorConfig(revoked_tokens=(TOKENS["gamma"],), org_tokens=(TOKENS["beta"],))
    return start_emulator(served, config)


def configure(
    monkeypatch: pytest.MonkeyPatch, server: EmulatorServer, tmp_path: Path
) -> Dict[str, Path]:
    """The three workspaces in env, as a deployment sets them; returns each DuckDB file."""
    monkeypatch.setenv("SLACK_PIPELINE__WORKSPACE_NAMES", '["alpha", "beta", "gamma"]')
    monkeypatch.setenv("SOURCES__SLACK__RATE_LIMIT_PROFILE", "off")
    monkeypatch.setenv("SLACK_PIPELINE__PIPELINES_DIR", str(tmp_path / "pipelines"))
    files = {}
    for name, token in TOKENS.items():
        section = f"SLACK_PIPELINE__WORKSPACES__{name.upper()}__"
        files[name] = tmp_path / f"{name}.duckdb"
        monkeypatch.setenv(section + "ACCESS_TOKEN", token)
        monkeypatch.setenv(section + "API_BASE_URL", server.base_url)
        monkeypatch.setenv(section + "DUCKDB_FILE", str(files[name]))
    team_id = server.workspaces[TOKENS["beta"]].team.id
    monkeypatch.setenv("SLACK_PIPELINE__WORKSPACES__BETA__TEAM_ID", team_id)
    return files


def loaded(path: Path, dataset: str) -> Dict[tuple, dict]:
    rows = query(path, f"SELECT channel_id, ts, text, reply_count FROM {dataset}.messages")
    return {(r[0], r[1]): {"text": r[2], "reply_count": r[3]} for r in rows}


def truth(workspace: Workspace) -> Dict[tuple, dict]:
    return {
        key: {"text": m["text"], "reply_count": m["reply_count"]}
        for key, m in truth_messages(workspace, readable_channel_ids(workspace)).items()
    }


def test_each_workspace_loads_its_own_data_into_its_own_pipeline(
    prefect_harness, workspaces, monkeypatch, tmp_path
):
    from slack_pipeline_with_prefect import slack_pipeline

    files = configure(monkeypatch, workspaces, tmp_path)
    for name in ("alpha", "beta"):
        summary = slack_pipeline(start_date=backfill_start(), workspace=name)
        assert summary["dataset_name"] == f"slack_data_{name}"
        workspace = workspaces.workspaces[TOKENS[name]]
        assert loaded(files[name], f"slack_data_{name}") == truth(workspace)
        assert summary["rows_loaded"]["users"] == len(workspace.users())
    assert truth(workspaces.workspaces[TOKENS["alpha"]]) != truth(
        workspaces.workspaces[TOKENS["beta"]]
    )
    pipelines = sorted(p.name for p in (tmp_path / "pipelines").iterdir())
    assert pipelines == ["slack_alpha", "slack_beta"]  # dlt state never shared


def test_revoked_workspace_fails_its_pre_flight_without_writing(
    prefect_harness, workspaces, monkeypatch, tmp_path
):
    from slack_pipeline_with_prefect import slack_pipeline

    files = configure(monkeypatch, workspaces, tmp_path)
    with pytest.raises(SlackApiError) as raised:
        slack_pipeline(start_date=backfill_start(), workspace="gamma")
    assert "token_revoked" in str(raised.value)
    assert TOKENS["gamma"] not in str(raised.value)
    assert not files["gamma"].exists()


def test_wrong_workspace_token_names_its_setting(
    prefect_harness, workspaces, monkeypatch, tmp_path
):
    """The hint of a rejected token names the workspace's setting, not the single-workspace
    SOURCES__SLACK__ACCESS_TOKEN that this run never reads."""
    from slack_pipeline_with_prefect import slack_pipeline

    configure(monkeypatch, workspaces, tmp_path)
    wrong = "xoxb-wrong-0123456789"
    monkeypatch.setenv("SLACK_PIPELINE__WORKSPACES__ALPHA__ACCESS_TOKEN", wrong)
    with pytest.raises(SlackAuthError) as raised:
        slack_pipeline(start_date=backfill_start(), workspace="alpha")
    message = str(raised.value)
    assert "invalid_auth" in message
    assert "check SLACK_PIPELINE__WORKSPACES__ALPHA__ACCESS_TOKEN" in message
    assert "SOURCES__SLACK" not in message and wrong not in message


def test_configuration_mistakes_fail_in_one_line(monkeypatch, tmp_path, workspaces):
    configure(monkeypatch, workspaces, tmp_path)
    settings = load_run_settings()
    assert configured_workspaces(settings, None) == ["alpha", "beta", "gamma"]
    with pytest.raises(SlackConfigError, match="Unknown workspace\\(s\\): delta"):
        configured_workspaces(settings, ["alpha", "delta"])
    with pytest.raises(SlackConfigError, match="Bad workspace name 'Bad-Name'"):
        for_workspace(settings, "Bad-Name")
    monkeypatch.setenv(
        "SLACK_PIPELINE__WORKSPACES__BETA__DUCKDB_FILE", str(tmp_path / "alpha.duckdb")
    )
    with pytest.raises(SlackConfigError, match="Workspaces alpha and beta share the destination"):
        configured_workspaces(settings, None)
    # dlt falls back from a section to its parents: the workspace's dataset must not become
    # the shared slack_pipeline.dataset_name
    monkeypatch.setenv("SLACK_PIPELINE__DATASET_NAME", "shared")
    assert for_workspace(load_run_settings(), "alpha").dataset_name == "shared_alpha"


def test_missing_workspace_token_names_the_key(prefect_harness, workspaces, monkeypatch, tmp_path):
    from slack_pipeline_with_prefect import slack_pipeline

    configure(monkeypatch, workspaces, tmp_path)
    monkeypatch.delenv("SLACK_PIPELINE__WORKSPACES__BETA__ACCESS_TOKEN")
    with pytest.raises(SlackConfigError) as raised:
        slack_pipeline(workspace="beta")
    assert "No Slack token for workspace beta" in str(raised.value)
    assert "SLACK_PIPELINE__WORKSPACES__BETA__ACCESS_TOKEN" in str(raised.value)


def test_org_level_token_lists_one_workspace_by_team_id():
    """Enterprise Grid: users.list and conversations.list need the workspace's team_id."""
    workspace = Workspace(WorkspaceSpec(**SMALL_SPEC))
    org_token = "xoxb-org-token"
    config = EmulatorConfig(tokens=(org_token,), org_tokens=(org_token,))
    with EmulatorServer(workspace, config) as server:
        without = make_client(org_token, server.base_url, rate_limit_profile="off")
        with pytest.raises(SlackApiError, match="missing_argument"):
            list_channels(without)
        client = make_client(
            org_token, server.base_url, rate_limit_profile="off", team_id=workspace.team.id
        )
        assert [c["id"] for c in list_channels(client)] == [
            c["id"] for c in workspace.channels() if not c["is_private"]
        ]
        users = [u for page in client.pages("users.list") for u in page]
        assert len(users) == len(workspace.users())
        other = make_client(org_token, server.base_url, rate_limit_profile="off", team_id="T0OTHER")
        with pytest.raises(SlackApiError, match="team_access_not_granted"):
            list_channels(other)
