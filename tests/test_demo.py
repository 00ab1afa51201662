"""The README's first command: `./run.sh demo` (= `python -m demo`) loads the emulated workspace
exactly, reports it, and a second demo into the same folder reports the same counts."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATASET, query

ROOT = Path(__file__).resolve().parents[1]
FOREIGN = ("PREFECT_", "SOURCES__", "DESTINATION__", "SLACK_PIPELINE__")


def run_demo(tmp_path: Path, output: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    env["PREFECT_HOME"] = str(tmp_path / "prefect_home")  # not the developer's ~/.prefect
    return subprocess.run(
        [sys.executable, "-m", "demo", "--messages", "600", "--output", str(output)],
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
        database = output / "slack_demo.duckdb"
        assert query(database, f"SELECT COUNT(*) FROM {DATASET}.messages")[0][0] == 600
