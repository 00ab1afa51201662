"""Load a Slack workspace into BigQuery or DuckDB every day: dlt does the loading, Prefect the
scheduling, retries and observability.

    python slack_pipeline_with_prefect.py            # serve the daily deployment (cron 0 0 * * *)
    python slack_pipeline_with_prefect.py run        # one flow run now
    python slack_pipeline_with_prefect.py check      # token, scopes, channels; loads nothing
    python slack_pipeline_with_prefect.py demo       # offline: bundled Slack emulator -> DuckDB
    python slack_pipeline_with_prefect.py import-export slack-export.zip   # backfill from an export
"""

import time
from datetime import datetime
from typing import Any, Dict, List, Optional

from prefect import flow, get_run_logger, task

from orchestration.loading import load, load_messages, make_pipeline
from orchestration.preflight import slack_access
from orchestration.retry_policy import retry_only_transient
from orchestration.run_logs import attach_dlt_logs, flush_run_logs
from orchestration.settings import (
    DateLike,
    RunSettings,
    load_run_settings,
    validate_dates,
    validate_destination_credentials,
    validate_token,
)
from orchestration.summary import publish_summary
from orchestration.workspace_slot import workspace_slot
from orchestration.workspaces import for_workspace, run_options, token_setting, workspace_access
from slack_source import RunStats, list_channels, make_client, select_channels, slack_source
from slack_source.settings import check_lookback

# Prefect retries a task only when the failure was transient (never a bad token or scope).
TRANSIENT_RETRIES = dict(
    retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=retry_only_transient
)


@task(**TRANSIENT_RETRIES)
def get_users(settings: RunSettings) -> Dict[str, Any]:
    """Load every user of the workspace (deleted ones included: old messages name them).

    Never cached: a task that writes to the warehouse runs, whatever an earlier run wrote."""
    stats = RunStats()
    source = slack_source(stats=stats, **workspace_access(settings)).with_resources("users")
    loaded = load(make_pipeline(settings), source)
    return {**loaded, "stats": stats.as_dict()}


@task(**TRANSIENT_RETRIES)
def get_channels(
    settings: RunSettings, channels: Optional[List[str]], include_private: bool
) -> Dict[str, Any]:
    """Load the channel list and resolve the channels to read (unknown names fail here)."""
    stats = RunStats()
    access = workspace_access(settings)
    visible = list_channels(make_client(stats=stats, **access), include_private)
    selected = select_channels(visible, channels)
    source = slack_source(channel_list=visible, stats=stats, **access).with_resources("channels")
    loaded = load(make_pipeline(settings), source)
    return {**loaded, "stats": stats.as_dict(), "selected": selected}


@task(**TRANSIENT_RETRIES)
def get_channel_history(
    settings: RunSettings,
    channels: List[Dict[str, Any]],
    start: Optional[datetime] = None,
    end: Optional[datetime] = None,
    lookback_days: Optional[float] = None,
) -> Dict[str, Any]:
    """Load history and changed threads of a batch of channels in one dlt run (appended
    instead of merged into an empty `messages` table: `append_into_empty`)."""
    stats = RunStats()
    lookback = {} if lookback_days is None else {"lookback_days": lookback_days}

    def history(into_empty_table: bool) -> Any:
        return slack_source(
            channels=[channel["id"] for channel in channels],
            channel_list=channels,
            start_date=start,
            end_date=end,
            stats=stats,
            into_empty_table=into_empty_table,
            **lookback,
            **workspace_access(settings),
        ).with_resources("messages")

    loaded = load_messages(make_pipeline(settings), history, settings.append_into_empty)
    return {**loaded, "stats": stats.as_dict()}


@flow(
    name="slack_pipeline",
    log_prints=True,
    on_completion=[flush_run_logs],
    on_failure=[flush_run_logs],
)
def slack_pipeline(
    channels: Optional[List[str]] = None,
    start_date: DateLike = None,
    end_date: DateLike = None,
    include_private: bool = False,
    lookback_days: Optional[float] = None,
    workspace: Optional[str] = None,
) -> Dict[str, Any]:
    """Check access, then users, channels and each batch of channels' history with its
    changed threads.

    `workspace` names one of several configured workspaces (`[slack_pipeline.workspaces.<name>]`,
    see orchestration/workspaces.py): its own token, dataset and dlt state, one run at a time.
    None is the single workspace of `sources.slack.*`.

    `start_date=None` continues each channel from its stored state, re-reading at least
    `lookback_days` (default from config) and the rest of the page that reaches it; a channel
    never loaded starts one day back. Dates are resolved at run time, never at import, so a
    long-running `.serve` process always loads the current day.
    """
    started = time.monotonic()
    attach_dlt_logs()  # dlt's and the source's lines in this run's logs, on any infrastructure
    logger = get_run_logger()
    settings = for_workspace(load_run_settings(), workspace)
    if workspace is None:
        validate_token()  # a workspace's token is checked where its tasks resolve it
    channels, include_private, lookback_days = run_options(
        settings, channels, include_private, lookback_days
    )
    start, end = validate_dates(start_date, end_date)
    check_lookback(lookback_days)
    validate_destination_credentials(settings)
    # Before any task writes: a bad, revoked or under-scoped token fails here in one line.
    access = slack_access(include_private, token_setting(settings), **workspace_access(settings))
    logger.info(access.describe())

    with workspace_slot(workspace):  # never two runs of one workspace at once
        results = [get_users(settings)]
        listed = get_channels(settings, channels, include_private)
        results.append(listed)
        selected = listed["selected"]
        logger.info("Loading history of %d channel(s)", len(selected))
        batch = max(1, settings.channels_per_load)
        for first in range(0, len(selected), batch):
            chunk = selected[first : first + batch]
            results.append(get_channel_history(settings, chunk, start, end, lookback_days))
    summary = publish_summary(settings, results, time.monotonic() - started)
    if summary["failed_channels"]:
        # The other channels are loaded; the run still must not look like a success.
        failed = ", ".join(f"#{name} ({why})" for name, why in summary["failed_channels"].items())
        raise RuntimeError(f"Slack channels not loaded after retries: {failed}")
    return summary


if __name__ == "__main__":
    from orchestration.cli import parse_command_line, run_check, run_once

    command = parse_command_line()
    if command.name == "import-export":
        from import_export_flow import import_slack_export
        from orchestration.cli import run_import

        run_import(import_slack_export, command)
    elif command.name == "serve":
        slack_pipeline.serve("slack_pipeline", cron="0 0 * * *", limit=1)
    elif command.name == "run":
        run_once(slack_pipeline, command)
    elif command.name == "check":
        run_check(command)
    else:
        from demo import demo

        demo(slack_pipeline, command)
