"""The offline demo: a generated Slack workspace on 127.0.0.1, one flow run, a short report.

Slack's rate limits stay on (compressed 100x in time) so the demo shows pacing as it happens
in production; no token, cloud account or network is needed.
"""

import argparse
import os
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from orchestration.heartbeats import one_off_heartbeats
from tooling.slack_emulator import EmulatorConfig, EmulatorServer, Workspace, WorkspaceSpec

DEMO_TOKEN = "xoxb-emulator-token"
DEMO_TIME_SCALE = 0.01  # one Slack minute lasts 0.6 s
DEMO_DAYS = 30


def demo_environment(base_url: str, output: Path) -> Dict[str, str]:
    """Settings that point the unchanged pipeline at the emulator and a local DuckDB file."""
    return {
        "SOURCES__SLACK__ACCESS_TOKEN": DEMO_TOKEN,
        "SOURCES__SLACK__API_BASE_URL": base_url,
        "SOURCES__SLACK__RATE_LIMIT_MINUTE_SECONDS": str(60 * DEMO_TIME_SCALE),
        "SOURCES__SLACK__JOIN_PUBLIC_CHANNELS": "true",
        "SLACK_PIPELINE__DESTINATION": "duckdb",
        "SLACK_PIPELINE__PIPELINE_NAME": "slack_demo",
        "SLACK_PIPELINE__PIPELINES_DIR": str(output / "pipelines"),
        "DESTINATION__DUCKDB__CREDENTIALS": str(output / "slack_demo.duckdb"),
    }


def parse_demo_command_line(argv: List[str]) -> Any:
    """`./run.sh demo [--messages N] [--output DIR] [--channels ...] [--start-date ...]`."""
    from orchestration.cli import add_run_options, command_of

    parser = argparse.ArgumentParser(
        prog="./run.sh demo", description="Offline demo: bundled Slack emulator -> local DuckDB."
    )
    add_run_options(parser)
    parser.add_argument("--messages", type=int, default=3000, help="size of the demo workspace")
    parser.add_argument("--output", default="demo_output", help="folder for the DuckDB file")
    command = command_of(parser.parse_args(argv))
    command.name = "demo"
    return command


def demo(flow: Callable[..., Any], command: Any, started: Optional[float] = None) -> Dict[str, Any]:
    """Generate the workspace, serve it on a free port, run the flow against it, report.
    `started`: when the demo's process began (`python -m tooling.demo`), for the whole wall time."""
    from orchestration.cli import exit_on_bad_input
    from orchestration.prepare import check_dates

    with exit_on_bad_input():  # bad dates: one line and exit 2, as for `run`, before anything
        check_dates(command.start_date, command.end_date)
    output = Path(command.options.get("output") or "demo_output").resolve()
    # Every demo generates a new workspace (its messages are dated from now): start from an
    # empty database, so the report's row counts are this workspace's.
    shutil.rmtree(output / "pipelines", ignore_errors=True)
    (output / "slack_demo.duckdb").unlink(missing_ok=True)
    output.mkdir(parents=True, exist_ok=True)
    spec = WorkspaceSpec(
        seed=42,
        messages=int(command.options.get("messages") or 3000),
        channels=8,
        threads=max(1, int(command.options.get("messages") or 3000) // 40),
        days=DEMO_DAYS,
    )
    config = EmulatorConfig(tokens=(DEMO_TOKEN,), rate_limits="tiers", time_scale=DEMO_TIME_SCALE)
    print(f"Starting the Slack emulator with {spec.messages} messages in {spec.channels} channels")
    with EmulatorServer(Workspace(spec), config) as server:
        os.environ.update(demo_environment(server.base_url, output))
        start = command.start_date or (
            datetime.now(timezone.utc) - timedelta(days=DEMO_DAYS + 1)
        ).strftime("%Y-%m-%d")
        flow_started = time.monotonic()
        with one_off_heartbeats():  # a one-off run, like the CLI's `run_flow`
            summary = flow(
                channels=command.channels,
                start_date=start,
                end_date=command.end_date,
                include_private=True,
            )
        elapsed = time.monotonic() - flow_started
        ground_truth = server.workspace.message_count()
    print_report(summary, output, elapsed, ground_truth)
    if started is not None:
        print(f"(whole demo, Prefect's start-up included: {time.monotonic() - started:.1f} s)")
    return summary


def print_report(summary: Dict[str, Any], output: Path, elapsed: float, truth: Any) -> None:
    from orchestration.report import report_lines
    from orchestration.run_settings import load_run_settings

    lines = report_lines({**summary, "elapsed_seconds": elapsed}, load_run_settings(), "Slack demo")
    query_at = lines.index("Query it:")
    if truth is not None:
        lines.insert(query_at - 1, f"  (the emulated workspace holds {truth} messages)")
    print("\n".join(lines))
