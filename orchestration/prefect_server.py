"""A local `prefect server` on 127.0.0.1 with its own home: `run.sh` prepares a new home with
it once (`prepare-home`: the first start migrates the database, ~12 s a first one-off run would
otherwise spend in its own wall), and the demo, the tests and the benchmarks start one.

The same server a user starts with `prefect server start`, run as a child process, so that a
caller can point flows, workers and automations at it and read the results back from its API.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional

import requests

STARTUP_DEADLINE_SECONDS = 120.0
# A server for one flow run (the demo): the services that record it stay on (task runs, events,
# logs), the ones that act on schedules, workers, leases and automations are off. They only
# slow its start-up (~0.5-1 s of ~5), and the scheduler would schedule the deployments of the
# home's database meanwhile.
ONE_RUN_SERVICES_OFF = (
    "scheduler",
    "late_runs",
    "foreman",
    "cancellation_cleanup",
    "pause_expirations",
    "repossessor",
    "cleanup_reconciler",
    "db_vacuum",
    "triggers",
)
ONE_RUN_SERVER_SETTINGS = {
    f"PREFECT_SERVER_SERVICES_{name.upper()}_ENABLED": "false" for name in ONE_RUN_SERVICES_OFF
}
# The repository: the server reads its settings (prefect.toml) from there.
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalPrefectServer:
    """Where the server answers, and the environment a client process needs to use it."""

    port: int
    home: Path
    process: subprocess.Popen

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.ui_url}/api"

    def client_environment(self) -> Dict[str, str]:
        """Environment for a process (flow, worker, CLI) that should talk to this server."""
        return {"PREFECT_API_URL": self.api_url, "PREFECT_HOME": str(self.home)}


def wait_until_healthy(api_url: str, process: subprocess.Popen, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prefect server exited with code {process.returncode}")
        try:
            if requests.get(f"{api_url}/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"prefect server at {api_url} not healthy after {deadline_s:.0f} s")


def start_prefect_server(
    home: Path,
    port: Optional[int] = None,
    log_path: Optional[Path] = None,
    extra_env: Optional[Dict[str, str]] = None,
) -> LocalPrefectServer:
    """Start `prefect server start` on a free loopback port with SQLite under `home` and return
    at once (it answers 5-8 s later: `wait_until_healthy`), so the caller can do its own
    start-up meanwhile. `extra_env` holds server settings (e.g. a shorter proactive automation
    granularity for tests)."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        **(extra_env or {}),
    }
    with open(log_path or home / "server.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
            + ["--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return LocalPrefectServer(port=port, home=home, process=process)


@contextmanager
def local_prefect_server(
    home: Path,
    port: Optional[int] = None,
    log_path: Optional[Path] = None,
    extra_env: Optional[Dict[str, str]] = None,
) -> Iterator[LocalPrefectServer]:
    """A started and healthy server (see `start_prefect_server`); stopped, with its children,
    on exit."""
    server = start_prefect_server(home, port, log_path, extra_env)
    try:
        wait_until_healthy(server.api_url, server.process, STARTUP_DEADLINE_SECONDS)
        yield server
    finally:
        stop_process_group(server.process)


def stop_process_group(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM the child's whole session (servers and workers spawn children), then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=grace_s)


def is_prepared(home: Path) -> bool:
    """Whether `prepare_home` ran on `home` (what run.sh checks before preparing it)."""
    return (home / "prefect.db").is_file() and (home / "memo_store.toml").is_file()


def prepare_home(home: Path) -> None:
    """Start and stop a server once on `home`: its first start migrates the SQLite database and
    registers Prefect's block types (memoized in the home), ~12 s that the first demo or one-off
    run would otherwise spend inside its own wall. `run.sh` calls it at set-up."""
    with local_prefect_server(
        home, log_path=home / "server.log", extra_env=ONE_RUN_SERVER_SETTINGS
    ):
        pass


if __name__ == "__main__":  # python -m orchestration.prefect_server prepare-home PATH
    if len(sys.argv) != 3 or sys.argv[1] != "prepare-home":
        sys.exit("usage: python -m orchestration.prefect_server prepare-home PREFECT_HOME")
    prepare_home(Path(sys.argv[2]))
