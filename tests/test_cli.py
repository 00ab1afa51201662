"""The command line: bad input ends in one clear line and exit code 2, before any work."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "slack_pipeline_with_prefect.py"
GOOD_TOKEN = "xoxb-emulator-token"


def run_cli(*args, env=None, tmp_path=None):
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SOURCES__", "DESTINATION__", "SLACK_PIPELINE__"))
    }
    environment.update(
        {
            "SOURCES__SLACK__API_BASE_URL": "http://127.0.0.1:9/api/",
            "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "cli.duckdb"),
            "SLACK_PIPELINE__PIPELINES_DIR": str(tmp_path / "pipelines"),
        }
    )
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


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
    ({}, ["run", "--workspace", "Acme"], "Bad workspace name 'Acme'"),
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
