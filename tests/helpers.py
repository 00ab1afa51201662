"""What the tests share besides fixtures: the emulated workspace's token and sizes, test pipelines
and what they loaded, the ground truth to compare with, a deterministic outage, the command
line, a flow run's task runs, and the REST API and children of a real Prefect server.

Fixtures are in conftest.py. Test modules import from here, never from conftest or each other.
"""

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union
from urllib.parse import parse_qs

import dlt
import duckdb
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from orchestration.prefect_server import stop_process_group
from slack_source import RunStats, slack_source
from tooling.slack_emulator import EmulatorConfig, EmulatorServer, Workspace, WorkspaceSpec

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "slack_pipeline_with_prefect.py"
TOKEN = "xoxb-emulator-token"
DATASET = "slack_data"

SMALL_SPEC = dict(
    seed=11,
    users=10,
    channels=5,
    private_channels=1,
    archived_channels=1,
    messages=800,
    threads=40,
    days=30,
    non_member_channels=1,
)
THREADED_SPEC = dict(SMALL_SPEC, messages=1600, threads=120)
LOOKBACK_DAYS = 7  # the daily run's lookback in the tests that compare runs

# Environment variables of this project's settings (dlt reads `<SECTION>__<KEY>`).
PROJECT_SETTINGS = ("SOURCES__", "DESTINATION__", "SLACK_PIPELINE__")


def backfill_start() -> str:
    """A start date before the emulated workspace's first message (it spans 30 days)."""
    return (datetime.now(timezone.utc) - timedelta(days=40)).strftime("%Y-%m-%d")


def backfill_date() -> datetime:
    """`backfill_start` as the source's `start_date` (a UTC datetime)."""
    return datetime.strptime(backfill_start(), "%Y-%m-%d").replace(tzinfo=timezone.utc)


# -- the emulator ----------------------------------------------------------------------------
Served = Union[None, Dict[str, Any], Workspace, Mapping[str, Workspace]]
StartEmulator = Callable[..., EmulatorServer]  # the `start_emulator` fixture


def emulator_server(
    served: Served = None, config: Optional[EmulatorConfig] = None, **options: Any
) -> EmulatorServer:
    """An emulator, not started yet (the `start_emulator` fixture starts it for a test, a `with`
    block for a wider scope). `served`: WorkspaceSpec fields (SMALL_SPEC by default), a
    Workspace, or token -> Workspace. `config`, or EmulatorConfig fields in `options` for an
    emulator that answers TOKEN."""
    if served is None:
        served = Workspace(WorkspaceSpec(**SMALL_SPEC))
    elif not isinstance(served, Workspace) and not (
        served and all(isinstance(w, Workspace) for w in served.values())
    ):
        served = Workspace(WorkspaceSpec(**served))
    if config is None:
        config = EmulatorConfig(tokens=(TOKEN,), **options)
    elif options:
        raise TypeError(f"either config or EmulatorConfig fields, not both: {sorted(options)}")
    return EmulatorServer(served, config)


def set_slack_env(
    monkeypatch: Any, server: EmulatorServer, tmp_path: Path, token: str = TOKEN
) -> None:
    """Point dlt config (env) at the emulator, unpaced, and at a fresh DuckDB file and
    pipelines folder under `tmp_path`, as a user configures a run."""
    monkeypatch.setenv("SOURCES__SLACK__ACCESS_TOKEN", token)
    monkeypatch.setenv("SOURCES__SLACK__API_BASE_URL", server.base_url)
    monkeypatch.setenv("SOURCES__SLACK__RATE_LIMIT_PROFILE", "off")
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "slack.duckdb"))
    monkeypatch.setenv("SLACK_PIPELINE__PIPELINES_DIR", str(tmp_path / "pipelines"))


class Outage:
    """ASGI wrapper around the emulator's Slack app: answers HTTP 503 to the first `times`
    requests of `method` whose query has every `match` argument, then lets requests through.

    FaultSpec draws are per request number, so a run that fails and is retried would see
    different faults; this outage is keyed on the request itself and ends deterministically.
    """

    def __init__(
        self, server: EmulatorServer, method: str, times: int, match: Dict[str, str]
    ) -> None:
        self.app = server.app.slack
        self.path = f"/api/{method}"
        self.left = times
        self.match = match
        self.failed = 0
        server.app.slack = self  # type: ignore[assignment]

    def _matches(self, scope: Dict[str, Any]) -> bool:
        if scope["path"] != self.path:
            return False
        args = parse_qs(scope.get("query_string", b"").decode())
        return all(args.get(key) == [value] for key, value in self.match.items())

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if self.left > 0 and self._matches(scope):
            self.left -= 1
            self.failed += 1
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"0")]
            await send({"type": "http.response.start", "status": 503, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


# -- pipelines and what they loaded ----------------------------------------------------------
def make_test_pipeline(tmp_path: Path, name: str = "slack_test") -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(tmp_path / "slack.duckdb")),
        dataset_name=DATASET,
        pipelines_dir=str(tmp_path / "pipelines"),
    )


def load_source(
    pipeline: dlt.Pipeline, server: EmulatorServer, **kwargs: Any
) -> Tuple[RunStats, Dict[str, int]]:
    """Build the `slack` source against the emulator (unpaced unless `rate_limit_profile` is
    given) and run it into `pipeline` as the flow does (parquet for DuckDB); return the run's
    stats and the emulator's request counts of this run alone."""
    stats = RunStats()
    server.reset_stats()
    kwargs.setdefault("rate_limit_profile", "off")
    source = slack_source(access_token=TOKEN, api_base_url=server.base_url, stats=stats, **kwargs)
    pipeline.run(source, loader_file_format="parquet").raise_on_failed_jobs()
    return stats, server.request_counts()


def load_daily(
    pipeline: dlt.Pipeline, server: EmulatorServer, start_date: Any = None, **kwargs: Any
) -> Tuple[RunStats, Dict[str, int]]:
    """`load_source` as the daily run reads: LOOKBACK_DAYS back from each channel's newest."""
    return load_source(
        pipeline, server, start_date=start_date, lookback_days=LOOKBACK_DAYS, **kwargs
    )


def query(pipeline_or_path: Any, sql: str) -> list:
    path = (
        pipeline_or_path
        if isinstance(pipeline_or_path, (str, Path))
        else pipeline_or_path.destination_client().config.credentials.database
    )
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def loaded_messages(pipeline_or_path: Any) -> Dict[Tuple[str, str], Dict[str, Any]]:
    rows = query(
        pipeline_or_path,
        f"SELECT channel_id, ts, thread_ts, text, subtype, reply_count, latest_reply"
        f" FROM {DATASET}.messages",
    )
    return {
        (r[0], r[1]): {
            "thread_ts": r[2],
            "text": r[3],
            "subtype": r[4],
            "reply_count": r[5],
            "latest_reply": r[6],
        }
        for r in rows
    }


# -- the ground truth ------------------------------------------------------------------------
def truth_messages(workspace: Workspace, channel_ids: Optional[set] = None) -> Dict[tuple, dict]:
    truth = {}
    for m in workspace.ground_truth():
        if channel_ids is not None and m["channel_id"] not in channel_ids:
            continue
        truth[(m["channel_id"], m["ts"])] = {
            "thread_ts": m.get("thread_ts"),
            "text": m.get("text"),
            "subtype": m.get("subtype"),
            "reply_count": m.get("reply_count"),
            "latest_reply": m.get("latest_reply"),
        }
    return truth


def truth_reactions(workspace: Workspace, channel_ids: set) -> set:
    """(channel_id, ts, reaction name, user) of every reaction on a message in `channel_ids`."""
    return {
        (m["channel_id"], m["ts"], r["name"], user)
        for m in workspace.ground_truth()
        if m["channel_id"] in channel_ids
        for r in m.get("reactions") or ()
        for user in r["users"]
    }


def truth_files(workspace: Workspace, channel_ids: set) -> set:
    """(channel_id, ts, file id, name, mimetype, size) of every file on a message there."""
    return {
        (m["channel_id"], m["ts"], f["id"], f["name"], f["mimetype"], f["size"])
        for m in workspace.ground_truth()
        if m["channel_id"] in channel_ids
        for f in m.get("files") or ()
    }


def loaded_reactions(pipeline_or_path: Any) -> set:
    sql = f'SELECT channel_id, ts, name, "user" FROM {DATASET}.reactions'
    rows = query(pipeline_or_path, sql)
    assert len(rows) == len(set(rows)), "one row per (channel_id, ts, name, user)"
    return set(rows)


def loaded_files(pipeline_or_path: Any) -> set:
    sql = f"SELECT channel_id, ts, file_id, name, mimetype, size FROM {DATASET}.files"
    rows = query(pipeline_or_path, sql)
    assert len(rows) == len(set(rows)), "one row per (channel_id, ts, file_id)"
    return set(rows)


def readable_channel_ids(workspace: Workspace, include_private: bool = False) -> set:
    """Channels the bot can read without joining."""
    return {
        c["id"]
        for c in workspace.channels()
        if c.get("is_member") and (include_private or not c.get("is_private"))
    }


def thread_with_age(workspace: Workspace, channel_id: str, days: float) -> str:
    """A thread parent of `channel_id` whose age is close to `days`."""
    target = datetime.now(timezone.utc).timestamp() - days * 86400
    parents = [ts for ch, ts in workspace.thread_parents(channel_id) if ch == channel_id]
    return min(parents, key=lambda ts: abs(float(ts) - target))


# -- the command line ------------------------------------------------------------------------
def clean_environment(settings: Dict[str, str]) -> Dict[str, str]:
    """The environment of a command-line subprocess: this one's without any project setting,
    plus `settings`, so the command sees only what its test gives it."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(PROJECT_SETTINGS)}
    environment.update(settings)
    return environment


def emulator_cli_env(server: Any, tmp_path: Path, **settings: str) -> Dict[str, str]:
    """A command-line run's environment against the emulator, unpaced, with its own pipelines
    folder and Prefect home under `tmp_path`, plus `settings`."""
    return clean_environment(
        {
            "SOURCES__SLACK__ACCESS_TOKEN": TOKEN,
            "SOURCES__SLACK__API_BASE_URL": server.base_url,
            "SOURCES__SLACK__RATE_LIMIT_PROFILE": "off",
            "SLACK_PIPELINE__PIPELINES_DIR": str(tmp_path / "pipelines"),
            "PREFECT_HOME": str(tmp_path / "prefect"),
            **settings,
        }
    )


def pipeline_cli(
    *args: str, cwd: Path, env: Dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess:
    """`python slack_pipeline_with_prefect.py ARGS` run to its end, its output kept as text."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def emulator_cli(
    server: Any, tmp_path: Path, *args: str, **settings: str
) -> subprocess.CompletedProcess:
    """`pipeline_cli(*args)` against the emulator (`emulator_cli_env`), loading into
    `tmp_path/cli.duckdb` unless `settings` say otherwise."""
    settings.setdefault("DESTINATION__DUCKDB__CREDENTIALS", str(tmp_path / "cli.duckdb"))
    return pipeline_cli(*args, cwd=tmp_path, env=emulator_cli_env(server, tmp_path, **settings))


def run_cli(*args, env=None, tmp_path=None):
    environment = clean_environment(
        {
            "SOURCES__SLACK__API_BASE_URL": "http://127.0.0.1:9/api/",
            "DESTINATION__DUCKDB__CREDENTIALS": str(tmp_path / "cli.duckdb"),
            "SLACK_PIPELINE__PIPELINES_DIR": str(tmp_path / "pipelines"),
            **(env or {}),
        }
    )
    return pipeline_cli(*args, cwd=tmp_path, env=environment)


# -- flow runs on Prefect's test harness -----------------------------------------------------
FINAL_STATE_DEADLINE = 30.0  # seconds for the harness to record a finished flow's task runs


def latest_artifact(key: str) -> Any:
    """The newest artifact under `key` on the session's Prefect server (every flow test of the
    session writes to the same server, so the first match in an unsorted read can be another
    test's run)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert found, f"no artifact {key!r}"
    return found[0]


def task_runs_of(flow_state: Any) -> Dict[str, Any]:
    """Task runs of a finished flow run by task name, one per name (`all_task_runs_of`)."""
    return {run.task_key.rsplit("-", 1)[0]: run for run in all_task_runs_of(flow_state)}


def all_task_runs_of(flow_state: Any) -> List[Any]:
    """Every task run of a finished flow run, once the harness has recorded them all in a
    final state (task states arrive as events, so they can lag the flow's return)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run_id = flow_state.state_details.flow_run_id
    runs_filter = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    deadline = time.monotonic() + FINAL_STATE_DEADLINE
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_task_runs(flow_run_filter=runs_filter)
            if runs and all(run.state and run.state.is_final() for run in runs):
                return runs
            assert time.monotonic() < deadline, f"task runs not final: {runs}"
            time.sleep(0.1)


# -- a real `prefect server`: its REST API, workers and `serve` as children --------------------
POOL = "slack-pool"
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
RUN_DEADLINE_S = 120.0


def poll(check: Callable[[], Any], deadline_s: float, what: str, interval_s: float = 0.3) -> Any:
    """Return the first truthy `check()`; fail naming `what` after the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


class Api:
    """The few REST calls the tests need, against `server.api_url`.

    Retries 429/502/503 like Prefect's own client: on a busy machine SQLite's write lock makes
    the server answer 503 ("retry later") now and then."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        retry = Retry(
            total=6, backoff_factor=0.3, status_forcelist=(429, 502, 503), allowed_methods=None
        )
        self.session.mount("http://", HTTPAdapter(max_retries=retry))

    def get(self, path: str) -> requests.Response:
        return self.session.get(f"{self.url}{path}", timeout=10)

    def delete(self, path: str) -> None:
        self.session.delete(f"{self.url}{path}", timeout=10).raise_for_status()

    def post(self, path: str, body: Dict[str, Any]) -> Any:
        response = self.session.post(f"{self.url}{path}", json=body, timeout=10)
        response.raise_for_status()
        return response.json()

    def deployment(self, name: str) -> Optional[Dict[str, Any]]:
        response = self.get(f"/deployments/name/{name}")
        return response.json() if response.status_code == 200 else None

    def run_deployment(self, deployment_id: str, parameters: Dict[str, Any]) -> str:
        return self.post(
            f"/deployments/{deployment_id}/create_flow_run", {"parameters": parameters}
        )["id"]

    def flow_run(self, run_id: str) -> Dict[str, Any]:
        return self.get(f"/flow_runs/{run_id}").json()

    def wait_terminal(self, run_id: str, *watched: "Background") -> Dict[str, Any]:
        def finished() -> Optional[Dict[str, Any]]:
            for process in watched:
                process.assert_alive()
            run = self.flow_run(run_id)
            return run if run["state"]["type"] in TERMINAL else None

        return poll(finished, RUN_DEADLINE_S, f"flow run {run_id} to finish")

    def states(self, run_id: str) -> List[Dict[str, Any]]:
        response = self.get(f"/flow_run_states/?flow_run_id={run_id}")
        response.raise_for_status()
        return response.json()

    def task_runs(self, run_id: str) -> List[Dict[str, Any]]:
        return self.post("/task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})

    def artifacts(self, run_id: str, key: str) -> List[Dict[str, Any]]:
        body = {"artifacts": {"key": {"any_": [key]}, "flow_run_id": {"any_": [run_id]}}}
        return self.post("/artifacts/filter", body)

    def logs(self, run_id: str) -> List[Dict[str, Any]]:
        logs: List[Dict[str, Any]] = []
        while True:  # the API returns at most 200 per call
            page = self.post(
                "/logs/filter",
                {
                    "logs": {"flow_run_id": {"any_": [run_id]}},
                    "sort": "TIMESTAMP_ASC",
                    "limit": 200,
                    "offset": len(logs),
                },
            )
            logs += page
            if len(page) < 200:
                return logs


def deploy_all(server_env: Dict[str, str]) -> None:
    """`prefect work-pool create` (the process pool) and `prefect deploy --all` from
    prefect.yaml against the server of `server_env` (its client environment)."""
    env = {
        "PATH": os.environ["PATH"],
        **server_env,
        "PREFECT_CLI_PROMPT": "false",
        "PWD": str(ROOT),  # prefect.yaml's pull step: the folder you deploy from
    }
    for args in (["work-pool", "create", POOL, "--type", "process"], ["deploy", "--all"]):
        done = subprocess.run(
            [sys.executable, "-m", "prefect", "--no-prompt", *args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert done.returncode == 0, f"prefect {args}:\n{done.stdout}\n{done.stderr}"


class Background:
    """A long-running child (serve, worker) whose output goes to a file for failure reports."""

    def __init__(self, name: str, args: List[str], env: Dict[str, str], cwd: Path, logs: Path):
        self.name = name
        self.log_path = logs / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            args, env=env, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def assert_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"
            )

    def stop(self) -> None:
        stop_process_group(self.process)
        if not self._log.closed:
            self._log.close()


def pool_worker_env(server_env: Dict[str, str], output: Path, **settings: str) -> Dict[str, str]:
    """What a production worker on POOL has: a clean environment with the server
    (`server_env`), dlt's folders under `output`, a 1 s poll for new runs, and `settings`."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(output)),
        **server_env,
        "PREFECT_WORKER_QUERY_SECONDS": "1",  # pick up a triggered run within ~1 s
        "SLACK_PIPELINE__PIPELINES_DIR": str(output / "pipelines"),
        "DLT_DATA_DIR": str(output / "dlt"),
        **settings,
    }


def parent_run_on_pool(
    api_url: str, env: Dict[str, str], tmp_path: Path, parameters: Dict[str, Any]
) -> Tuple[Dict[str, Any], List[Dict[str, Any]], str, Background]:
    """A worker on POOL runs the parent deployment `slack_workspaces` with `parameters` to its
    end (deployments already applied: `deploy_all`). Returns the parent run, its child runs,
    the JSON of every run's record, logs and artifacts (for secret scans), and the stopped
    worker (its log's `tail()` for failure messages)."""
    import json

    worker = Background(
        "worker",
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL],
        env=env,
        cwd=tmp_path,
        logs=tmp_path,
    )
    try:
        api = Api(api_url)
        parent_id = api.run_deployment(
            api.deployment("slack_workspaces/slack_workspaces")["id"], parameters
        )
        parent = api.wait_terminal(parent_id, worker)
        children = api.post(
            "/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [parent_id]}}}
        )
        seen = []
        for run in [parent, *children]:
            seen.append(json.dumps(api.flow_run(run["id"])))
            seen.append(json.dumps(api.logs(run["id"])))
            body = {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}
            seen.append(json.dumps(api.post("/artifacts/filter", body)))
    finally:
        worker.stop()
    return parent, children, "\n".join(seen), worker
