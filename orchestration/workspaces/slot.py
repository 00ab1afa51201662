"""One run per workspace at a time, on any infrastructure: a Prefect global concurrency limit
of 1 per workspace (`slack-workspace-<name>`), held by the run for as long as it loads.

Why a limit keyed by workspace, not the deployment's `concurrency_limit`: one deployment serves
every workspace (a new workspace is configuration, not a deployment), and a deployment limit of
1 would serialize them all. The guard sits where the invariant is (dlt state and DuckDB's single
writer belong to the workspace), so it holds for work-pool runs, served runs and one-off
`run --workspace` alike. Different workspaces hold different limits and load side by side.

Prefect 3.9 no longer creates a missing limit on first use (without one, `concurrency()` does
not limit at all), so the run creates it (idempotent) and acquires it with `strict=True`. Slots
are leases renewed while the run holds them: a killed run's slot frees itself when the lease
runs out (5 minutes).
"""

import time
from contextlib import contextmanager
from typing import Iterator, Optional

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists

LIMIT_PREFIX = "slack-workspace-"


def limit_name(workspace: str) -> str:
    return f"{LIMIT_PREFIX}{workspace}"


def ensure_limit(name: str) -> None:
    """Create the limit with one slot unless it exists (two runs may race here: both fine)."""
    with get_client(sync_client=True) as client:
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:
            pass


@contextmanager
def workspace_slot(workspace: Optional[str]) -> Iterator[None]:
    """Hold the workspace's slot (waiting for a run that holds it); no-op for the single
    workspace, which the deployment's own `concurrency_limit: 1` already serializes."""
    if workspace is None:
        yield
        return
    name = limit_name(workspace)
    ensure_limit(name)
    logger = get_run_logger()
    started = time.monotonic()
    with concurrency(name, occupy=1, strict=True):
        logger.info(
            "Holding %s (waited %.1f s for another run of this workspace)",
            name,
            time.monotonic() - started,
        )
        yield
