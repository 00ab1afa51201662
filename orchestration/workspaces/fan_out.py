"""The parent flow's plumbing: one child flow run per workspace on a deployment, waiting for
them all, and reading each child's counts back through the API.

Children are started with `run_deployment(..., timeout=0)` (Prefect's way to fan out: each
child is a subflow run of the parent in the UI, placed on the deployment's work pool) and then
awaited together, so they run side by side whenever workers are free. Counts come from each
child's `slack-load-counts` artifact, which the API serves wherever the child ran (another
machine, a container): a flow's return value is not persisted by default. Waiting is Prefect's
`wait_for_flow_run` (state events, no polling), for all children at once.
"""

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import FlowRunWaitTimeout
from prefect.flow_runs import wait_for_flow_run
from prefect.utilities.asyncutils import run_coro_as_sync

from ..summary import COUNTS_KEY


@dataclass
class WorkspaceRun:
    """One workspace's child run, as the parent reports it (no token, no message data)."""

    workspace: str
    flow_run_id: UUID
    flow_run_name: str
    state: str = "Scheduled"
    final: bool = False
    completed: bool = False
    message: str = ""
    rows: Dict[str, int] = field(default_factory=dict)
    calls: Dict[str, int] = field(default_factory=dict)
    ratelimited: Dict[str, int] = field(default_factory=dict)
    elapsed_seconds: Optional[float] = None


def start_runs(
    deployment: str, workspaces: List[str], parameters: Dict[str, Any]
) -> List[WorkspaceRun]:
    """One child run per workspace, returned at once (`timeout=0`): the workers pick them up."""
    runs = []
    for workspace in workspaces:
        flow_run: FlowRun = run_deployment(
            name=deployment,
            parameters={**parameters, "workspace": workspace},
            flow_run_name=f"slack-{workspace}",
            timeout=0,
        )
        runs.append(WorkspaceRun(workspace, flow_run.id, flow_run.name))
    return runs


def wait_for_runs(runs: List[WorkspaceRun], timeout_seconds: float) -> List[WorkspaceRun]:
    """Wait until every child is final or the deadline passes (then it counts as not loaded)."""
    run_coro_as_sync(_wait_all(runs, timeout_seconds))
    with get_client(sync_client=True) as client:
        for run in runs:
            if not run.final:
                run.message = f"still {run.state} after {timeout_seconds:.0f} s"
            else:
                _read_counts(run, client)
    return runs


async def _wait_all(runs: List[WorkspaceRun], timeout_seconds: float) -> None:
    async def wait(run: WorkspaceRun) -> None:
        try:
            _update(run, await wait_for_flow_run(run.flow_run_id, timeout=int(timeout_seconds)))
        except FlowRunWaitTimeout:
            async with get_client() as client:
                _update(run, await client.read_flow_run(run.flow_run_id))

    await asyncio.gather(*(wait(run) for run in runs))


def _update(run: WorkspaceRun, flow_run: FlowRun) -> None:
    state = flow_run.state
    if state is None:
        return
    run.state = state.name
    run.final = state.is_final()
    run.completed = state.is_completed()
    run.message = (state.message or "").strip().splitlines()[0] if state.message else ""


def _read_counts(run: WorkspaceRun, client: Any) -> None:
    artifacts = client.read_artifacts(
        artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[COUNTS_KEY]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.flow_run_id]),
        )
    )
    if not artifacts:
        return  # failed before its summary (e.g. in the pre-flight)
    data = artifacts[0].data
    for row in json.loads(data) if isinstance(data, str) else data:
        kind, name, count = row["kind"], row["name"], row["count"]
        if kind == "rows":
            run.rows[name] = int(count)
        elif kind == "calls":
            run.calls[name] = int(count)
        elif kind == "429s":
            run.ratelimited[name] = int(count)
        elif kind == "seconds" and name == "elapsed":
            run.elapsed_seconds = float(count)


def runs_markdown(runs: List[WorkspaceRun], elapsed_seconds: float) -> str:
    """One table across workspaces: state, rows per table, API calls, 429s, time."""
    lines = [
        "# Slack load, all workspaces",
        "",
        "| workspace | state | users | channels | messages | API calls | 429s | seconds | run |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        seconds = f"{run.elapsed_seconds:.1f}" if run.elapsed_seconds is not None else ""
        lines.append(
            f"| {run.workspace} | {run.state} | {run.rows.get('users', 0)} |"
            f" {run.rows.get('channels', 0)} | {run.rows.get('messages', 0)} |"
            f" {sum(run.calls.values())} | {sum(run.ratelimited.values())} | {seconds} |"
            f" {run.flow_run_name} |"
        )
    failed = [run for run in runs if not run.completed]
    lines += ["", f"Elapsed: {elapsed_seconds:.1f} s  "]
    lines.append(
        "Not loaded: "
        + (", ".join(f"{run.workspace} ({run.state}: {run.message})" for run in failed) or "none")
    )
    return "\n".join(lines)
