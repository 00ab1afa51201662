"""Enterprise Grid org-wide installs: one org-level token, several workspaces behind it.

The emulator serves an `Org` (tooling/slack_emulator/org.py): `auth.test` says it is an
enterprise install, `auth.teams.list` pages its workspaces, team-scoped methods need `team_id`.
The product discovers the workspaces from `[slack_pipeline.org]` (orchestration/workspaces/
org.py): each loads as workspace `t<team id>` into its own pipeline, dataset and DuckDB file,
named the same whatever order Slack lists them in; bad org tokens fail in one line, exit 2."""

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import requests

from orchestration.prepare import prepare_fan_out
from orchestration.workspaces.org import workspace_name
from tests.helpers import (
    ROOT,
    SMALL_SPEC,
    backfill_start,
    emulator_cli_env,
    pipeline_cli,
    query,
    readable_channel_ids,
    truth_messages,
)
from tooling.slack_emulator import EmulatorConfig, EmulatorServer, Workspace, WorkspaceSpec
from tooling.slack_emulator.org import Org, org_of

ORG_TOKEN = "xoxb-org-wide-secret"
WORKSPACE_TOKEN = "xoxb-one-workspace-secret"
SEEDS = (51, 52, 53)
SPEC = {**SMALL_SPEC, "messages": 240, "threads": 20}


@pytest.fixture
def org() -> Org:
    return org_of(SEEDS, SPEC)


def org_server(served: Dict[str, object], **config: object) -> Iterator[EmulatorServer]:
    with EmulatorServer(served, EmulatorConfig(**config)) as server:  # type: ignore[arg-type]
        yield server


@pytest.fixture
def served(org: Org) -> Iterator[EmulatorServer]:
    """The org behind ORG_TOKEN, and a plain workspace behind WORKSPACE_TOKEN."""
    plain = Workspace(WorkspaceSpec(**{**SPEC, "seed": 59}))
    yield from org_server({ORG_TOKEN: org, WORKSPACE_TOKEN: plain})


def slack(server: EmulatorServer, method: str, token: str = ORG_TOKEN, **args: object) -> dict:
    response = requests.post(
        server.base_url + method, data=args, headers={"Authorization": f"Bearer {token}"}
    )
    return response.json()


def team_requests(server: EmulatorServer, team_id: str) -> Dict[str, int]:
    return requests.get(server.team_control_url(team_id) + "stats").json()["requests"]


# -- the emulator ---------------------------------------------------------------------------
def test_auth_teams_list_pages_with_limit_and_cursor(served: EmulatorServer, org: Org) -> None:
    pages: List[List[dict]] = []
    cursor = ""
    while True:
        page = slack(served, "auth.teams.list", limit=1, cursor=cursor)
        assert page["ok"], page
        pages.append(page["teams"])
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert [[t["id"] for t in p] for p in pages] == [[ws.team.id] for ws in org.workspaces]
    assert all("icon" not in t for p in pages for t in p)
    assert served.stats()["requests"]["auth.teams.list"] == len(SEEDS)
    whole = slack(served, "auth.teams.list", include_icon="true")
    assert [t["id"] for t in whole["teams"]] == [ws.team.id for ws in org.workspaces]
    assert all("icon" in t and t["name"] for t in whole["teams"])
    assert slack(served, "auth.teams.list", cursor="bm9wZQ==")["error"] == "invalid_cursor"
    assert slack(served, "auth.teams.list", WORKSPACE_TOKEN)["error"] == "not_allowed_token_type"


def test_auth_test_flags_an_org_wide_install(served: EmulatorServer, org: Org) -> None:
    whole = slack(served, "auth.test")
    assert whole["is_enterprise_install"] is True
    assert whole["enterprise_id"] == org.enterprise_id == whole["team_id"]
    one = slack(served, "auth.test", WORKSPACE_TOKEN)
    assert one["is_enterprise_install"] is False and "enterprise_id" not in one


def test_org_token_needs_team_id_on_team_scoped_methods(served: EmulatorServer, org: Org) -> None:
    for method in ("users.list", "conversations.list"):
        assert slack(served, method)["error"] == "missing_argument", method
    second = org.workspaces[1]
    users = slack(served, "users.list", team_id=second.team.id)["members"]
    assert [u["id"] for u in users] == [u["id"] for u in second.user_objects()]
    channels = slack(served, "conversations.list", team_id=second.team.id)["channels"]
    assert {c["id"] for c in channels} <= {c["id"] for c in second.channels()}
    assert slack(served, "users.list", team_id="T0NOTINORG")["error"] == "team_access_not_granted"
    # a channel id is unique across the org: history reaches the workspace holding it
    third = org.workspaces[2]
    channel = next(c for c in third.channels() if c["is_member"] and not c["is_archived"])
    history = slack(served, "conversations.history", channel=channel["id"], limit=999)
    loaded = {(channel["id"], m["ts"]) for m in history["messages"]}
    assert loaded and loaded <= set(truth_messages(third, {channel["id"]}))
    # each workspace counts its own requests; the token's total counts them all
    assert team_requests(served, second.team.id) == {"users.list": 1, "conversations.list": 1}
    assert team_requests(served, third.team.id) == {"conversations.history": 1}
    assert team_requests(served, org.workspaces[0].team.id) == {}
    assert served.request_counts(ORG_TOKEN)["users.list"] == 3


def test_each_workspace_of_the_org_has_its_own_rate_limits(org: Org) -> None:
    """Slack's limits are per app and workspace: one workspace's Tier 2 minute used up leaves
    the others' untouched (a minute of 60 s here: the test ends well inside it)."""
    first, second = (ws.team.id for ws in org.workspaces[:2])
    with EmulatorServer({ORG_TOKEN: org}, EmulatorConfig(rate_limits="tiers")) as server:
        answers = [slack(server, "users.list", team_id=first)["ok"] for _ in range(20)]
        assert answers == [True] * 20
        response = requests.post(
            server.base_url + "users.list",
            data={"team_id": first},
            headers={"Authorization": f"Bearer {ORG_TOKEN}"},
        )
        assert response.status_code == 429 and response.headers["retry-after"]
        assert slack(server, "users.list", team_id=second)["ok"]
        stats = requests.get(server.team_control_url(first) + "stats").json()
        assert stats["ratelimited"] == {"users.list": 1}
        assert team_requests(server, second) == {"users.list": 1}


def test_an_app_not_installed_in_a_workspace_cannot_read_it() -> None:
    org = org_of(SEEDS[:2], SPEC, installed=[])
    with EmulatorServer({ORG_TOKEN: org}, EmulatorConfig()) as server:
        assert slack(server, "auth.teams.list")["teams"] == []
        team_id = org.workspaces[0].team.id
        assert slack(server, "users.list", team_id=team_id)["error"] == "team_access_not_granted"


# -- discovery and the children's loads ----------------------------------------------------
def configure_org(
    monkeypatch: pytest.MonkeyPatch, server: EmulatorServer, tmp_path: Path, token: str = ORG_TOKEN
) -> None:
    """`[slack_pipeline.org]` in env, as a deployment sets it; DuckDB files in `tmp_path`."""
    monkeypatch.setenv("SLACK_PIPELINE__ORG__ACCESS_TOKEN", token)
    monkeypatch.setenv("SLACK_PIPELINE__ORG__API_BASE_URL", server.base_url)
    monkeypatch.setenv("SOURCES__SLACK__RATE_LIMIT_PROFILE", "off")
    monkeypatch.setenv("SLACK_PIPELINE__PIPELINES_DIR", str(tmp_path / "pipelines"))
    monkeypatch.chdir(tmp_path)


def loaded_keys(path: Path, dataset: str) -> List[tuple]:
    return query(path, f"SELECT channel_id, ts FROM {dataset}.messages")


def expected_keys(workspace: Workspace) -> List[tuple]:
    return sorted(truth_messages(workspace, readable_channel_ids(workspace)))


def test_discovered_workspaces_each_load_exactly_and_keep_their_names(
    prefect_harness, served: EmulatorServer, org: Org, monkeypatch, tmp_path
) -> None:
    """What the parent does (discovery) and what each child does (`workspace=<name>`): every
    workspace in its own pipeline, dataset and DuckDB file equal to its ground truth; a second
    discovery with Slack listing them in another order gives the same names, and the daily
    run after the backfill loads nothing twice."""
    from slack_pipeline_with_prefect import slack_pipeline

    configure_org(monkeypatch, served, tmp_path)
    by_name = {workspace_name(ws.team.id): ws for ws in org.workspaces}
    names = prepare_fan_out(None, backfill_start(), None, None)
    assert names == sorted(by_name) and all(n.startswith("t0") for n in names)
    calls = served.request_counts(ORG_TOKEN)
    assert calls == {"auth.test": 1, "auth.teams.list": math.ceil(len(SEEDS) / 1000)}
    for name in names:
        summary = slack_pipeline(start_date=backfill_start(), workspace=name)
        assert summary["dataset_name"] == f"slack_data_{name}"
        assert ORG_TOKEN not in json.dumps(summary, default=str)
        rows = loaded_keys(tmp_path / f"slack_{name}.duckdb", f"slack_data_{name}")
        assert sorted(rows) == expected_keys(by_name[name]), name
        assert summary["rows_loaded"]["users"] == len(by_name[name].users())
        team = by_name[name].team.id
        assert team_requests(served, team)["users.list"] == 1  # with its team_id
    pipelines = sorted(p.name for p in (tmp_path / "pipelines").iterdir())
    assert pipelines == [f"slack_{name}" for name in names]  # dlt state never shared

    org.workspaces.reverse()  # type: ignore[attr-defined]  # Slack's order is no promise
    listed = slack(served, "auth.teams.list")["teams"]
    assert [t["id"] for t in listed] != sorted(t["id"] for t in listed)
    assert prepare_fan_out(None, None, None, None) == names
    first = by_name[names[0]]
    channel = sorted(readable_channel_ids(first))[0]
    first.post_message(channel, "posted after the backfill")
    for name in names:
        slack_pipeline(workspace=name)
        rows = loaded_keys(tmp_path / f"slack_{name}.duckdb", f"slack_data_{name}")
        assert len(rows) == len(set(rows))
        assert sorted(rows) == expected_keys(by_name[name]), name


def test_team_ids_allow_list_and_dataset_prefix(
    served: EmulatorServer, org: Org, monkeypatch, tmp_path
):
    from orchestration.run_settings import load_run_settings
    from orchestration.workspaces import for_workspace, workspace_connection

    configure_org(monkeypatch, served, tmp_path)
    wanted = org.workspaces[1].team.id
    monkeypatch.setenv("SLACK_PIPELINE__ORG__TEAM_IDS", json.dumps([wanted]))
    monkeypatch.setenv("SLACK_PIPELINE__ORG__DATASET_PREFIX", "slack_org")
    [name] = prepare_fan_out(None, None, None, None)
    settings = for_workspace(load_run_settings(), name)
    assert settings.dataset_name == f"slack_org_{name}"
    assert workspace_connection(settings)["team_id"] == wanted
    monkeypatch.setenv("SLACK_PIPELINE__ORG__TEAM_IDS", '["T0NOTINORG"]')
    from slack_source import SlackConfigError

    with pytest.raises(
        SlackConfigError, match="team_ids not installed in the org E0EMULATORG: T0NOTINORG"
    ):
        prepare_fan_out(None, None, None, None)


# -- the command line ------------------------------------------------------------------------
def org_cli_env(server: EmulatorServer, tmp_path: Path, token: str = ORG_TOKEN) -> Dict[str, str]:
    """A command line's environment with `[slack_pipeline.org]` and no single-workspace token."""
    env = emulator_cli_env(
        server,
        tmp_path,
        SLACK_PIPELINE__ORG__ACCESS_TOKEN=token,
        SLACK_PIPELINE__ORG__API_BASE_URL=server.base_url,
    )
    del env["SOURCES__SLACK__ACCESS_TOKEN"]
    return env


def parent_cli(env: Dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "slack_workspaces_with_prefect.py")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def error_lines(done: subprocess.CompletedProcess) -> List[str]:
    return [line for line in done.stderr.splitlines() if line.startswith("error: ")]


def test_a_token_that_is_not_an_org_install_fails_in_one_line(served, tmp_path) -> None:
    plain = served.workspaces[WORKSPACE_TOKEN].team
    done = parent_cli(org_cli_env(served, tmp_path, WORKSPACE_TOKEN), tmp_path)
    assert done.returncode == 2, done.stderr
    assert error_lines(done) == [
        "error: slack_pipeline.org.access_token is not an org-wide install (auth.test: workspace"
        f" {plain.name} ({plain.id}), is_enterprise_install false): configure it as"
        " [slack_pipeline.workspaces.<name>] instead"
    ]
    assert WORKSPACE_TOKEN not in done.stdout + done.stderr
    assert not (tmp_path / "pipelines").exists()
    assert served.request_counts(WORKSPACE_TOKEN) == {"auth.test": 1}


def test_a_wrong_org_token_names_its_setting(served, tmp_path) -> None:
    wrong = "xoxb-not-the-org-0123456789"
    done = parent_cli(org_cli_env(served, tmp_path, wrong), tmp_path)
    assert done.returncode == 2, done.stderr
    assert error_lines(done) == [
        "error: Slack auth.test failed: invalid_auth (the token is not valid; check"
        " SLACK_PIPELINE__ORG__ACCESS_TOKEN)"
    ]
    assert wrong not in done.stdout + done.stderr


def test_an_org_with_no_workspace_fails_in_one_line(tmp_path) -> None:
    org = org_of(SEEDS[:1], SPEC, installed=[])
    with EmulatorServer({ORG_TOKEN: org}, EmulatorConfig()) as server:
        done = parent_cli(org_cli_env(server, tmp_path), tmp_path)
        assert server.request_counts(ORG_TOKEN) == {"auth.test": 1, "auth.teams.list": 1}
    assert done.returncode == 2, done.stderr
    assert error_lines(done) == [
        "error: auth.teams.list named no workspace for the org E0EMULATORG: the app is not"
        " installed in any of its workspaces yet (an org admin adds it per workspace)"
    ]
    assert ORG_TOKEN not in done.stdout + done.stderr
    assert not (tmp_path / "pipelines").exists()


def test_check_lists_the_org_workspaces(served: EmulatorServer, org: Org, tmp_path) -> None:
    done = pipeline_cli("check", cwd=tmp_path, env=org_cli_env(served, tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == (
        f"Org:           {org.name} ({org.enterprise_id}), org-wide install,"
        f" {len(SEEDS)} workspace(s) via auth.teams.list"
    )
    teams = sorted(ws.team.id for ws in org.workspaces)
    assert lines[1 : 1 + len(teams)] == [
        f"  {workspace_name(t):<12} {t} Emulator Workspace" for t in teams
    ]
    assert "  missing:     none" in lines and lines[-1] == "Org ready to run."
    assert ORG_TOKEN not in done.stdout + done.stderr
    assert served.request_counts(ORG_TOKEN) == {"auth.test": 1, "auth.teams.list": 1}


# -- on a work pool --------------------------------------------------------------------------
@pytest.mark.slow
def test_an_org_loads_exactly_through_the_parent_flow_on_a_work_pool(tmp_path: Path) -> None:
    """The issue's "done when": `prefect deploy --all`, a process pool with a worker, the parent
    deployment discovering the org and fanning out one child per workspace; each workspace's
    DuckDB file equals its ground truth; no token in any parameter, log line or artifact."""
    from orchestration.prefect_server import local_prefect_server
    from tests.helpers import POOL, deploy_all, parent_run_on_pool, pool_worker_env

    org = org_of(SEEDS[:2], SPEC)
    output = tmp_path / "output"
    output.mkdir()
    names = sorted(workspace_name(ws.team.id) for ws in org.workspaces)
    with (
        EmulatorServer({ORG_TOKEN: org}, EmulatorConfig()) as emulator,
        local_prefect_server(tmp_path / "home") as server,
    ):
        deploy_all(server.client_environment())
        settings = {
            "SLACK_PIPELINE__ORG__ACCESS_TOKEN": ORG_TOKEN,
            "SLACK_PIPELINE__ORG__API_BASE_URL": emulator.base_url,
            "SOURCES__SLACK__RATE_LIMIT_PROFILE": "off",
            "SOURCES__SLACK__JOIN_PUBLIC_CHANNELS": "false",
            **{
                f"SLACK_PIPELINE__WORKSPACES__{name.upper()}__DUCKDB_FILE": str(
                    output / f"{name}.duckdb"
                )
                for name in names
            },
        }
        env = pool_worker_env(server.client_environment(), output, **settings)
        parent, runs, text, worker = parent_run_on_pool(
            server.api_url, env, tmp_path, {"start_date": backfill_start()}
        )
    children = {run["parameters"]["workspace"]: run for run in runs}
    assert parent["state"]["type"] == "COMPLETED", (parent["state"], worker.tail())
    assert sorted(children) == names
    by_name = {workspace_name(ws.team.id): ws for ws in org.workspaces}
    for name, run in children.items():
        assert run["state"]["type"] == "COMPLETED" and run["work_pool_name"] == POOL, run["state"]
        rows = loaded_keys(output / f"{name}.duckdb", f"slack_data_{name}")
        assert sorted(rows) == expected_keys(by_name[name]), name
    assert f"Slack org {org.name} ({org.enterprise_id}): {names[0]} (" in text  # logs were read
    assert "Holding slack-workspace-t0" in text
    assert ORG_TOKEN not in text


def test_check_names_the_scopes_the_org_token_lacks(org: Org, tmp_path) -> None:
    scopes = ("channels:read", "channels:history")
    with EmulatorServer({ORG_TOKEN: org}, EmulatorConfig(scopes=scopes)) as server:
        done = pipeline_cli("check", cwd=tmp_path, env=org_cli_env(server, tmp_path))
    assert done.returncode == 2, done.stderr
    assert "  missing:     users:read (users.list)" in done.stdout.splitlines()
    assert done.stdout.splitlines()[-1] == "Org not ready: add the missing scopes."
