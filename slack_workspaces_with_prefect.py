"""Load several Slack workspaces side by side: one `slack_pipeline` run per workspace, fanned
out onto the work pool by a parent flow, each with its own token, dataset and dlt state.

    python slack_workspaces_with_prefect.py                 # one parent run now, every workspace
    python slack_workspaces_with_prefect.py --workspaces acme,globex --start-date 2026-01-01

Needs a Prefect server (PREFECT_API_URL), the deployments of prefect.yaml and a worker on the
pool: the children run there. Workspaces are configured in `[slack_pipeline.workspaces.<name>]`
(orchestration/workspaces/); a run of one workspace waits for another run of the same
workspace (orchestration/workspaces/slot.py), different workspaces load at once.

The parent lives apart from `slack_pipeline_with_prefect.py` so that file stays the story of
one load; this one is the story of many.
"""

import argparse
import time
from typing import Any, Dict, List, Optional

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from orchestration.failures import failed_run
from orchestration.prepare import prepare_fan_out
from orchestration.run_settings import DateLike
from orchestration.workspaces.fan_out import runs_markdown, start_runs, wait_for_runs

# The deployment each child runs on: slack_pipeline without a deployment-wide limit (that one
# would serialize every workspace); prefect.yaml defines it.
CHILD_DEPLOYMENT = "slack_pipeline/slack_workspace"
SIX_HOURS = 6 * 3600.0


@flow(name="slack_workspaces", log_prints=True)
def slack_workspaces(
    workspaces: Optional[List[str]] = None,
    start_date: DateLike = None,
    end_date: DateLike = None,
    lookback_days: Optional[float] = None,
    deployment: str = CHILD_DEPLOYMENT,
    timeout_seconds: float = SIX_HOURS,
) -> Dict[str, Any]:
    """Start one child run per workspace (`workspaces`, default every configured one), wait for
    all, publish one summary across them; fail naming each workspace that did not load, after
    the others have finished loading."""
    started = time.monotonic()
    logger = get_run_logger()
    names = prepare_fan_out(workspaces, start_date, end_date, lookback_days)
    shared = dict(start_date=start_date, end_date=end_date, lookback_days=lookback_days)
    parameters = {key: value for key, value in shared.items() if value is not None}

    runs = start_runs(deployment, names, parameters)
    logger.info("Started %s", ", ".join(f"{r.workspace} ({r.flow_run_name})" for r in runs))
    wait_for_runs(runs, timeout_seconds)

    create_markdown_artifact(
        key="slack-workspaces-summary",
        markdown=runs_markdown(runs, time.monotonic() - started),
        description="State, rows, API calls and 429s of each workspace's load",
    )
    failed = [run for run in runs if not run.completed]
    if failed:
        return failed_run(
            "Slack workspaces not loaded: "
            + ", ".join(f"{run.workspace} ({run.state}: {run.message})" for run in failed)
        )
    logger.info("Loaded every workspace: %s", ", ".join(run.workspace for run in runs))
    return {run.workspace: {"state": run.state, "rows": run.rows} for run in runs}


if __name__ == "__main__":
    from orchestration.cli import add_verbose, exit_on_bad_input, run_flow
    from orchestration.run_logs import set_verbose

    parser = argparse.ArgumentParser(prog="slack_workspaces_with_prefect.py")
    parser.add_argument("--workspaces", help="comma-separated names (default: all configured)")
    parser.add_argument("--start-date", help="YYYY-MM-DD backfill start; default: from state")
    parser.add_argument("--end-date", help="YYYY-MM-DD, exclusive")
    parser.add_argument("--lookback-days", type=float, help="re-read at least this many days")
    add_verbose(parser)
    args = parser.parse_args()
    set_verbose(args.verbose)
    names = [n.strip() for n in (args.workspaces or "").split(",") if n.strip()]
    with exit_on_bad_input():  # bad input: one line and exit 2, before a flow run starts
        prepare_fan_out(names or None, args.start_date, args.end_date, args.lookback_days)
    run_flow(
        slack_workspaces,
        workspaces=names or None,
        start_date=args.start_date,
        end_date=args.end_date,
        lookback_days=args.lookback_days,
    )
