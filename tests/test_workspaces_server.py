"""Many workspaces on a work pool, end to end on a real `prefect server`: `prefect deploy --all`
from prefect.yaml, a process pool with two workers, three emulated workspaces (one with a
revoked token) and the parent flow fanning out one child run per workspace.

Checked: every loaded workspace's tables equal its ground truth; a second run of a workspace
that is still loading waits for it (its tasks start after the first run's end) instead of
overlapping; the revoked workspace fails its own child run and the parent, which names it,
while the two others load; no token in any parameter, log line or artifact.

Slack's tiers are on and compressed (a minute lasts 6 s) so that alpha, the largest workspace,
loads for ~30 s: long enough for its second run to arrive while the first holds the slot.
"""

import json
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from orchestration.prefect_server import local_prefect_server
from tests.helpers import (
    POOL,
    SMALL_SPEC,
    Api,
    Background,
    backfill_start,
    deploy_all,
    poll,
    pool_worker_env,
    query,
    readable_channel_ids,
    truth_messages,
)
from tooling.slack_emulator import EmulatorConfig, EmulatorServer, Workspace, WorkspaceSpec

pytestmark = pytest.mark.slow

TOKENS = {"alpha": "xoxb-alpha-secret", "beta": "xoxb-beta-secret", "gamma": "xoxb-gamma-secret"}
SPECS = {
    "alpha": {**SMALL_SPEC, "seed": 31, "messages": 1600, "threads": 400},
    "beta": {**SMALL_SPEC, "seed": 32},
    "gamma": {**SMALL_SPEC, "seed": 33},
}
MINUTE_SECONDS = 6.0  # Slack's rate window, compressed 10x
PARENT = "slack_workspaces/slack_workspaces"
CHILD = "slack_pipeline/slack_workspace"


class Pool:
    """The module's server, emulator, deployments and two workers."""

    def __init__(self, api: Api, emulator: EmulatorServer, output: Path) -> None:
        self.api = api
        self.emulator = emulator
        self.output = output

    def workspace(self, name: str) -> Workspace:
        return self.emulator.workspaces[TOKENS[name]]

    def duckdb_file(self, name: str) -> Path:
        return self.output / f"{name}.duckdb"

    def children(self, parent_id: str) -> Dict[str, Dict[str, Any]]:
        """The parent's child runs by workspace."""
        runs = self.api.post(
            "/flow_runs/filter",
            {"flow_runs": {"parent_flow_run_id": {"any_": [parent_id]}}},
        )
        return {run["parameters"]["workspace"]: run for run in runs}

    def task_times(self, run_id: str) -> List[str]:
        tasks = self.api.task_runs(run_id)
        return sorted(t for task in tasks for t in (task["start_time"], task["end_time"]))


def worker_env(server_env: Dict[str, str], base_url: str, output: Path) -> Dict[str, str]:
    """What a production worker has: the server, and the workspaces' settings (tokens too)."""
    env = pool_worker_env(
        server_env,
        output,
        SLACK_PIPELINE__WORKSPACE_NAMES=json.dumps(list(TOKENS)),
        SOURCES__SLACK__RATE_LIMIT_PROFILE="tiers",
        SOURCES__SLACK__RATE_LIMIT_MINUTE_SECONDS=str(MINUTE_SECONDS),
        SOURCES__SLACK__JOIN_PUBLIC_CHANNELS="false",  # ground truth: member channels
    )
    for name, token in TOKENS.items():
        section = f"SLACK_PIPELINE__WORKSPACES__{name.upper()}__"
        env[section + "ACCESS_TOKEN"] = token
        env[section + "API_BASE_URL"] = base_url
        env[section + "DUCKDB_FILE"] = str(output / f"{name}.duckdb")
    return env


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pool]:
    tmp = tmp_path_factory.mktemp("workspaces_server")
    served = {TOKENS[name]: Workspace(WorkspaceSpec(**spec)) for name, spec in SPECS.items()}
    config = EmulatorConfig(
        revoked_tokens=(TOKENS["gamma"],),
        rate_limits="tiers",
        time_scale=MINUTE_SECONDS / 60,
    )
    output = tmp / "output"
    output.mkdir()
    with EmulatorServer(served, config) as emulator, local_prefect_server(tmp / "home") as server:
        deploy_all(server.client_environment())
        env = worker_env(server.client_environment(), emulator.base_url, output)
        workers = [
            Background(
                f"worker{i}",
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL],
                env=env,
                cwd=tmp,
                logs=tmp,
            )
            for i in (1, 2)
        ]
        try:
            yield Pool(Api(server.api_url), emulator, output)
        finally:
            for worker in workers:
                worker.stop()


@pytest.fixture(scope="module")
def fanned_out(pool: Pool) -> Dict[str, Any]:
    """The parent run, plus a second run of alpha triggered while alpha's first run loads."""
    api = pool.api
    parent_id = api.run_deployment(api.deployment(PARENT)["id"], {"start_date": backfill_start()})

    def alpha_is_loading() -> bool:
        alpha = pool.children(parent_id).get("alpha")
        tasks = api.task_runs(alpha["id"]) if alpha else []
        return any(task["state"]["type"] == "RUNNING" for task in tasks)

    poll(alpha_is_loading, 120, "alpha's first run to be loading")
    slot = api.get("/v2/concurrency_limits/slack-workspace-alpha").json()
    assert (slot["limit"], slot["active_slots"]) == (1, 1), slot
    second_id = api.run_deployment(api.deployment(CHILD)["id"], {"workspace": "alpha"})
    parent = api.wait_terminal(parent_id)
    second = api.wait_terminal(second_id)
    return {"parent": parent, "second": second, "children": pool.children(parent_id)}


def test_every_loaded_workspace_equals_its_ground_truth(pool: Pool, fanned_out) -> None:
    children = fanned_out["children"]
    assert sorted(children) == ["alpha", "beta", "gamma"]
    for name in ("alpha", "beta"):
        assert children[name]["state"]["type"] == "COMPLETED", children[name]["state"]
        assert children[name]["work_pool_name"] == POOL
        workspace = pool.workspace(name)
        expected = truth_messages(workspace, readable_channel_ids(workspace))
        rows = query(
            pool.duckdb_file(name), f"SELECT channel_id, ts FROM slack_data_{name}.messages"
        )
        assert sorted(rows) == sorted(expected), name
        users = query(pool.duckdb_file(name), f"SELECT count(*) FROM slack_data_{name}.users")
        assert users[0][0] == len(workspace.users())
    alpha_ids = {c["id"] for c in pool.workspace("alpha").channels()}
    assert not alpha_ids & {c["id"] for c in pool.workspace("beta").channels()}


def test_second_run_of_a_workspace_waits_for_the_first(pool: Pool, fanned_out) -> None:
    first, second = fanned_out["children"]["alpha"], fanned_out["second"]
    assert second["state"]["type"] == "COMPLETED", second["state"]
    # Both runs were running at once, yet no task of the second began before the first's
    # tasks had all ended: it waited for alpha's slot instead of overlapping.
    assert second["start_time"] < first["end_time"]
    assert pool.task_times(second["id"])[0] >= pool.task_times(first["id"])[-1]
    logs = poll(
        lambda: [
            log["message"]
            for log in pool.api.logs(second["id"])
            if log["message"].startswith("Holding slack-workspace-alpha")
        ],
        30,
        "the second run's slot line",
    )
    waited = float(logs[0].split("(waited ")[1].split(" s")[0])
    assert waited > 1.0, logs
    # the daily run after the backfill continued from alpha's own state: nothing duplicated
    workspace = pool.workspace("alpha")
    rows = query(pool.duckdb_file("alpha"), "SELECT channel_id, ts FROM slack_data_alpha.messages")
    assert (
        len(rows)
        == len(set(rows))
        == len(truth_messages(workspace, readable_channel_ids(workspace)))
    )


def test_revoked_workspace_fails_alone_and_the_parent_names_it(pool: Pool, fanned_out) -> None:
    parent, gamma = fanned_out["parent"], fanned_out["children"]["gamma"]
    assert gamma["state"]["type"] == "FAILED"
    assert "token_revoked" in gamma["state"]["message"]
    assert not pool.duckdb_file("gamma").exists()
    assert parent["state"]["type"] == "FAILED"
    message = parent["state"]["message"]
    assert "Slack workspaces not loaded: gamma (Failed: " in message and "token_revoked" in message
    assert "alpha" not in message and "beta" not in message

    [artifact] = pool.api.artifacts(parent["id"], "slack-workspaces-summary")
    lines = {line.split(" | ")[0].lstrip("| "): line for line in artifact["data"].splitlines()}
    for name in ("alpha", "beta"):
        workspace = pool.workspace(name)
        messages = len(truth_messages(workspace, readable_channel_ids(workspace)))
        users = len(workspace.users())
        assert lines[name].startswith(f"| {name} | Completed | {users} | "), lines[name]
        assert f" | {messages} | " in lines[name]
    assert lines["gamma"].startswith("| gamma | Failed | 0 | 0 | 0 |")
    assert "Not loaded: gamma (Failed: " in artifact["data"]


def test_no_token_in_parameters_logs_or_artifacts(pool: Pool, fanned_out) -> None:
    runs = [fanned_out["parent"], fanned_out["second"], *fanned_out["children"].values()]
    seen = []
    for run in runs:
        seen.append(json.dumps(pool.api.flow_run(run["id"])))
        seen.append(json.dumps(pool.api.logs(run["id"])))
        artifacts = pool.api.post(
            "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}
        )
        assert artifacts or run["id"] == fanned_out["children"]["gamma"]["id"]
        seen.append(json.dumps(artifacts))
    text = "\n".join(seen)
    assert "Holding slack-workspace-" in text  # the logs were read
    for token in TOKENS.values():
        assert token not in text
