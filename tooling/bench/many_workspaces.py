"""Many workspaces on a work pool: three workspaces under Slack's tiers (compressed in time),
loaded by the parent flow onto 1, 2 and 3 process workers, against each workspace alone.

    python -m tooling.bench.many_workspaces [--messages 16000 --threads 800 --time-scale 0.05]

A real `prefect server` on loopback, the child deployment from prefect.yaml, workers started
with `--limit 1` (one flow run at a time each, so N workers = N loads at once) and the parent
run as `python slack_workspaces_with_prefect.py` (it waits on this machine, the children run
on the workers). Every scenario is a backfill into fresh DuckDB files and dlt folders.

Slack's limits are per app and per workspace, so each workspace is bound by its own tiers: with
a worker per workspace the wall should be the slowest workspace's (target <= 1.15 x), with one
worker the sum. Wall = the parent flow run's start to end as the server recorded it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List

from orchestration.prefect_server import local_prefect_server, stop_process_group

from .common import (
    ROOT,
    Emulator,
    add_workspace_arguments,
    days_ago,
    temp_dir,
    tiers_emulator,
    write_result,
)
from .deployed_runs import PrefectApi, prefect_cli

POOL = "bench-pool"
NAMES = ("alpha", "beta", "gamma")


def token(name: str) -> str:
    return f"xoxb-bench-{name}"


def workspace_env(base_url: str, output: Path, minute_s: float) -> Dict[str, str]:
    """The three workspaces as a worker's (and the parent's) configuration."""
    env = {
        "SLACK_PIPELINE__WORKSPACE_NAMES": json.dumps(list(NAMES)),
        "SLACK_PIPELINE__PIPELINES_DIR": str(output / "pipelines"),
        "SOURCES__SLACK__RATE_LIMIT_PROFILE": "tiers",
        "SOURCES__SLACK__RATE_LIMIT_MINUTE_SECONDS": str(minute_s),
        "SOURCES__SLACK__JOIN_PUBLIC_CHANNELS": "false",
        "RUNTIME__LOG_LEVEL": "WARNING",
        "DLT_DATA_DIR": str(output / "dlt"),
    }
    for name in NAMES:
        section = f"SLACK_PIPELINE__WORKSPACES__{name.upper()}__"
        env[section + "ACCESS_TOKEN"] = token(name)
        env[section + "API_BASE_URL"] = base_url
        env[section + "DUCKDB_FILE"] = str(output / f"{name}.duckdb")
    return env


class Bench:
    def __init__(self, server: Any, emulator: Emulator, tmp: Path, minute_s: float) -> None:
        self.server = server
        self.emulator = emulator
        self.tmp = tmp
        self.minute_s = minute_s
        self.api = PrefectApi(server.api_url)
        self.runs = 0

    def base_env(self) -> Dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(self.tmp)),
            **self.server.client_environment(),
            "PREFECT_CLI_PROMPT": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        }

    def prefect(self, *args: str) -> None:
        prefect_cli(*args, env=self.base_env())

    def post(self, path: str, body: Dict[str, Any]) -> Any:
        return self.api.call("POST", path, body)

    def online_workers(self) -> int:
        workers = self.post(f"/work_pools/{POOL}/workers/filter", {})
        return sum(1 for worker in workers if worker.get("status") == "ONLINE")

    def scenario(self, workers: int, names: List[str]) -> Dict[str, Any]:
        """Fresh destinations, `workers` workers of one slot each, one parent run."""
        self.runs += 1
        output = self.tmp / f"run{self.runs}"
        output.mkdir()
        env = {**self.base_env(), **workspace_env(self.emulator.base_url, output, self.minute_s)}
        logs = open(output / "workers.log", "wb")
        started_workers = [
            subprocess.Popen(
                [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL]
                + ["--limit", "1", "--name", f"run{self.runs}-worker{i}"],
                env=env,
                cwd=output,
                stdout=logs,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            for i in range(workers)
        ]
        try:
            deadline = time.monotonic() + 120
            while self.online_workers() < workers:
                if time.monotonic() > deadline:
                    raise RuntimeError("workers did not come online")
                time.sleep(0.5)
            self.emulator.remote().reset_stats(rate_limits=True)
            parent = subprocess.run(
                [sys.executable, "slack_workspaces_with_prefect.py", "--workspaces"]
                + [",".join(names), "--start-date", days_ago(40).strftime("%Y-%m-%d")],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600,
            )  # fmt: skip
            if parent.returncode:
                raise RuntimeError(f"parent run failed:\n{parent.stdout}\n{parent.stderr}")
        finally:
            for process in started_workers:
                stop_process_group(process)
            logs.close()
        return self.measure(names, self.emulator.remote().stats())

    def measure(self, names: List[str], emulator_stats: Dict[str, Any]) -> Dict[str, Any]:
        """The parent run just finished (the newest): its wall and its children's spans."""
        [parent] = self.post(
            "/flow_runs/filter",
            {
                "flows": {"name": {"any_": ["slack_workspaces"]}},
                "sort": "START_TIME_DESC",
                "limit": 1,
            },
        )
        children = self.post(
            "/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [parent["id"]]}}}
        )
        assert sorted(c["parameters"]["workspace"] for c in children) == sorted(names)
        assert all(c["state_type"] == "COMPLETED" for c in children), children
        return {
            "wall_s": round(parent["total_run_time"], 2),
            "children_s": {
                c["parameters"]["workspace"]: round(c["total_run_time"], 2) for c in children
            },
            "429s": sum(emulator_stats.get("ratelimited", {}).values()),
            "calls": sum(emulator_stats.get("requests", {}).values()),
        }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser()
    add_workspace_arguments(parser, messages=16000, threads=800, time_scale=0.05)
    parser.add_argument("--name", default="many_workspaces")
    args = parser.parse_args(argv)
    minute_s = 60 * args.time_scale
    seeds = enumerate(NAMES, start=41)
    emulator = tiers_emulator(args, workspace=[f"{token(name)}:{seed}" for seed, name in seeds])
    with emulator, temp_dir("workspaces") as tmp_name:
        tmp = Path(tmp_name)
        with local_prefect_server(tmp / "prefect_home") as server:
            bench = Bench(server, emulator, tmp, minute_s)
            bench.prefect("work-pool", "create", POOL, "--type", "process")
            bench.prefect("deploy", "--name", "slack_workspace", "--pool", POOL)
            alone = {name: bench.scenario(1, [name]) for name in NAMES}
            together = {n: bench.scenario(n, list(NAMES)) for n in (1, 2, 3)}
    slowest = max(run["wall_s"] for run in alone.values())
    total = sum(run["wall_s"] for run in alone.values())
    result: Dict[str, Any] = {
        "messages_per_workspace": args.messages,
        "threads_per_workspace": args.threads,
        "channels_per_workspace": args.channels,
        "time_scale": args.time_scale,
        "slowest_alone_s": slowest,
        "sum_alone_s": round(total, 2),
    }
    for name, run in alone.items():
        result[f"alone_{name}_s"] = run["wall_s"]
        result[f"alone_{name}_child_s"] = run["children_s"][name]
    for n, run in together.items():
        result[f"wall_{n}_workers_s"] = run["wall_s"]
        result[f"wall_{n}_workers_over_slowest"] = round(run["wall_s"] / slowest, 3)
        result[f"wall_{n}_workers_over_sum"] = round(run["wall_s"] / total, 3)
        result[f"429s_{n}_workers"] = run["429s"]
        result[f"children_{n}_workers_s"] = run["children_s"]
    walls = ", ".join(f"{name} {run['wall_s']:.1f} s" for name, run in alone.items())
    print(f"alone: {walls}")
    for n, run in together.items():
        print(
            f"{n} worker(s): {run['wall_s']:.1f} s = {run['wall_s'] / slowest:.2f} x slowest"
            f" alone, {run['wall_s'] / total:.2f} x the sum; 429s {run['429s']}"
        )
    write_result(args.name, result)
    return result


if __name__ == "__main__":
    main()
