"""Token rotation against the emulator's rotating app: a backfill that outlives its token is
exact with the expected refreshes, two runs that hit expiry together refresh once, a restarted
process continues with the stored pair, a rejected refresh is one line and exit 2, and no token,
refresh token or client secret reaches a log, an artifact, a parameter or a table."""

import math
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, Iterable, Tuple

import pendulum
import pytest
import requests

from slack_source import (
    FileTokenStore,
    MemoryTokenStore,
    RotationCredentials,
    RunStats,
    SlackAuthError,
    TokenRotation,
    make_client,
    slack_source,
)
from tests.helpers import (
    SMALL_SPEC,
    TOKEN,
    StartEmulator,
    backfill_start,
    emulator_cli_env,
    latest_artifact,
    loaded_messages,
    make_test_pipeline,
    pipeline_cli,
    poll,
    query,
    readable_channel_ids,
    set_slack_env,
    truth_messages,
)
from tooling.slack_emulator import (
    EmulatorConfig,
    EmulatorServer,
    RotationSpec,
    Workspace,
    WorkspaceSpec,
)

CLIENT_ID = RotationSpec.client_id
CLIENT_SECRET = RotationSpec.client_secret
LIFETIME_CALLS = 10  # a backfill of the small workspace makes ~30 calls: 3 tokens expire in it


def rotating_emulator(start_emulator: StartEmulator, **rotation: Any) -> Tuple[EmulatorServer, str]:
    """The small workspace on an emulator whose app rotates tokens; TOKEN still reaches it
    without rotation. Returns the server and a refresh token of its own (the seed): tests
    share one Prefect server, and a new seed starts a new chain in its store."""
    seed = f"xoxe-1-seed-{uuid.uuid4().hex}"
    tenant = f"xoxe.xoxb-1-seed-{uuid.uuid4().hex}"
    config = EmulatorConfig(
        tokens=(TOKEN, tenant), rotation=RotationSpec(seeds=((seed, tenant),), **rotation)
    )
    return start_emulator(Workspace(WorkspaceSpec(**SMALL_SPEC)), config), seed


def rotation_env(seed: str, **overrides: str) -> Dict[str, str]:
    """The single workspace's rotation settings, as a user sets them (no access token: the
    first run refreshes from the seed)."""
    return {
        "SOURCES__SLACK__REFRESH_TOKEN": seed,
        "SOURCES__SLACK__CLIENT_ID": CLIENT_ID,
        "SOURCES__SLACK__CLIENT_SECRET": CLIENT_SECRET,
        **overrides,
    }


def rotation_of(server: EmulatorServer) -> Dict[str, int]:
    return server.stats()["rotation"]


def assert_no_secret(server: EmulatorServer, texts: Iterable[str]) -> None:
    """None of the app's secrets (every token issued, every refresh token, the client
    secret) in any of `texts`."""
    secrets = server.app.slack.rotation.secrets()
    assert len(secrets) >= 3  # the seed, its workspace's token, the client secret at least
    for text in texts:
        leaked = [secret for secret in secrets if secret in text]
        assert not leaked, f"a secret leaked into: {text[:200]!r}"


def files_under(path: Path) -> Iterable[str]:
    """Every file below `path` as text (DuckDB files and dlt's state included)."""
    for file in path.rglob("*"):
        if file.is_file():
            yield file.read_bytes().decode("latin-1")


def one_error_line(result: Any) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    return lines[0]


# -- the source alone (no Prefect) ---------------------------------------------------------
def bare_backfill(server: EmulatorServer, tmp_path: Path, rotation: Any = None) -> Any:
    """A backfill of the workspace with the dlt source alone; with `rotation`, its token."""
    token = {"access_token": TOKEN} if rotation is None else {
        "access_token": rotation.access_token(), "token_rotation": rotation
    }  # fmt: skip
    source = slack_source(
        api_base_url=server.base_url,
        rate_limit_profile="off",
        start_date=pendulum.parse(backfill_start()),
        stats=RunStats(),
        **token,
    )
    pipeline = make_test_pipeline(tmp_path)
    pipeline.run(source, loader_file_format="parquet").raise_on_failed_jobs()
    return pipeline


def test_bare_source_backfill_through_expiring_tokens_is_exact(start_emulator, tmp_path):
    server, seed = rotating_emulator(start_emulator, token_lifetime_calls=7)
    workspace = server.workspace
    bare_backfill(server, tmp_path / "plain")
    calls = sum(server.request_counts().values())  # today's calls of this backfill
    server.reset_stats()

    credentials = RotationCredentials(CLIENT_ID, CLIENT_SECRET, seed)
    rotation = TokenRotation(MemoryTokenStore(), credentials, server.base_url)
    pipeline = bare_backfill(server, tmp_path / "rotating", rotation)

    truth = truth_messages(workspace, readable_channel_ids(workspace))
    assert loaded_messages(pipeline) == truth
    [(rows,)] = query(pipeline, "SELECT count(*) FROM slack_data.messages")
    assert rows == len(truth)  # none read twice
    stats = rotation_of(server)
    assert stats["expired"] > 0, "the token expired in the middle of the run"
    # each token answers 7 calls: the first from the seed, a new one every 7 calls after
    assert stats["refreshes"] == rotation.refreshes == math.ceil(calls / 7)
    assert stats["rejected"] == 0
    answered = sum(server.request_counts().values()) - stats["expired"] - stats["refreshes"]
    assert answered == calls  # every call answered once with a live token


def test_a_token_near_expiry_is_refreshed_before_use(start_emulator):
    server, seed = rotating_emulator(start_emulator)  # Slack's 12 h
    store = MemoryTokenStore()
    credentials = RotationCredentials(CLIENT_ID, CLIENT_SECRET, seed)
    first = TokenRotation(store, credentials, server.base_url)
    token = first.access_token()
    assert first.access_token() == token and first.refreshes == 1  # fresh: no second refresh
    # 11 h 59 min later: within the margin, so the next client starts with a new token
    store.write({**store.read(), "expires_at": time.time() + 60})
    restarted = TokenRotation(store, credentials, server.base_url)
    fresh = restarted.access_token()
    assert fresh != token and restarted.refreshes == 1
    client = make_client(fresh, server.base_url, token_rotation=restarted)
    assert client.call("auth.test")["ok"]
    assert rotation_of(server) == {"refreshes": 2, "rejected": 0, "expired": 0}


def test_a_token_that_outlives_its_time_is_refreshed_by_the_client(start_emulator):
    server, seed = rotating_emulator(start_emulator, token_lifetime_s=0.5)
    credentials = RotationCredentials(CLIENT_ID, CLIENT_SECRET, seed)
    rotation = TokenRotation(MemoryTokenStore(), credentials, server.base_url)
    token = rotation.access_token()
    client = make_client(token, server.base_url, token_rotation=rotation)
    assert client.call("auth.test")["ok"]

    def expired() -> bool:  # Slack's answer to the old token once its time is up
        answer = requests.post(
            server.base_url + "auth.test", headers={"Authorization": f"Bearer {token}"}
        )
        return answer.json().get("error") == "token_expired"

    poll(expired, 10, "the token to expire")
    assert client.call("auth.test")["ok"]  # the same call, answered after one refresh
    assert rotation.refreshes == 2 and rotation_of(server)["refreshes"] == 2
    assert client.stats.as_dict()["api_calls"]["auth.test"] == 3  # the expired try counted


def test_a_new_seed_starts_a_new_chain_and_a_file_store_survives_a_restart(
    start_emulator, tmp_path
):
    server, seed = rotating_emulator(start_emulator)
    path = tmp_path / "tokens" / "slack.json"
    credentials = RotationCredentials(CLIENT_ID, CLIENT_SECRET, seed)
    token = TokenRotation(FileTokenStore(path), credentials, server.base_url).access_token()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = TokenRotation(FileTokenStore(path), credentials, server.base_url)
    assert again.access_token() == token and again.refreshes == 0  # the stored pair wins
    # the app reinstalled: a new configured refresh token is not overruled by the old chain
    other = RotationCredentials(CLIENT_ID, CLIENT_SECRET, "xoxe-1-reinstalled")
    with pytest.raises(SlackAuthError, match="invalid_refresh_token"):
        TokenRotation(FileTokenStore(path), other, server.base_url).access_token()
    assert "xoxe" not in repr(credentials) + repr(FileTokenStore(path).read().keys())


# -- on Prefect: the Secret block and the concurrency limit ---------------------------------
def test_two_runs_that_hit_expiry_together_make_one_refresh(prefect_harness, start_emulator):
    from orchestration.token_store import PrefectTokenStore

    server, seed = rotating_emulator(start_emulator)
    name = f"slack-token-race-{uuid.uuid4().hex[:8]}"
    credentials = RotationCredentials(CLIENT_ID, CLIENT_SECRET, seed)
    expired = TokenRotation(PrefectTokenStore(name), credentials, server.base_url).access_token()
    # two processes' rotations: they share nothing but the Secret block and the limit
    runs = [TokenRotation(PrefectTokenStore(name), credentials, server.base_url) for _ in "ab"]
    both = threading.Barrier(2)

    def hit_expiry(rotation: TokenRotation) -> str:
        both.wait()
        return rotation.after_expiry(expired)

    with ThreadPoolExecutor(2) as pool:
        tokens = list(pool.map(hit_expiry, runs))
    assert tokens[0] == tokens[1] != expired
    assert sorted(run.refreshes for run in runs) == [0, 1]
    # one from the seed, one for both runs; without the lock the second spends a spent token
    assert rotation_of(server) == {"refreshes": 2, "rejected": 0, "expired": 0}
    assert PrefectTokenStore(name).read()["access_token"] == tokens[0]


def test_flow_backfill_that_outlives_its_token_is_exact_and_leaks_no_secret(
    prefect_harness, start_emulator, monkeypatch, tmp_path
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from slack_pipeline_with_prefect import slack_pipeline

    server, seed = rotating_emulator(start_emulator, token_lifetime_calls=LIFETIME_CALLS)
    workspace = server.workspace
    set_slack_env(monkeypatch, server, tmp_path / "plain")
    slack_pipeline(start_date=backfill_start())  # today's run, without rotation
    calls = sum(server.request_counts().values())
    server.reset_stats()

    set_slack_env(monkeypatch, server, tmp_path / "rotating")
    monkeypatch.delenv("SOURCES__SLACK__ACCESS_TOKEN")
    for key, value in rotation_env(seed).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RUNTIME__LOG_LEVEL", "INFO")  # the refresh lines in the run's log
    summary = slack_pipeline(start_date=backfill_start())

    path = tmp_path / "rotating" / "slack.duckdb"
    truth = truth_messages(workspace, readable_channel_ids(workspace))
    assert loaded_messages(path) == truth
    assert query(str(path), "SELECT count(*) FROM slack_data.messages") == [(len(truth),)]
    stats = rotation_of(server)
    assert stats["expired"] > 0 and stats["rejected"] == 0
    assert stats["refreshes"] == math.ceil(
        calls / LIFETIME_CALLS
    )  # 1 from the seed, then 1 a token
    answered = sum(server.request_counts().values()) - stats["expired"] - stats["refreshes"]
    assert answered == calls

    artifact = latest_artifact("slack-load-summary")
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(artifact.flow_run_id)
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[artifact.flow_run_id]))
        )
    messages = [log.message for log in logs]
    refreshed = sum("Slack token refreshed (single workspace)" in m for m in messages)
    assert refreshed == stats["refreshes"]
    assert any("token expired; retrying with the new one" in m for m in messages)
    assert_no_secret(
        server,
        [artifact.data, repr(run.parameters), repr(summary), *messages, *files_under(tmp_path)],
    )


def test_a_workspace_rotates_in_its_own_block_and_names_its_settings(
    prefect_harness, start_emulator, monkeypatch, tmp_path
):
    from orchestration.prepare import prepare_run
    from orchestration.token_store import PrefectTokenStore

    server, seed = rotating_emulator(start_emulator)
    section = "SLACK_PIPELINE__WORKSPACES__ACME_CO__"
    monkeypatch.setenv("SLACK_PIPELINE__WORKSPACE_NAMES", '["acme_co"]')
    monkeypatch.setenv("SOURCES__SLACK__CLIENT_ID", CLIENT_ID)  # one app: shared credentials
    monkeypatch.setenv("SOURCES__SLACK__CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("SOURCES__SLACK__RATE_LIMIT_PROFILE", "off")
    monkeypatch.setenv(section + "API_BASE_URL", server.base_url)
    monkeypatch.setenv(section + "DUCKDB_FILE", str(tmp_path / "acme.duckdb"))
    monkeypatch.setenv(section + "REFRESH_TOKEN", seed)
    prepared = prepare_run("acme_co")
    assert prepared.access.team_id == server.workspace.team.id
    stored = PrefectTokenStore("slack-token-acme-co").read()
    assert stored["access_token"].startswith("xoxe.xoxb-")
    assert rotation_of(server)["refreshes"] == 1

    monkeypatch.setenv(section + "REFRESH_TOKEN", "xoxe-1-revoked")  # a new chain, rejected
    with pytest.raises(SlackAuthError) as rejected:
        prepare_run("acme_co")
    assert str(rejected.value) == (
        "Slack oauth.v2.access failed: invalid_refresh_token (the refresh token was revoked or"
        f" already used; reinstall the app and set its new refresh token in {section}"
        "REFRESH_TOKEN)"
    )


# -- the command line: a fresh process each run ---------------------------------------------
@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One Prefect home for this module's command-line runs (its database keeps the blocks,
    as the one `run.sh` prepares does)."""
    return tmp_path_factory.mktemp("prefect_home")


def cli_env(server: EmulatorServer, tmp_path: Path, home: Path, **settings: str) -> Dict[str, str]:
    env = emulator_cli_env(
        server,
        tmp_path,
        DESTINATION__DUCKDB__CREDENTIALS=str(tmp_path / "cli.duckdb"),
        PREFECT_HOME=str(home),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",  # as prefect.toml (the runs start elsewhere)
        **settings,
    )
    env.pop("SOURCES__SLACK__ACCESS_TOKEN")
    return env


def test_a_restarted_process_uses_the_stored_pair(start_emulator, tmp_path, prefect_home):
    server, seed = rotating_emulator(start_emulator)
    env = cli_env(server, tmp_path, prefect_home, **rotation_env(seed))
    first = pipeline_cli("run", cwd=tmp_path, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert rotation_of(server) == {"refreshes": 1, "rejected": 0, "expired": 0}
    # a new process: the pair in the Secret block, not the seed (spent: it would be rejected)
    second = pipeline_cli("run", cwd=tmp_path, env=env, timeout=300)
    assert second.returncode == 0, second.stderr
    assert rotation_of(server) == {"refreshes": 1, "rejected": 0, "expired": 0}
    assert server.request_counts()["auth.test"] == 2
    assert_no_secret(server, [first.stdout, first.stderr, second.stdout, second.stderr])


REJECTED = {
    "revoked": (
        {"SOURCES__SLACK__REFRESH_TOKEN": "xoxe-1-revoked-by-reinstall"},
        "oauth.v2.access failed: invalid_refresh_token (the refresh token was revoked or already"
        " used; reinstall the app and set its new refresh token in SOURCES__SLACK__REFRESH_TOKEN)",
    ),
    "secret": (
        {"SOURCES__SLACK__CLIENT_SECRET": "wrong-secret-0123"},
        "oauth.v2.access failed: bad_client_secret (the app's client secret is wrong; check"
        " SOURCES__SLACK__CLIENT_SECRET)",
    ),
    "client_id": (
        {"SOURCES__SLACK__CLIENT_ID": "999.999"},
        "oauth.v2.access failed: invalid_client_id (the app's client id is wrong; check"
        " SOURCES__SLACK__CLIENT_ID)",
    ),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_a_rejected_refresh_is_one_line_exit_2_and_nothing_written(
    case, start_emulator, tmp_path, prefect_home
):
    server, seed = rotating_emulator(start_emulator)
    overrides, expected = REJECTED[case]
    env = cli_env(server, tmp_path, prefect_home, **rotation_env(seed, **overrides))
    result = pipeline_cli("run", cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 2
    assert expected in one_error_line(result)
    assert result.stdout == ""
    assert server.request_counts() == {"oauth.v2.access": 1}  # no auth.test, no load
    assert not (tmp_path / "cli.duckdb").exists()
    assert_no_secret(server, [result.stderr])
    assert not any(value in result.stderr for value in overrides.values())


def test_incomplete_rotation_settings_are_one_line_before_any_call(start_emulator, tmp_path):
    server, seed = rotating_emulator(start_emulator)
    env = cli_env(server, tmp_path, tmp_path / "home", **rotation_env(seed))
    env.pop("SOURCES__SLACK__CLIENT_SECRET")
    result = pipeline_cli("run", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert one_error_line(result) == (
        "error: Token rotation needs SOURCES__SLACK__CLIENT_SECRET (the app's Basic Information"
        " page) next to SOURCES__SLACK__REFRESH_TOKEN"
    )
    assert server.request_counts() == {}
    assert seed not in result.stderr and not os.path.exists(tmp_path / "cli.duckdb")


@pytest.mark.slow
def test_a_rotating_workspace_loads_exactly_through_the_parent_flow_on_a_work_pool(
    tmp_path: Path,
) -> None:
    """The issue's "done when": `prefect deploy --all`, a process pool with a worker, the
    parent deployment fanning out to a workspace whose app rotates its tokens; the child's
    DuckDB file equals the ground truth, one refresh per token lifetime, none rejected, and no
    secret in any parameter, log line or artifact of either run."""
    from orchestration.prefect_server import local_prefect_server
    from tests.helpers import (
        POOL,
        backfill_start,
        deploy_all,
        parent_run_on_pool,
        pool_worker_env,
        query,
    )

    seed = f"xoxe-1-seed-{uuid.uuid4().hex}"
    tenant = f"xoxe.xoxb-1-seed-{uuid.uuid4().hex}"
    workspace = Workspace(WorkspaceSpec(**SMALL_SPEC))
    rotation = RotationSpec(seeds=((seed, tenant),), token_lifetime_calls=LIFETIME_CALLS)
    output = tmp_path / "output"
    output.mkdir()
    prefix = "SLACK_PIPELINE__WORKSPACES__ACME__"
    with (
        EmulatorServer(workspace, EmulatorConfig(tokens=(tenant,), rotation=rotation)) as emulator,
        local_prefect_server(tmp_path / "home") as server,
    ):
        deploy_all(server.client_environment())
        settings = {
            "SLACK_PIPELINE__WORKSPACE_NAMES": '["acme"]',
            f"{prefix}REFRESH_TOKEN": seed,
            f"{prefix}CLIENT_ID": CLIENT_ID,
            f"{prefix}CLIENT_SECRET": CLIENT_SECRET,
            f"{prefix}API_BASE_URL": emulator.base_url,
            f"{prefix}DUCKDB_FILE": str(output / "acme.duckdb"),
            "SOURCES__SLACK__RATE_LIMIT_PROFILE": "off",
        }
        env = pool_worker_env(server.client_environment(), output, **settings)
        parent, children, seen, worker = parent_run_on_pool(
            server.api_url, env, tmp_path, {"start_date": backfill_start()}
        )
        stats = rotation_of(emulator)
        answered = sum(emulator.request_counts().values()) - stats["expired"]
        answered -= stats["refreshes"]
        assert_no_secret(emulator, [seen])
    assert parent["state"]["type"] == "COMPLETED", (parent["state"], worker.tail())
    assert [run["parameters"]["workspace"] for run in children] == ["acme"]
    assert children[0]["state"]["type"] == "COMPLETED" and children[0]["work_pool_name"] == POOL
    rows = query(output / "acme.duckdb", "SELECT channel_id, ts FROM slack_data_acme.messages")
    assert sorted(rows) == sorted(truth_messages(workspace, readable_channel_ids(workspace)))
    assert stats["rejected"] == 0
    assert stats["refreshes"] == math.ceil(answered / LIFETIME_CALLS)  # 1 from the seed, 1 a token
    assert "Slack token refreshed" in seen  # the run's log says so
