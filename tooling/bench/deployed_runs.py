"""A flow run as production starts it (issue #27): the served deployment (`python
slack_pipeline_with_prefect.py`, no command) or a process worker on prefect.yaml's work pool,
both against a running Prefect server.

Each run gets a new serving process (so a new DuckDB file and dlt folder, from its
environment), is created through the server's API once the deployment is ready to take it, and
is timed from its creation to the final state the server reports. Its memory is the highest
`VmHWM` in the serving process's tree (`process_tree.TreeSampler`): the flow run's own
process, which serve starts as a spawned child and the worker as `python -m prefect.engine`
in a session of its own (so it is killed by pid, not with the worker's process group).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from orchestration.prefect_server import stop_process_group

from .common import ROOT
from .process_tree import TreeSampler, descendants, kill_all, memory_kb

DEPLOYED_MODES = ("serve", "worker")
POOL = "slack-pool"  # prefect.yaml's work pool
DEPLOYMENT = "slack_pipeline/slack_pipeline"  # served, or from prefect.yaml: the same name
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
READY_DEADLINE_S = 120.0
RUN_DEADLINE_S = 3600.0
# serve and the worker look for runs every second instead of every 10 (Prefect's default)
POLL_SETTINGS = {"PREFECT_RUNNER_POLL_FREQUENCY": "1", "PREFECT_WORKER_QUERY_SECONDS": "1"}


class PrefectApi:
    """The server's REST API: the few calls a deployed run needs. Retries 429/502/503 as
    Prefect's client does: on a busy machine SQLite's write lock makes the server answer 503."""

    def __init__(self, url: str) -> None:
        self.url, self.session = url, requests.Session()
        retry = Retry(
            total=6, backoff_factor=0.3, status_forcelist=(429, 502, 503), allowed_methods=None
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.session.request(method, f"{self.url}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def deployment(self) -> Dict[str, Any]:
        response = self.session.get(f"{self.url}/deployments/name/{DEPLOYMENT}", timeout=30)
        if response.status_code == 404:
            return {}
        response.raise_for_status()
        return response.json()

    def worker_online(self, name: str) -> bool:
        """Whether worker `name` has sent its first heartbeat (a stopped worker stays ONLINE
        for 90 s, so an earlier run's worker would not do)."""
        workers = self.call("POST", f"/work_pools/{POOL}/workers/filter", {})
        return any(w["name"] == name and w.get("status") == "ONLINE" for w in workers)


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
    worker = f"bench-worker-{log.parent.name}"  # one name per run: see `worker_online`
    if mode == "worker":
        # upserts the deployment of that name (serve's, when serve ran before) onto the pool
        prefect_cli("deploy", "--name", "slack_pipeline", env=env)
        args = [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL]
        args += ["--name", worker]
    else:
        deployment = api.deployment()
        if deployment:  # the worker's (or an earlier serve's): serve registers its own
            api.call("DELETE", f"/deployments/{deployment['id']}")
        args = [sys.executable, "slack_pipeline_with_prefect.py"]
    with log.open("w") as out:
        process = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    children: set = set()
    try:
        with TreeSampler(process.pid) as tree:
            if mode == "worker":
                wait_until(lambda: api.worker_online(worker), process, "the worker online", log)
                deployment = api.deployment()
            else:
                deployment = wait_until(api.deployment, process, "the served deployment", log)
            started = time.perf_counter()
            body = {"parameters": {"start_date": day}}
            created = api.call("POST", f"/deployments/{deployment['id']}/create_flow_run", body)
            run_id = created["id"]

            def final() -> Dict[str, Any]:
                children.update(descendants(process.pid))
                run = api.call("GET", f"/flow_runs/{run_id}")
                return run if run["state"]["type"] in TERMINAL else {}

            run = wait_until(final, process, f"flow run {run_id}", log, RUN_DEADLINE_S)
            wall = time.perf_counter() - started
            # Its process ends after the final state (the completion hooks): sampled to its end,
            # and not stopped half way through them with serve or the worker.
            flow_run = tree.process_peak_pid  # the largest process: the flow run's own
            if flow_run != process.pid:

                def ended() -> bool:
                    return not memory_kb(flow_run)  # gone, or a zombie (no memory lines)

                wait_until(ended, process, "the flow run's process to end", log)
    finally:
        stop_process_group(process)
        kill_all(children - {process.pid})  # a worker's flow run has a session of its own
    if run["state"]["type"] != "COMPLETED":
        raise RuntimeError(f"{mode} run ended {run['state']['type']}; see {log}")
    return {
        "wall_s": round(wall, 2),
        "pipeline_peak_rss_mb": round(tree.process_peak_mb, 1),
        "tree_peak_rss_mb": round(tree.peak_mb, 1),
    }
