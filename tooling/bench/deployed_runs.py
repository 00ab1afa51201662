"""A flow run as production starts it (issue #27): the served deployment (`python
slack_pipeline_with_prefect.py`, no command) or a process worker on prefect.yaml's work pool,
both against a running Prefect server.

Each run gets a new serving process (so a new DuckDB file and dlt folder, from its
environment), is created through the server's API once the deployment is ready to take it, and
is timed from its creation to the final state the server reports. Its memory is the largest
process of the serving process's tree: the flow run's own process, which serve and the worker
start as a child (`process_tree.TreeSampler`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict

import requests

from orchestration.prefect_server import stop_process_group

from .common import ROOT
from .process_tree import TreeSampler

DEPLOYED_MODES = ("serve", "worker")
POOL = "slack-pool"  # prefect.yaml's work pool
DEPLOYMENT = "slack_pipeline/slack_pipeline"  # served, or from prefect.yaml: the same name
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
READY_DEADLINE_S = 120.0
RUN_DEADLINE_S = 3600.0
# serve and the worker look for runs every second instead of every 10 (Prefect's default)
POLL_SETTINGS = {"PREFECT_RUNNER_POLL_FREQUENCY": "1", "PREFECT_WORKER_QUERY_SECONDS": "1"}


class PrefectApi:
    """The server's REST API: the few calls a deployed run needs."""

    def __init__(self, url: str) -> None:
        self.url, self.session = url, requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.url}{path}", timeout=30)

    def post(self, path: str, body: Dict[str, Any]) -> Any:
        response = self.session.post(f"{self.url}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def deployment(self) -> Dict[str, Any]:
        response = self.get(f"/deployments/name/{DEPLOYMENT}")
        return response.json() if response.status_code == 200 else {}

    def online_workers(self) -> int:
        workers = self.post(f"/work_pools/{POOL}/workers/filter", {})
        return sum(1 for worker in workers if worker.get("status") == "ONLINE")


def prefect_cli(*args: str, env: Dict[str, str]) -> None:
    """A `prefect` command from the repository, as prefect.yaml's comments say to run it."""
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", *args],
        cwd=ROOT, env={**env, "PWD": str(ROOT)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode:
        raise RuntimeError(f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}")


def create_pool(env: Dict[str, str]) -> None:
    """prefect.yaml's process work pool (once per server)."""
    prefect_cli("work-pool", "create", POOL, "--type", "process", env=env)


def wait_until(
    check: Callable[[], Any],
    process: subprocess.Popen,
    what: str,
    log: Path,
    deadline_s: float = READY_DEADLINE_S,
) -> Any:
    """The first truthy `check()` while `process` lives."""
    deadline = time.monotonic() + deadline_s
    while not (found := check()):
        if process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited {process.returncode}; see {log}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {deadline_s:.0f} s; see {log}")
        time.sleep(0.2)
    return found


def deployed_run(mode: str, api_url: str, env: Dict[str, str], day: str, log: Path) -> dict:
    """One backfill from `day` by a new `serve` process or worker with environment `env`."""
    api = PrefectApi(api_url)
    env = {**env, **POLL_SETTINGS, "PREFECT_API_URL": api_url}
    if mode == "worker":
        prefect_cli("deploy", "--name", "slack_pipeline", env=env)  # takes the name from serve
        args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL]
    else:
        deployment = api.deployment()
        if deployment:  # the worker's (or an earlier serve's): serve registers its own
            api.session.delete(f"{api_url}/deployments/{deployment['id']}", timeout=30)
        args = [sys.executable, "slack_pipeline_with_prefect.py"]
    with log.open("w") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        with TreeSampler(process.pid) as tree:
            if mode == "worker":
                wait_until(api.online_workers, process, "the worker online", log)
                deployment = api.deployment()
            else:
                deployment = wait_until(api.deployment, process, "the served deployment", log)
            started = time.perf_counter()
            body = {"parameters": {"start_date": day}}
            run_id = api.post(f"/deployments/{deployment['id']}/create_flow_run", body)["id"]

            def final() -> Dict[str, Any]:
                run = api.get(f"/flow_runs/{run_id}").json()
                return run if run["state"]["type"] in TERMINAL else {}

            run = wait_until(final, process, f"flow run {run_id}", log, RUN_DEADLINE_S)
            wall = time.perf_counter() - started
    finally:
        stop_process_group(process)
    if run["state"]["type"] != "COMPLETED":
        raise RuntimeError(f"{mode} run ended {run['state']['type']}; see {log}")
    return {
        "wall_s": round(wall, 2),
        "pipeline_peak_rss_mb": round(tree.process_peak_mb, 1),
        "tree_peak_rss_mb": round(tree.peak_mb, 1),
    }
