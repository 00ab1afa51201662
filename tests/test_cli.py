"""The command line: bad input ends in one clear line and exit code 2, before any work; the
shipped configuration runs as the README says."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import (
    ROOT,
    emulator_cli_env,
    loaded_messages,
    pipeline_cli,
    query,
    readable_channel_ids,
    run_cli,
    truth_messages,
)

GOOD_TOKEN = "xoxb-emulator-token"


CASES = [
    ({}, ["run"], "No Slack token"),
    ({"SOURCES__SLACK__ACCESS_TOKEN": "hunter2"}, ["run"], "Malformed Slack token"),
    (
        {"SOURCES__SLACK__ACCESS_TOKEN": GOOD_TOKEN},
        ["run", "--start-date", "last tuesday"],
        "Cannot parse start_date 'last tuesday'",
    ),
    (
        {"SOURCES__SLACK__ACCESS_TOKEN": GOOD_TOKEN},
        ["run", "--start-date", "2999-01-01"],
        "start_date 2999-01-01 is in the future",
    ),
    (
        {"SOURCES__SLACK__ACCESS_TOKEN": GOOD_TOKEN},
        ["run", "--start-date", "2026-02-01", "--end-date", "2026-01-01"],
        "end_date 2026-01-01 is not after start_date 2026-02-01",
    ),
    (
        {"SOURCES__SLACK__ACCESS_TOKEN": GOOD_TOKEN, "SLACK_PIPELINE__DESTINATION": "snowflake"},
        ["run"],
        "Unknown destination 'snowflake'",
    ),
    (
        {"SOURCES__SLACK__ACCESS_TOKEN": GOOD_TOKEN, "SLACK_PIPELINE__CHANNELS_PER_LOAD": "many"},
        ["run"],
        "Bad setting slack_pipeline.channels_per_load: cannot read 'many' as int",
    ),
    (
        {
            "SOURCES__SLACK__ACCESS_TOKEN": GOOD_TOKEN,
            "SLACK_PIPELINE__DESTINATION": "bigquery",
            "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json",
        },
        ["run"],
        "GOOGLE_APPLICATION_CREDENTIALS points to a missing file",
    ),
    (
        {"SOURCES__SLACK__ACCESS_TOKEN": GOOD_TOKEN},
        ["run", "--lookback-days", "-3"],
        "Bad lookback_days -3.0: a number of days, 0 or more",
    ),
    (
        {"SOURCES__SLACK__ACCESS_TOKEN": GOOD_TOKEN},
        ["run", "--lookback-days", "nan"],
        "Bad lookback_days nan: a number of days, 0 or more",
    ),
    ({}, ["run", "--workspace", "Acme"], "Bad workspace name 'Acme'"),
    (
        {"SOURCES__SLACK__ACCESS_TOKEN": GOOD_TOKEN, "SOURCES__SLACK__API_BASE_URL": ""},
        ["run"],
        "sources.slack.api_base_url must be an http(s) URL such as https://slack.com/api/, not ''",
    ),
    ({}, ["run", "--workspace", "acme"], "No Slack token for workspace acme: set"),
    (
        {"SLACK_PIPELINE__WORKSPACES__ACME__ACCESS_TOKEN": "hunter2"},
        ["run", "--workspace", "acme"],
        "Malformed Slack token for workspace acme",
    ),
]


@pytest.mark.parametrize("env,args,message", CASES)
def test_bad_input_is_one_line_and_exit_2(env, args, message, tmp_path):
    result = run_cli(*args, env=env, tmp_path=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [f"error: {lines[0][7:]}"] and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "cli.duckdb").exists()
    assert "hunter2" not in result.stderr + result.stdout


@pytest.mark.slow
def test_run_with_the_shipped_config_loads_into_slack_duckdb_in_the_working_folder(
    emulator, tmp_path
):
    """No DuckDB file configured anywhere, the repository's .dlt/config.toml (which sets
    `[destination.duckdb.credentials]` options): the run loads into `slack.duckdb` in the working
    folder, as the README's settings table says, and `check` names that file. Also from a second
    folder with the same pipeline state (a worker's folder): dlt alone would load into the
    first folder's file."""
    workspace, server = emulator
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        (folder / ".dlt").mkdir(parents=True)
        shutil.copy(ROOT / ".dlt" / "config.toml", folder / ".dlt" / "config.toml")
        shutil.copy(ROOT / "prefect.toml", folder / "prefect.toml")
    environment = emulator_cli_env(server, tmp_path)

    def cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
        return pipeline_cli(*args, cwd=folder, env=environment, timeout=300)

    checked = cli(first, "check")
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert f"Destination:   duckdb: {first / 'slack.duckdb'}, dataset slack_data" in checked.stdout
    server.reset_stats()
    ran = cli(first, "run", "--start-date", "2020-01-01")
    assert ran.returncode == 0, ran.stderr[-2000:]
    # One pre-flight a run: the command line's check is handed to the flow, not repeated.
    assert server.request_counts()["auth.test"] == 1
    assert "cannot hold secret values" not in ran.stdout + ran.stderr
    loaded = loaded_messages(first / "slack.duckdb")
    assert set(loaded) == set(truth_messages(workspace, readable_channel_ids(workspace)))
    checked = cli(second, "check")
    assert f"Destination:   duckdb: {second / 'slack.duckdb'}, dataset slack_data" in checked.stdout
    ran = cli(second, "run")
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert query(second / "slack.duckdb", "SELECT count(*) FROM slack_data.channels")[0][0] > 0
    assert loaded_messages(first / "slack.duckdb") == loaded


def test_a_one_off_run_sends_no_heartbeats_unless_the_environment_asks(
    prefect_harness, monkeypatch
):
    """The flow's end waits up to a second for Prefect's heartbeat thread
    (orchestration/heartbeats.py): a one-off run turns it off, an explicit setting wins."""
    from prefect import flow
    from prefect.settings import get_current_settings

    from orchestration.cli import run_flow

    @flow
    def heartbeat_setting() -> object:
        return get_current_settings().flows.heartbeat_frequency

    for name in ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY"):
        monkeypatch.delenv(name, raising=False)
    assert run_flow(heartbeat_setting) is None
    assert get_current_settings().flows.heartbeat_frequency is not None  # only inside the run

    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")
    assert run_flow(heartbeat_setting) == get_current_settings().flows.heartbeat_frequency
