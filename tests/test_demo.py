"""The README's first command: `./run.sh demo` (`python -m tooling.demo`) loads the emulated
workspace
exactly, reports it, and a second demo into the same folder reports the same counts."""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from orchestration.prefect_server import local_prefect_server
from tests.helpers import DATASET, ROOT, query

FOREIGN = ("PREFECT_", "SOURCES__", "DESTINATION__", "SLACK_PIPELINE__")


def run_demo(tmp_path: Path, output: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    env["PREFECT_HOME"] = str(tmp_path / "prefect_home")  # not the developer's ~/.prefect
    return subprocess.run(
        [sys.executable, "-m", "tooling.demo", "--messages", "600", "--output", str(output)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow
def test_demo_loads_the_workspace_and_reports_it(tmp_path: Path) -> None:
    output = tmp_path / "demo_output"
    for attempt in (1, 2):  # the second run starts from an empty database again
        done = run_demo(tmp_path, output)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Traceback" not in done.stdout + done.stderr
        assert "All connection attempts failed" not in done.stdout + done.stderr
        assert re.search(r"messages\s+600 rows", done.stdout), (attempt, done.stdout)
        assert "(the emulated workspace holds 600 messages)" in done.stdout
        assert "whole demo, Prefect's start-up included" in done.stdout
        # dlt's progress goes to the run logs (dlt's logger), not onto the console
        assert "Extract slack" not in done.stdout + done.stderr
        # every field of users and channels has a type: no dlt warning block about one
        assert "could not have their types inferred" not in done.stdout + done.stderr
        database = output / "slack_demo.duckdb"
        assert query(database, f"SELECT COUNT(*) FROM {DATASET}.messages")[0][0] == 600
    assert_runs_recorded(tmp_path / "prefect_home", flow_runs=2)


@pytest.mark.slow
def test_run_sh_demo_prepares_the_prefect_home_once(tmp_path: Path) -> None:
    """`./run.sh demo`, the README's first command: on a new Prefect home the set-up starts a
    server once (migrations, block types) before the demo, and only the first time."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    home = tmp_path / "prefect_home"
    env["PREFECT_HOME"] = str(home)
    command = ["bash", str(ROOT / "run.sh"), "demo", "--messages", "300", "--output"]
    outputs = []
    for attempt in (1, 2):
        done = subprocess.run(
            [*command, str(tmp_path / f"out{attempt}")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        assert re.search(r"messages\s+300 rows", done.stdout), done.stdout
        outputs.append(done.stderr)
    assert "Preparing Prefect's database" in outputs[0]
    assert "Preparing Prefect's database" not in outputs[1]
    assert (home / "prefect.db").exists() and (home / "memo_store.toml").exists()


@pytest.mark.slow
def test_demo_with_a_bad_date_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    env["PREFECT_HOME"] = str(tmp_path / "prefect_home")
    done = subprocess.run(
        [sys.executable, "-m", "tooling.demo", "--start-date", "not-a-date",
         "--output", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: Cannot parse start_date 'not-a-date': use YYYY-MM-DD or an ISO 8601 timestamp"
    ]
    assert "Traceback" not in done.stdout + done.stderr


def assert_runs_recorded(home: Path, flow_runs: int) -> None:
    """What `prefect server start` shows afterwards: the demo's server ran without the services
    a one-off run does not need (ONE_RUN_SERVICES_OFF); its runs, task runs and summaries must
    still be all there."""
    with local_prefect_server(home) as server:
        runs = api(server, "/flow_runs/filter", {})
        assert sorted(r["state_type"] for r in runs) == ["COMPLETED"] * flow_runs
        for run in runs:
            tasks = api(server, "/task_runs/filter", {"flow_runs": {"id": {"any_": [run["id"]]}}})
            names = sorted(t["name"].rsplit("-", 1)[0] for t in tasks)
            assert names == ["get_channel_history", "get_channels", "get_users"], names
            assert {t["state_type"] for t in tasks} == {"COMPLETED"}
            body = {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}
            assert [a["key"] for a in api(server, "/artifacts/filter", body)]


def api(server: Any, path: str, body: dict) -> list:
    response = requests.post(server.api_url + path, json=body, timeout=30)
    response.raise_for_status()
    return response.json()
