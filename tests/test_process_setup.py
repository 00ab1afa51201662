"""What a run's process sets up for itself, however it was started: the allocator settings
(orchestration/memory.py) and, for a one-off command, Prefect's API before the imports
(orchestration/one_off_api.py)."""

import json
import os
import subprocess
import sys

import pytest

from orchestration import one_off_api
from tests.helpers import ROOT, clean_environment, emulator_cli

PROBE = (
    "import json, pyarrow, slack_pipeline_with_prefect\n"
    "from orchestration.memory import tune_allocators\n"
    "print(json.dumps({'pool': pyarrow.default_memory_pool().backend_name,"
    " 'again': tune_allocators()}))\n"
)


def probe(code: str = PROBE, *args: str, **env: str) -> dict:
    """Run `code` (by default: import the flow file) in a fresh interpreter without run.sh's
    environment; the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_flow_file_applies_the_allocator_settings_without_a_wrapper():
    plain = probe()
    assert plain["pool"] == "system"  # Arrow's system allocator, not jemalloc/mimalloc
    # glibc accepted both settings (mallopt returned 1): 2 arenas, a fixed mmap threshold
    assert plain["again"] == {
        "MALLOC_ARENA_MAX": "2",
        "MALLOC_MMAP_THRESHOLD_": "131072",
        "ARROW_DEFAULT_MEMORY_POOL": "system",
    }


def test_settings_from_the_environment_win():
    mine = probe(MALLOC_ARENA_MAX="4", ARROW_DEFAULT_MEMORY_POOL="jemalloc")
    assert mine["again"] == {"MALLOC_MMAP_THRESHOLD_": "131072"}
    assert mine["pool"] == "jemalloc"


PANDAS_PROBE = (
    "import json, sys, dlt, slack_pipeline_with_prefect\n"
    "from slack_source.arrow_pages import rows_to_table\n"
    "rows = [{'ts': '1.000001', 'reactions': [{'name': 'x'}]}]\n"
    "page = rows_to_table(rows, frozenset(['reactions']))\n"
    "where = sys.argv[1]\n"
    "duckdb = dlt.destinations.duckdb(where + '/p.duckdb')\n"
    "pipeline = dlt.pipeline('p', pipelines_dir=where, destination=duckdb)\n"
    "info = pipeline.run([page], table_name='messages')\n"
    "before = 'pandas' in sys.modules\n"
    "frame = page.to_pandas()\n"
    "print(json.dumps({'loaded': not info.has_failed_jobs, 'pandas_before': before,"
    " 'frame': frame.shape[0]}))\n"
)


def test_arrow_pages_and_a_load_leave_pandas_unimported_until_asked_for(tmp_path):
    """pyarrow's first `pa.array` would import pandas (31-41 MB) only to probe for it."""
    result = probe(PANDAS_PROBE, str(tmp_path))
    assert result == {"loaded": True, "pandas_before": False, "frame": 1}


@pytest.mark.parametrize(
    "argv, env",
    [
        (["slack_pipeline_with_prefect.py", "check"], {}),
        (["slack_pipeline_with_prefect.py", "serve"], {}),
        (["slack_pipeline_with_prefect.py", "run", "--help"], {}),
        (["slack_pipeline_with_prefect.py"], {}),
        (["pytest", "run"], {}),
        (["slack_pipeline_with_prefect.py", "run"], {"PREFECT_API_URL": "http://x/api"}),
    ],
)
def test_only_a_one_off_command_without_a_server_starts_one(argv, env, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert one_off_api.start_one_off_api(argv) is None
    assert one_off_api.wait_for_one_off_api() is None


def servers_on(home) -> list:
    """Processes whose command line or environment names `home` (a Prefect server on it)."""
    found = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if f"PREFECT_HOME={home}".encode() in environ.read():
                    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                        if b"server" in cmdline.read():
                            found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_a_one_off_run_starts_its_api_first_and_stops_it(emulator, tmp_path):
    """On a prepared Prefect home (what run.sh leaves), `run` starts the API itself before the
    imports: no temporary server of Prefect's, the run recorded in that home's log, and no
    server left behind once the command has ended."""
    from orchestration.prefect_server import prepare_home

    workspace, server = emulator
    home = tmp_path / "prefect"
    prepare_home(home)
    done = emulator_cli(
        server, tmp_path, "run", "--start-date", "2020-01-01", PREFECT_HOME=str(home)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Starting temporary server" not in done.stdout + done.stderr
    assert "Slack load: finished in " in done.stdout
    assert (home / "one_off_server.log").stat().st_size > 0
    assert servers_on(home) == []


FAST_EXIT_PROBE = """
import atexit, sys
import orchestration.fast_exit as fast_exit
fast_exit.arm()  # first, as the flow file does: runs after the handlers below
atexit.register(lambda: print("exit-time handler ran"))
class Teardown:
    def __del__(self):
        print("teardown ran")
kept = Teardown()
print("report", end="")  # a last line without a newline: flushed all the same
if sys.argv[1] == "finished":
    fast_exit.finished()
"""


@pytest.mark.parametrize("outcome", ["finished", "not finished"])
def test_a_finished_one_off_command_skips_the_teardown_but_not_the_exit_handlers(outcome):
    """`fast_exit`: after a finished command the exit-time handlers (Prefect's, the one-off
    API's stop) still run and the output is complete, but Python's teardown is skipped; any
    other end (a failure) goes through the usual teardown."""
    done = subprocess.run(
        [sys.executable, "-c", FAST_EXIT_PROBE, outcome],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("reportexit-time handler ran\n")
    assert ("teardown ran" in done.stdout) == (outcome == "not finished")
