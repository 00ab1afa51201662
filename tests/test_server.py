"""End to end on a real `prefect server`: the served deployment, the work-pool deployment from
prefect.yaml, and the alert automations posting to a local stand-in for a Slack webhook.

One server, one emulated Slack workspace and one `serve` process for the module; flows,
workers and the Prefect CLI run as subprocesses, the way a user starts them. Results are
read back from the server's API (states, task runs, artifacts, logs) and from DuckDB.
"""

import json
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from orchestration.prefect_server import LocalPrefectServer, free_port, local_prefect_server
from tests.helpers import (
    DATASET,
    POOL,
    ROOT,
    Api,
    Background,
    backfill_start,
    emulator_server,
    poll,
    query,
    readable_channel_ids,
    truth_messages,
)
from tooling.demo import demo_environment
from tooling.slack_emulator import EmulatorServer, Workspace

MISSING_RUN_SECONDS = 10  # the shortest proactive window Prefect accepts
# Settings a developer's shell may carry that must not leak into the subprocesses.
FOREIGN_PREFIXES = ("PREFECT_", "SOURCES__", "DESTINATION__", "SLACK_PIPELINE__", "RUNTIME__")


class Stack:
    """The module's server, emulator and folders, and the environments of its children."""

    def __init__(self, server: LocalPrefectServer, emulator: EmulatorServer, tmp: Path):
        self.server = server
        self.emulator = emulator
        self.workspace: Workspace = emulator.workspace
        self.tmp = tmp
        self.api = Api(server.api_url)
        self.serve: Optional[Background] = None

    def retire_served_deployment(self) -> None:
        """Stop `serve` and delete its deployment: `prefect deploy` reuses the name
        slack_pipeline/slack_pipeline, as when a team moves from serve to a work pool."""
        if self.serve is not None:
            self.serve.stop()
        deployment = self.api.deployment("slack_pipeline/slack_pipeline")
        if deployment is not None:
            self.api.delete(f"/deployments/{deployment['id']}")

    def env(self, output: Optional[Path] = None) -> Dict[str, str]:
        """Prefect client settings; with `output`, the pipeline pointed at the emulator and a
        DuckDB file (and dlt's folders) under `output`, never in the repository."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
        env.update(self.server.client_environment())
        env.update(
            PREFECT_CLI_PROMPT="false",
            PREFECT_RUNNER_POLL_FREQUENCY="1",  # serve: pick up a triggered run within ~1 s
            PREFECT_WORKER_QUERY_SECONDS="1",  # worker: the same
            PYTHONDONTWRITEBYTECODE="1",
        )
        if output is not None:
            output.mkdir(parents=True, exist_ok=True)
            env.update(demo_environment(self.emulator.base_url, output))
            env.update(
                SOURCES__SLACK__RATE_LIMIT_PROFILE="off",
                SOURCES__SLACK__JOIN_PUBLIC_CHANNELS="false",  # ground truth: member channels
                RUNTIME__LOG_LEVEL="INFO",  # dlt's lines reach the run logs
                DLT_DATA_DIR=str(output / "dlt"),
            )
        return env

    def clean_env(self, output: Path) -> Dict[str, str]:
        """What a production worker has: the server's URL and the Slack/destination settings,
        nothing this test process or the project's defaults would otherwise pass on."""
        output.mkdir(parents=True, exist_ok=True)
        return {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", str(output)),
            "PREFECT_API_URL": self.server.api_url,
            "PREFECT_HOME": str(self.server.home),
            "PREFECT_WORKER_QUERY_SECONDS": "1",  # pick up a triggered run within ~1 s
            **demo_environment(self.emulator.base_url, output),
            "SOURCES__SLACK__RATE_LIMIT_PROFILE": "off",
            "SOURCES__SLACK__JOIN_PUBLIC_CHANNELS": "false",
            "DLT_DATA_DIR": str(output / "dlt"),
        }

    def prefect(self, *args: str, cwd: Path, env: Optional[Dict[str, str]] = None) -> str:
        """Run a `prefect` CLI command to completion; return its output or fail with it."""
        done = subprocess.run(
            [sys.executable, "-m", "prefect", "--no-prompt", *args],
            env=env or self.env(), cwd=cwd, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def expected_messages(self) -> int:
        return len(truth_messages(self.workspace, readable_channel_ids(self.workspace)))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("prefect_server")
    # Proactive automations are evaluated every 5 s by default; 1 s keeps the test short.
    server_env = {"PREFECT_SERVER_EVENTS_PROACTIVE_GRANULARITY": "PT1S"}
    with (
        emulator_server() as emulator,
        local_prefect_server(tmp / "home", extra_env=server_env) as server,
    ):
        yield Stack(server, emulator, tmp)


@pytest.fixture(scope="module")
def served(stack: Stack) -> Iterator[Dict[str, Any]]:
    """`python slack_pipeline_with_prefect.py` (serve), until its deployment is registered."""
    process = Background(
        "serve",
        [sys.executable, "slack_pipeline_with_prefect.py"],
        env=stack.env(stack.tmp / "serve_output"),
        cwd=ROOT,
        logs=stack.tmp,
    )
    stack.serve = process
    try:

        def registered() -> Optional[Dict[str, Any]]:
            process.assert_alive()
            return stack.api.deployment("slack_pipeline/slack_pipeline")

        deployment = poll(registered, 90, "the served deployment slack_pipeline/slack_pipeline")
        deployment["process"] = process
        yield deployment
    finally:
        process.stop()


def assert_loaded(stack: Stack, run: Dict[str, Any], duckdb_file: Path, where: str) -> None:
    assert run["state"]["type"] == "COMPLETED", f"{where}: {run['state']}"
    messages = query(duckdb_file, f"SELECT count(*) FROM {DATASET}.messages")[0][0]
    assert messages == stack.expected_messages()


DLT_PIPE_FORMAT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+\|\[")


def summary_logged(logs: List[Dict[str, Any]]) -> Optional[List[Dict[str, Any]]]:
    """The logs once the flow's summary line, its last own line, is among them."""
    done = any(
        log["name"] == "prefect.flow_runs" and "Loaded rows per table" in log["message"]
        for log in logs
    )
    return logs if done else None


def assert_dlt_lines_in_run_logs(stack: Stack, run_id: str) -> List[Dict[str, Any]]:
    """The source's per-channel lines are in the run's logs, each as the message alone (not
    dlt's `time|[LEVEL]|pid|thread|...` console format); dlt's own bookkeeping is not (it is
    DEBUG: `--verbose`)."""
    # Logs are shipped in batches and may land after the final state: wait for the summary.
    logs = poll(lambda: summary_logged(stack.api.logs(run_id)), 60, "the run's summary line")
    dlt_lines = [log["message"] for log in logs if log["name"] == "dlt"]
    assert not any(line.startswith("All jobs completed, archiving package") for line in dlt_lines)
    source_lines = [log["message"] for log in logs if log["name"] == "dlt.slack"]
    assert any(line.startswith("Slack #general: ") for line in source_lines), source_lines
    assert not [line for line in dlt_lines + source_lines if DLT_PIPE_FORMAT.match(line)]
    return logs


def assert_console_reads_like_prefect(process: Background) -> None:
    """A served or worker process's log file reads as `run`'s console: Prefect's format, the
    per-channel lines under their task run, no dlt pipe lines, no hook plumbing."""

    def channel_line_written() -> Optional[str]:
        text = process.log_path.read_text(errors="replace")
        return (
            text
            if re.search(r"Task run 'get_channel_history-\S+' - Slack #general: ", text)
            else None
        )

    text = poll(channel_line_written, 60, f"the per-channel lines in {process.name}'s log")
    assert not [line for line in text.splitlines() if DLT_PIPE_FORMAT.search(line)]
    assert "Running hook" not in text and "Created none pool" not in text


def test_served_deployment_run_reports_tasks_artifact_and_dlt_logs(
    stack: Stack, served: Dict[str, Any]
) -> None:
    assert served["schedules"][0]["schedule"]["cron"] == "0 0 * * *"
    run_id = stack.api.run_deployment(served["id"], {"start_date": backfill_start()})
    run = stack.api.wait_terminal(run_id, served["process"])
    assert_loaded(stack, run, stack.tmp / "serve_output" / "slack_demo.duckdb", "served run")
    assert_console_reads_like_prefect(served["process"])

    tasks = stack.api.task_runs(run_id)
    assert sorted((t["name"].rsplit("-", 1)[0], t["state"]["type"]) for t in tasks) == [
        ("get_channel_history", "COMPLETED"),  # one batch: one load holds the whole workspace
        ("get_channels", "COMPLETED"),
        ("get_users", "COMPLETED"),
    ]

    artifacts = stack.api.artifacts(run_id, "slack-load-summary")
    assert len(artifacts) == 1
    markdown = artifacts[0]["data"]
    assert f"| messages | {stack.expected_messages()} |" in markdown
    assert f"| users | {len(stack.workspace.users())} |" in markdown
    outside = sorted(c["name"] for c in stack.workspace.channels() if not c.get("is_member"))
    assert outside and all(f"#{name} (not_in_channel)" in markdown for name in outside)

    # Logs are shipped in batches and may land after the final state: wait for the last line.
    logs = assert_dlt_lines_in_run_logs(stack, run_id)
    flow_lines = [log["message"] for log in logs if log["name"] == "prefect.flow_runs"]
    assert any("Loaded rows per table: {'users'" in line for line in flow_lines)


class WebhookReceiver:
    """A stand-in for a Slack incoming webhook: records the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.messages: List[Dict[str, Any]] = []
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.changed:
                    receiver.messages.append(json.loads(body or b"{}"))
                    receiver.changed.notify_all()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/services/T000/B000/XXXX"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate: Callable[[str], bool], deadline_s: float, what: str) -> str:
        """The first received text matching `predicate`, waking on each new message."""
        deadline = time.monotonic() + deadline_s
        with self.changed:
            while True:
                for message in self.messages:
                    if predicate(message.get("text", "")):
                        return message["text"]
                remaining = deadline - time.monotonic()
                texts = [m.get("text", "")[:200] for m in self.messages]
                assert remaining > 0, f"no webhook message {what} in {deadline_s} s: {texts}"
                self.changed.wait(remaining)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture(scope="module")
def alerts(stack: Stack) -> Iterator[WebhookReceiver]:
    """Both automations applied twice (an hour's window, then the test's: the second run must
    update, not duplicate), then evaluated by the server: the first missing-run alert (nothing
    completes meanwhile) proves the updated window is in force."""
    receiver = WebhookReceiver()
    env = {**stack.env(), "SLACK_PIPELINE__ALERTS__WEBHOOK_URL": receiver.url}
    try:
        for window in (3600, MISSING_RUN_SECONDS):
            done = subprocess.run(
                [sys.executable, "-m", "orchestration.automations", "apply"]
                + ["--missing-run-seconds", str(window)],
                env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stdout + done.stderr
            assert receiver.url not in done.stdout + done.stderr  # the URL is never printed
        receiver.wait_for(lambda text: "no completed run" in text, 60, "about a missing run")
        yield receiver
    finally:
        receiver.close()


def test_alerts_are_applied_once_with_the_url_kept_secret(
    stack: Stack, alerts: WebhookReceiver
) -> None:
    automations = stack.api.post("/automations/filter", {})
    names = sorted(a["name"] for a in automations)
    assert names == ["slack_pipeline: no completed run", "slack_pipeline: run failed"]
    triggers = {a["name"]: a["trigger"] for a in automations}
    assert triggers["slack_pipeline: no completed run"]["posture"] == "Proactive"
    assert triggers["slack_pipeline: no completed run"]["within"] == MISSING_RUN_SECONDS
    assert triggers["slack_pipeline: run failed"]["match_related"]["prefect.resource.name"] == (
        "slack_pipeline"
    )
    blocks = stack.api.post(
        "/block_documents/filter", {"block_types": {"slug": {"any_": ["custom-webhook"]}}}
    )
    assert [b["name"] for b in blocks] == ["slack-pipeline-alerts"]
    assert alerts.url not in json.dumps(blocks)  # read without include_secrets: obfuscated


def test_missing_run_alert_names_the_flow_and_window(alerts: WebhookReceiver) -> None:
    text = alerts.wait_for(lambda t: "no completed run" in t, 5, "about a missing run")
    assert f"slack_pipeline: no completed run in the last {MISSING_RUN_SECONDS} s" in text
    assert "No flow run of slack_pipeline reached Completed" in text


def test_failed_run_alert_names_the_run_state_and_cause(
    stack: Stack, served: Dict[str, Any], alerts: WebhookReceiver
) -> None:
    run_id = stack.api.run_deployment(served["id"], {"channels": ["no-such-channel"]})
    run = stack.api.wait_terminal(run_id, served["process"])
    assert run["state"]["type"] == "FAILED"
    text = alerts.wait_for(lambda t: run["name"] in t, 60, f"about flow run {run['name']}")
    assert f"slack_pipeline run {run['name']} Failed" in text
    assert f"Flow run slack_pipeline/{run['name']} entered Failed." in text
    assert "Unknown Slack channel(s): no-such-channel" in text


def git_artifacts() -> set:
    """Untracked and ignored paths in the repository (DuckDB files, .prefect, dlt folders...)."""
    out = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {line[3:] for line in out.splitlines() if line[:2] in ("??", "!!")}


def test_work_pool_deployment_from_prefect_yaml_runs_on_a_worker(stack: Stack) -> None:
    before = git_artifacts()
    stack.retire_served_deployment()
    stack.prefect("work-pool", "create", POOL, "--type", "process", cwd=stack.tmp)
    # `$PWD` in prefect.yaml's pull step is what a shell sets when you `cd` to the repository.
    stack.prefect("deploy", "--all", cwd=ROOT, env={**stack.env(), "PWD": str(ROOT)})

    deployment = stack.api.deployment("slack_pipeline/slack_pipeline")
    assert deployment["work_pool_name"] == POOL
    assert deployment["entrypoint"] == "slack_pipeline_with_prefect.py:slack_pipeline"
    assert deployment["global_concurrency_limit"]["limit"] == 1
    assert deployment["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    schedule, sweep = sorted(deployment["schedules"], key=lambda s: s["schedule"]["cron"])
    assert schedule["schedule"]["cron"] == "0 0 * * *"
    assert schedule["schedule"]["timezone"] == "UTC"
    assert sweep["schedule"]["cron"] == "0 3 * * 0" and sweep["schedule"]["timezone"] == "UTC"
    assert sweep["parameters"] == {"lookback_days": 35}
    assert deployment["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
    ]

    output = stack.tmp / "worker_output"
    worker = Background(
        "worker",
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL],
        env=stack.clean_env(output),
        cwd=stack.tmp,
        logs=stack.tmp,
    )
    try:
        # Two runs at once: the deployment's limit of 1 must make the second wait its turn.
        parameters = {"start_date": backfill_start()}
        run_ids = [stack.api.run_deployment(deployment["id"], parameters) for _ in range(2)]
        runs = [stack.api.wait_terminal(run_id, worker) for run_id in run_ids]
        assert_console_reads_like_prefect(worker)
    finally:
        worker.stop()
    for run in runs:
        assert run["work_pool_name"] == POOL
        assert_loaded(stack, run, output / "slack_demo.duckdb", f"worker run:\n{worker.tail()}")
    first, second = sorted(runs, key=lambda run: run["start_time"])
    assert first["end_time"] <= second["start_time"], "the two runs overlapped"
    waited = [s["name"] for run in runs for s in stack.api.states(run["id"])]
    assert "AwaitingConcurrencySlot" in waited
    for run in runs:  # a worker with a clean environment: dlt's lines still reach the run
        assert_dlt_lines_in_run_logs(stack, run["id"])

    left_behind = git_artifacts() - before
    markers = (".duckdb", ".wal", "pipelines/", ".prefect", "slack_demo", "dlt/")
    ours = [path for path in left_behind if any(marker in path for marker in markers)]
    assert not ours, f"the deployment wrote into the repository: {ours}"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({}, "PREFECT_API_URL is not set"),
        ({"PREFECT_API_URL": "http://127.0.0.1:{port}/api"}, "No alert webhook: set"),
        (
            {
                "PREFECT_API_URL": "http://127.0.0.1:{port}/api",
                "SLACK_PIPELINE__ALERTS__WEBHOOK_URL": "https://hooks.example/T0/SECRET",
            },
            "cannot reach the Prefect server at PREFECT_API_URL",
        ),
    ],
)
def test_alerts_apply_fails_with_one_clear_line(settings: Dict[str, str], message: str) -> None:
    port = free_port()  # nothing listens there
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    env.update({k: v.format(port=port) for k, v in settings.items()})
    done = subprocess.run(
        [sys.executable, "-m", "orchestration.automations", "apply"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert message in done.stderr and "Traceback" not in done.stderr
    assert "SECRET" not in done.stdout + done.stderr
